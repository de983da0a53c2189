"""The web API under load (issue 7): the campaign and balance documents with 20 concurrent
clients on a store holding 80 h of the demo site (p95 ≤ 100 ms), and the tag explorer's
downsampled 72 h series (≤ 300 ms); on waitress (``cpaudit serve``) and, for the constant
document and the campaign, on the Werkzeug development server it replaced; the first (uncached)
full /report; the live poll's p95 while a slow custom-window report runs (issue 15).

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


SHARED_80H = "/work/shared80/gen80v2.db"     # a prepared 80 h store, when the machine has one


def _serve(app: object, kind: str) -> tuple[str, object]:
    """The app on a free port under ``kind`` (waitress: the production server of ``cpaudit
    serve``; werkzeug: the development server it replaced): (base URL, a stop function)."""
    from tests.servers import free_port
    port = free_port()
    if kind == "waitress":
        import logging

        from waitress.server import create_server
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # as cpaudit serve does
        srv = create_server(app, host="127.0.0.1", port=port, threads=8)  # type: ignore[arg-type]
        def serve() -> None:
            try:
                srv.run()
            except (OSError, ValueError):     # its sockets closed under its loop: stopped
                pass
        th = threading.Thread(target=serve, daemon=True)
        th.start()

        def stop() -> None:
            srv.task_dispatcher.shutdown()
            for ch in list(srv._map.values()):  # type: ignore[union-attr]
                try:
                    ch.close()
                except OSError:
                    pass
    else:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log(self, *a: object) -> None:   # 1,500 requests: no access log
                pass
        wsrv = make_server("127.0.0.1", port, app, threaded=True,  # type: ignore[arg-type]
                           request_handler=Quiet)
        th = threading.Thread(target=wsrv.serve_forever, daemon=True)
        th.start()

        def stop() -> None:
            wsrv.shutdown()
            wsrv.server_close()
    return f"http://127.0.0.1:{port}/api/v1", stop


def _poll_during(base: str, slow_url: str | None, clients: int = 5) -> tuple[list[float], float]:
    """The live poll (/campaign, /validity, /balance, /balances in turn: what the pages ask
    every few seconds) by ``clients`` while ``slow_url``
    (a custom window) is computed, or for 5 s without it: (latencies [s], slow request [s])."""
    import requests
    times: list[float] = []
    done = threading.Event()
    lock = threading.Lock()
    slow_s = [0.0]

    def slow() -> None:
        t0 = time.perf_counter()
        if slow_url:
            requests.get(slow_url, timeout=600).raise_for_status()
        else:
            time.sleep(5)
        slow_s[0] = time.perf_counter() - t0
        done.set()

    def poll() -> None:
        s = requests.Session()
        mine = []
        while not done.is_set():
            for name in ("/campaign", "/validity", "/balance", "/balances"):
                t0 = time.perf_counter()
                s.get(base + name, timeout=600).raise_for_status()
                mine.append(time.perf_counter() - t0)
            time.sleep(0.2)
        with lock:
            times.extend(mine)
    th = [threading.Thread(target=slow)] + [threading.Thread(target=poll) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return times, slow_s[0]


def run(hours: float = 80.0) -> None:
    import shutil

    import requests

    from cpaudit import config
    from cpaudit.simulators.generate import generate
    from cpaudit.store import SQLiteStore
    from cpaudit.web import create_app
    path = os.path.join(os.path.dirname(config.__file__), "examples", "brewery.yaml")
    cfg = config.load(path)
    header(f"web API — {hours:g} h of the demo site at 1 s, 20 concurrent clients")
    with tmpdir() as d:
        db = os.path.join(d, "site.db")
        if hours == 80.0 and os.path.exists(SHARED_80H):
            shutil.copy(SHARED_80H, db)       # the web writes nothing, but a copy is safe
            st = SQLiteStore(db, readonly=True)
            meta = st.get_meta("campaign_start")
            start_ns = int(meta) if meta else int(st.stats()["first_ts"])
            end_ns = int(st.quick_stats()["last_ts"])
            st.close()
        else:
            st = SQLiteStore(db)
            stats = generate(cfg, st, hours, start=1_790_000_000.0)
            st.close()
            start_ns, end_ns = stats.start_ns, stats.end_ns
        settings = {"CPAUDIT_CONFIG": path, "CPAUDIT_STORE": db}
        # the development server it replaced, on the constant document and the campaign's
        app = create_app(settings)
        base, stop = _serve(app, "werkzeug")
        try:
            requests.get(base + "/campaign", timeout=120).raise_for_status()
            wz_base = float(np.percentile(_load(base + "/tags"), 95)) * 1e3
            wz_campaign = float(np.percentile(_load(base + "/campaign"), 95)) * 1e3
        finally:
            stop()  # type: ignore[operator]
        app = create_app(settings)
        base, stop = _serve(app, "waitress")
        try:
            t0 = time.perf_counter()
            requests.get(base + "/balance", timeout=120).raise_for_status()
            first_balance = time.perf_counter() - t0
            t0 = time.perf_counter()
            requests.get(base + "/report", timeout=300).raise_for_status()
            first_report = time.perf_counter() - t0
            requests.get(base + "/report?validity=0", timeout=120).raise_for_status()
            requests.get(base + "/validity", timeout=120).raise_for_status()
            base_t = _load(base + "/tags")
            p95_base = float(np.percentile(base_t, 95)) * 1e3
            line("baseline: /tags (constant document) on waitress, p95", p95_base, "ms")
            line("the same on werkzeug (the development server before), p95", wz_base, "ms",
                 p95_base)
            for name in ("/campaign", "/balance", "/validity"):
                ts = _load(base + name)
                line(f"{name}, p95 of {len(ts)} requests", float(np.percentile(ts, 95)) * 1e3,
                     "ms", p95_base, "<= 100 ms")
                if name == "/campaign":
                    line("/campaign on werkzeug, p95", wz_campaign, "ms", p95_base)
            line("/balance, first (uncached) computation", first_balance * 1e3, "ms")
            line("/report (validity, four balances, reconciliation), first computation",
                 first_report * 1e3, "ms")
            quiet, _ = _poll_during(base, None)
            p95_quiet = float(np.percentile(quiet, 95)) * 1e3
            line("live poll (5 clients: /campaign, /validity, /balance, /balances), p95",
                 p95_quiet, "ms")
            custom = (f"{base}/report?from={start_ns + 3_600 * 10**9}"
                      f"&to={end_ns - 3_600 * 10**9}")
            busy, slow_s = _poll_during(base, custom)
            line(f"live poll while a custom-window /report runs ({slow_s:.1f} s), p95 of "
                 f"{len(busy)}", float(np.percentile(busy, 95)) * 1e3, "ms", p95_quiet)
            frm = end_ns - 72 * 3_600 * 10**9
            q = f"{base}/series?tag=hot_wort.flow&from={frm}&to={end_ns}&points=1000"
            requests.get(q, timeout=60).raise_for_status()
            ts = []
            for _ in range(20):
                t0 = time.perf_counter()
                requests.get(q, timeout=60).raise_for_status()
                ts.append(time.perf_counter() - t0)
            line("tag explorer: 72 h of a 1 s tag in 1,000 buckets, median of 20",
                 float(np.median(ts)) * 1e3, "ms", p95_base, "<= 300 ms")
        finally:
            stop()  # type: ignore[operator]
