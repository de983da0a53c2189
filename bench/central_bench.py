"""The auditors' office: validity and all balances of the demo site read from a central InfluxDB
(what the edge box forwarded: samples, per-minute rollup, campaign records) against the same
from the edge's SQLite in the same run (target ≤ 2x), each as `cpaudit analyze --json` in a
child process. Also the forwarding itself (samples + rollup + records) in points/s.

``CPAUDIT_BENCH_CENTRAL_HOURS`` sets the campaign length (default 80 h, the demo's; generating
and forwarding it takes a few minutes on the reference machine)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from bench.common import ROOT, header, line, tmpdir


def _analyze(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", "--json", *args], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, r.stdout


def run() -> None:
    from store import SQLiteStore
    from store.forward import Forwarder
    from store.influx import InfluxV1Store
    from tests.servers import InfluxD
    hours = float(os.environ.get("CPAUDIT_BENCH_CENTRAL_HOURS", "80"))
    cfg = str(ROOT / "config" / "examples" / "brewery.yaml")
    header(f"central — {hours:g} h of the demo site, edge SQLite vs central InfluxDB 1.6.7")
    with tmpdir() as d:
        db = str(Path(d) / "edge.db")
        subprocess.run([sys.executable, "-m", "cpaudit", "generate", cfg, "--hours", str(hours),
                        "--store", db, "--quiet"], cwd=ROOT, check=True, capture_output=True)
        srv = InfluxD(Path(d) / "influx").start()
        try:
            scope = {"site": "Demo brewery, Beijing",
                     "campaign": "Brewery measurement campaign (demo)"}
            src = SQLiteStore(db)
            sink = InfluxV1Store(srv.url, "office", scope=scope)
            f = Forwarder(src, sink, "office")
            t0 = time.perf_counter()
            n = f.drain()
            fwd = time.perf_counter() - t0
            rollup = f.stats.rollup_rows
            sink.close()
            src.close()
            url = f"influxdb://127.0.0.1:{srv.port}/office?" + urllib.parse.urlencode(scope)
            edge_s, edge = _analyze(cfg, "--store", db)
            cen_s, cen = _analyze("--store", url)
            same = edge == cen
            edge_v, _ = _analyze(cfg, "--store", db, "--validity-only")
            cen_v, _ = _analyze("--store", url, "--validity-only")
        finally:
            srv.stop()
    line("forward samples + rollup + records", n / fwd, "samples/s")
    line("rollup rows forwarded", rollup, "rows")
    line("analyze --json (validity + balances), edge SQLite", edge_s, "s")
    line("analyze --json, central InfluxDB (no config file)", cen_s, "s", edge_s, "≤ 2x")
    line("analyze --validity-only, edge SQLite", edge_v, "s")
    line("analyze --validity-only, central InfluxDB", cen_v, "s", edge_v, "≤ 2x")
    print(f"    central document equals the edge's: {'yes' if same else 'NO'}", flush=True)
