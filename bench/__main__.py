"""``make bench``: figures and ratios to baselines measured in the same run.

    python -m bench [store] [modbus] [scale] [mqtt] [hj212] [forward] [generate] [validity]
                    [recon] [web] [restart] [central]     (default: all)

A line with a target (``bench.common.Target``: a ratio to its baseline or a threshold) is judged
met or MISSED; the run ends with ``targets: N met, M missed: <names>`` and exits 1 when one
missed.

shared/reference/limits.md explains why ratios to same-run baselines and not absolute figures.
"""
from __future__ import annotations

import os
import resource
import sys
from typing import Callable

from bench import common  # (imported first: sets sys.path)


def main(argv: list[str], sections: dict[str, Callable[[], None]] | None = None) -> int:
    """Run the chosen sections (all by default); 0 when every target line met its target, 1
    when one missed (``targets: N met, M missed: <names>`` printed last), 2 for a bad choice."""
    if sections is None:
        from bench import (central_bench, forward_bench, generate_bench, hj212_bench,
                           modbus_bench, mqtt_bench, recon_bench, restart_bench, scale_bench,
                           store_bench, validity_bench, web_bench)
        sections = {"store": store_bench.run, "modbus": modbus_bench.run,
                    "scale": scale_bench.run, "mqtt": mqtt_bench.run, "hj212": hj212_bench.run,
                    "forward": forward_bench.run, "generate": generate_bench.run,
                    "validity": validity_bench.run, "recon": recon_bench.run,
                    "web": web_bench.run, "restart": restart_bench.run,
                    "central": central_bench.run}
    chosen = argv or list(sections)
    unknown = [c for c in chosen if c not in sections]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(sections)}", file=sys.stderr)
        return 2
    print(f"cpaudit bench — Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    common.VERDICTS.clear()
    for c in chosen:
        sections[c]()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the bench process {rss:.0f} MiB")
    print(common.VERDICTS.summary())
    return 1 if common.VERDICTS.missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
