"""The web API under load (issue 7): the campaign and balance documents with 20 concurrent
clients on a store holding 80 h of the demo site (p95 ≤ 100 ms), and the tag explorer's
downsampled 72 h series (≤ 300 ms).

Baseline: the same server answering /api/v1/tags (a constant document: Flask, werkzeug and
HTTP alone) under the same load. The balance document is cached until new data arrive (the
collector writes every second on a live site; here the store is still, so after the first call
it is the cache that answers — the first, uncached, computation is printed too).
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench.common import header, line, tmpdir


def _load(url: str, clients: int = 20, per_client: int = 25) -> list[float]:
    import requests
    times: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        s = requests.Session()
        mine = []
        for _ in range(per_client):
            t0 = time.perf_counter()
            r = s.get(url, timeout=60)
            r.raise_for_status()
            mine.append(time.perf_counter() - t0)
        with lock:
            times.extend(mine)
    with ThreadPoolExecutor(clients) as ex:
        for f in [ex.submit(run) for _ in range(clients)]:
            f.result()
    return times


def run(hours: float = 80.0) -> None:
    import requests
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log(self, *a: object) -> None:   # 1,500 requests: no access log
            pass

    import config
    from simulators.generate import generate
    from store import SQLiteStore
    from tests.servers import free_port
    from web import create_app
    path = os.path.join(os.path.dirname(config.__file__), "examples", "brewery.yaml")
    cfg = config.load(path)
    header(f"web API — {hours:g} h of the demo site at 1 s, 20 concurrent clients")
    with tmpdir() as d:
        db = os.path.join(d, "site.db")
        st = SQLiteStore(db)
        stats = generate(cfg, st, hours, start=1_790_000_000.0)
        st.close()
        app = create_app({"CPAUDIT_CONFIG": path, "CPAUDIT_STORE": db})
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet)
        th = threading.Thread(target=server.serve_forever, daemon=True)
        th.start()
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            t0 = time.perf_counter()
            requests.get(base + "/balance", timeout=120).raise_for_status()
            first_balance = time.perf_counter() - t0
            t0 = time.perf_counter()
            requests.get(base + "/report?validity=0", timeout=120).raise_for_status()
            first_report = time.perf_counter() - t0
            requests.get(base + "/validity", timeout=120).raise_for_status()
            base_t = _load(base + "/tags")
            p95_base = float(np.percentile(base_t, 95)) * 1e3
            line("baseline: /tags (constant document), p95", p95_base, "ms")
            for name in ("/campaign", "/balance", "/validity"):
                ts = _load(base + name)
                line(f"{name}, p95 of {len(ts)} requests", float(np.percentile(ts, 95)) * 1e3,
                     "ms", p95_base, "<= 100 ms")
            line("/balance, first (uncached) computation", first_balance * 1e3, "ms")
            line("/report (all four balances), first computation", first_report * 1e3, "ms")
            frm = stats.end_ns - 72 * 3_600 * 10**9
            q = f"{base}/series?tag=hot_wort.flow&from={frm}&to={stats.end_ns}&points=1000"
            requests.get(q, timeout=60).raise_for_status()
            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                requests.get(q, timeout=60).raise_for_status()
                ts.append(time.perf_counter() - t0)
            line("tag explorer: 72 h of a 1 s tag in 1,000 buckets, median of 20",
                 float(np.median(ts)) * 1e3, "ms", p95_base, "<= 300 ms")
        finally:
            server.shutdown()
            server.server_close()
