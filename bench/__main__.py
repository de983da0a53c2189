"""``make bench``: figures and ratios to baselines measured in the same run.

    python -m bench [store] [modbus] [scale] [mqtt] [hj212] [forward] [generate] [validity] [recon] [web] [restart] [central]     (default: all)

shared/reference/limits.md explains why ratios to same-run baselines and not absolute figures.
"""
from __future__ import annotations

import os
import resource
import sys

from bench import common  # noqa: F401  (sets sys.path)


def main(argv: list[str]) -> int:
    from bench import (central_bench, forward_bench, generate_bench, hj212_bench, modbus_bench,
                       mqtt_bench, recon_bench, restart_bench, scale_bench, store_bench,
                       validity_bench, web_bench)
    sections = {"store": store_bench.run, "modbus": modbus_bench.run, "scale": scale_bench.run,
                "mqtt": mqtt_bench.run, "hj212": hj212_bench.run, "forward": forward_bench.run,
                "generate": generate_bench.run,
                "validity": validity_bench.run, "recon": recon_bench.run, "web": web_bench.run,
                "restart": restart_bench.run, "central": central_bench.run}
    chosen = argv or list(sections)
    unknown = [c for c in chosen if c not in sections]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(sections)}", file=sys.stderr)
        return 2
    print(f"cpaudit bench — Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for c in chosen:
        sections[c]()
    print(f"\npeak RSS of the bench process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
