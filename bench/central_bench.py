"""The auditors' office: validity and all balances of the demo site read from a central InfluxDB
(what the edge box forwarded: samples, per-minute rollup, campaign records) against the same
from the edge's SQLite in the same run (target ≤ 2x), each as `cpaudit analyze --json` in a
child process; a fresh web app's first campaign page on either (target ≤ 2x). Also the
forwarding itself (samples + rollup + records) in points/s.

``CPAUDIT_BENCH_CENTRAL_HOURS`` sets the campaign length (default 80 h, the demo's; generating
and forwarding it takes a few minutes on the reference machine)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from bench.common import ROOT, header, line, ratio_at_least, ratio_at_most, tmpdir


def _analyze(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", "--json", *args], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, r.stdout


def _first_page(settings: dict[str, str]) -> float:
    """A fresh web app's first campaign page: the HTML and the documents its script asks for
    at once (web/static/campaign.js), computed from nothing (no cache), in-process."""
    from cpaudit.web.app import create_app
    t0 = time.perf_counter()
    c = create_app(settings).test_client()
    for path in ("/", "/api/v1/campaign", "/api/v1/balance", "/api/v1/devices",
                 "/api/v1/validity"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.status_code, r.get_data()[:200])
    return time.perf_counter() - t0


def run() -> None:
    from cpaudit.store import SQLiteStore
    from cpaudit.store.forward import Forwarder
    from cpaudit.store.influx import InfluxV1Store
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
            edge_p = _first_page({"CPAUDIT_CONFIG": cfg, "CPAUDIT_STORE": db})
            cen_p = _first_page({"CPAUDIT_CONFIG": "", "CPAUDIT_STORE": url})
        finally:
            srv.stop()
    line("forward samples + rollup + records", n / fwd, "samples/s")
    line("rollup rows forwarded", rollup, "rows")
    line("analyze --json (validity + balances), edge SQLite", edge_s, "s")
    line("analyze --json, central InfluxDB (no config file)", cen_s, "s", edge_s, ratio_at_most(2))
    line("analyze --validity-only, edge SQLite", edge_v, "s")
    line("analyze --validity-only, central InfluxDB", cen_v, "s", edge_v, ratio_at_most(2))
    print(f"    central document equals the edge's: {'yes' if same else 'NO'}", flush=True)
    line("first campaign page (HTML + the four documents it asks), edge", edge_p, "s")
    line("first campaign page, central (configuration as forwarded)", cen_p, "s", edge_p,
         ratio_at_most(2))
    fleet()


_FLEET_CHILD = r"""
import sys, time, http.client, urllib.parse
import numpy as np
from cpaudit.store import Batch, SQLiteStore
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from cpaudit.store.lineproto import format_lines
mode, db, port, box, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
scope = {"site": f"site {box}", "campaign": f"campaign {box}"}
st = SQLiteStore(db)
if st.max_seq() == 0:
    tags = [f"box{box}.tag{i % 40}" for i in range(n)]
    st.write(Batch(tags=tags, ts=1_795_000_000_000_000_000 + (np.arange(n) // 40) * 10**9,
                   value=np.random.default_rng(int(box)).random(n) * 100,
                   quality=np.zeros(n), reason=np.zeros(n)))
if mode == "raw":                          # the raw baseline sends prepared bodies
    _, b = st.changes(0, n)
    bodies = [format_lines(Batch(tags=b.tags[i:i + 5000], ts=b.ts[i:i + 5000],
                                 value=b.value[i:i + 5000], quality=b.quality[i:i + 5000],
                                 reason=b.reason[i:i + 5000]), "cpaudit", scope).encode()
              for i in range(0, n, 5000)]
print("ready", flush=True)
sys.stdin.readline()                       # all start together
t0 = time.perf_counter()
if mode == "raw":
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    qs = urllib.parse.urlencode({"db": "raw", "precision": "ns"})
    for body in bodies:
        c.request("POST", f"/write?{qs}", body=body)
        r = c.getresponse(); r.read()
        assert r.status == 204, r.status
else:
    sink = InfluxV1Store(f"http://127.0.0.1:{port}", "fleet", scope=scope, create=False)
    Forwarder(st, sink, "fleet").drain()
print(time.perf_counter() - t0, flush=True)
"""


def _fleet(mode: str, d: str, port: int, boxes: int, n: int, first: int = 0) -> float:
    """Points/s of ``boxes`` processes writing ``n`` samples each at once."""
    procs = [subprocess.Popen([sys.executable, "-c", _FLEET_CHILD, mode,
                               f"{d}/{mode}{i}.db", str(port), str(i), str(n)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for i in range(first, first + boxes)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.wait(600)
        assert p.returncode == 0
    return boxes * n / (time.perf_counter() - t0)


def fleet(boxes: int = 20, n: int = 100_000) -> None:
    """20 edge boxes forwarding to one influxd at once, against 20 raw /write clients of the
    same data; and a central read (one campaign's rollup) idle and while they write."""
    import threading

    from cpaudit.store.influx import InfluxV1Store
    from tests.servers import InfluxD
    header(f"central fleet — {boxes} edge boxes x {n:,} samples (40 tags) into one influxd")
    with tmpdir() as d:
        srv = InfluxD(Path(d) / "influx").start()
        try:
            for db in ("raw", "fleet"):
                InfluxV1Store(srv.url, db).close()
            raw = _fleet("raw", d, srv.port, boxes, n)
            # a campaign for the central reader, forwarded beforehand
            reader = InfluxV1Store(srv.url, "fleet", create=False,
                                   scope={"site": "site 999", "campaign": "campaign 999"})

            def read_s() -> float:
                t0 = time.perf_counter()
                reader.rollup(None)
                return time.perf_counter() - t0
            _fleet("fwd", d, srv.port, 1, n, first=999)
            idle = min(read_s() for _ in range(3))
            busy: list[float] = []
            done = threading.Event()

            def poll() -> None:
                while not done.is_set():
                    busy.append(read_s())
            # the target compares like with like: the forwarders as the raw clients ran, with
            # nobody reading; then a second fleet (boxes of their own) while a central reader
            # polls, for how the reads slow down (and the writes with them)
            ours = _fleet("fwd", d, srv.port, boxes, n)
            t = threading.Thread(target=poll)
            t.start()
            read_on = _fleet("fwd", d, srv.port, boxes, n, first=100)
            done.set()
            t.join()
            reader.close()
        finally:
            srv.stop()
    line(f"raw /write from {boxes} clients (baseline)", raw, "points/s")
    line(f"{boxes} forwarders (SQLite -> samples + rollup + records)", ours, "points/s", raw,
         ratio_at_least(0.5))
    line("  the same while a central reader polls", read_on, "points/s", raw)
    line("central read (a campaign's rollup), idle", idle * 1e3, "ms")
    if busy:
        busy.sort()
        line("the same while the fleet writes, median", busy[len(busy) // 2] * 1e3, "ms",
             idle * 1e3)
        line("the same while the fleet writes, worst", busy[-1] * 1e3, "ms", idle * 1e3)
