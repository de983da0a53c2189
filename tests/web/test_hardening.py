"""A request must not knock the server over: malformed parameters and bodies get 400 with a
message, a window reaching back to 1970 costs what the data cost, manual readings are checked and
retractable, a slow custom window never holds up the live poll, reads need a token when guarded.

The app runs under waitress (the production server of ``cpaudit serve``) on a free port, over a
campaign generated into a real SQLite store.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from waitress.server import create_server

from cpaudit import config
from cpaudit.simulators.generate import generate
from cpaudit.store import SQLiteStore
from tests.conftest import brewery_text
from cpaudit.web import create_app
from cpaudit.web.openapi import spec

TOKEN = "hard-token-8c2e"
READ = "read-token-1f0a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOURS = 2.0


class Served:
    """A Flask app under waitress in a thread, on a free port of 127.0.0.1: the campaign app of
    ``settings``, or an app made already."""

    def __init__(self, settings: Any) -> None:
        self.app = create_app(settings) if isinstance(settings, dict) else settings
        self.server = create_server(self.app, host="127.0.0.1", port=0, threads=8)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"  # type: ignore[union-attr]
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):       # its sockets closed under its loop: stopping
            if not self.closing:
                raise

    def close(self) -> None:
        self.closing = True
        self.server.task_dispatcher.shutdown()
        for channel in list(self.server._map.values()):  # type: ignore[union-attr]
            channel.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("hard")
    cfg_path = tmp / "c.yaml"
    cfg_path.write_text(brewery_text())
    store_path = tmp / "c.db"
    st = SQLiteStore(store_path)
    generate(config.load(cfg_path), st, HOURS)
    st.close()
    return cfg_path, store_path


@pytest.fixture()
def served(campaign: tuple[Path, Path]) -> Iterator[Served]:
    cfg_path, store_path = campaign
    s = Served({"CPAUDIT_CONFIG": str(cfg_path), "CPAUDIT_STORE": str(store_path),
                "CPAUDIT_TOKEN": TOKEN})
    yield s
    s.close()


def _windowed() -> list[tuple[str, dict[str, str]]]:
    """Every GET operation of the OpenAPI description that takes a window, with the other
    parameters it needs."""
    needs = {"/api/v1/series": {"tag": "water_in.flow"}, "/api/v1/export.csv": {"table": "validity"}}
    return [(p, needs.get(p, {})) for p, op in spec()["paths"].items()
            if "get" in op and any(x["name"] == "from" for x in op["get"]["parameters"])]


BAD_TIMES = ["99999999999999999999999", "9999-12-31T00:00+00:00", "²", "-5", "-99999999999999999",
             "0001-01-01T00:00+14:00", "2026-05-01T08:00", "yesterday", "1e18"]


def test_every_windowed_endpoint_answers_400_to_times_out_of_range(served: Served) -> None:
    ops = _windowed()
    assert len(ops) >= 9            # validity, balance(s), report, exports, sankey, series, history
    for path, extra in ops:
        for name in ("from", "to"):
            for bad in BAD_TIMES:
                r = requests.get(served.url + path, params={**extra, name: bad}, timeout=30)
                assert r.status_code == 400, (path, name, bad, r.status_code, r.text[:200])
                assert r.json()["error"].startswith(name), (path, bad, r.json())
    for q in ({"points": "²"}, {"points": "99999999999999999999999"}, {"points": "-1"}):
        r = requests.get(served.url + "/api/v1/series", params={"tag": "water_in.flow", **q},
                         timeout=10)
        assert r.status_code == 400 and "points" in r.json()["error"]
    for q in ({"step_min": "1e3"}, {"trailing_h": "٣"}, {"layer": "heat"}):
        assert requests.get(served.url + "/api/v1/closure-history", params=q,
                            timeout=10).status_code == 400


def _peak_mb(url: str) -> tuple[float, int]:
    """The traced peak memory of the server process while it answers one request [MB]."""
    tracemalloc.start()
    try:
        r = requests.get(url, timeout=120)
        return tracemalloc.get_traced_memory()[1] / 1e6, r.status_code
    finally:
        tracemalloc.stop()


def test_a_56_year_window_costs_what_the_data_cost(served: Served) -> None:
    """Before: ``/validity?from=-5`` built a per-minute grid over 56 years and was killed at
    23.6 GB. Now the window is clipped to the data: measured 3-4 MB peak for every endpoint on
    this 2 h store, the same as the campaign's own window."""
    base, ok = _peak_mb(served.url + "/api/v1/validity")
    assert ok == 200
    to = str(7_258_118_399 * 10**9)       # 2199-12-31: the latest time the API accepts
    for path, extra in _windowed():
        q = "&".join(f"{k}={v}" for k, v in extra.items())
        for window in ("from=0", f"from=0&to={to}", "from=1970-01-01T00:00%2B00:00"):
            peak, status = _peak_mb(f"{served.url}{path}?{window}&{q}")
            assert status == 200, (path, window)
            assert peak < 64 and peak < 4 * base + 16, (path, window, peak, base)
    v = requests.get(served.url + "/api/v1/validity", params={"from": 0}, timeout=30).json()
    own = requests.get(served.url + "/api/v1/validity", timeout=30).json()
    assert v["verdict"] == own["verdict"] and v["start_ns"] >= own["start_ns"] - 60 * 10**9


def _post(served: Served, path: str, body: Any, raw: str | None = None,
          headers: dict[str, str] | None = None) -> requests.Response:
    h = {**AUTH, "Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else json.dumps(body)
    return requests.post(served.url + "/api/v1" + path, data=data, headers=h, timeout=10)


def test_manual_readings_are_checked_before_they_are_stored(served: Served) -> None:
    st = SQLiteStore(served.app.config["CPAUDIT_STORE"], readonly=True)
    start = int(st.get_meta("campaign_start") or 0)
    before = st.max_seq()
    st.close()
    inside = start + 600 * 10**9 + 7          # not on a tick: the meter has a reading there
    raw_bodies = {
        '{"tag": "malt_in.total", "value": Infinity}': "value",
        '{"tag": "malt_in.total", "value": NaN}': "value",
        '{"tag": "malt_in.total", "value": -Infinity}': "value",
        '{"tag": "malt_in.total", "value": 1e309}': "value",
        '{"tag": "malt_in.total", "value": ' + "9" * 400 + "}": "value",
        '{"tag": ["malt_in.total"], "value": 1}': "tag",
        '{"tag": {"a": 1}, "value": 1}': "tag",
        '{"tag": "malt_in.total", "value": true}': "value",
        '{"tag": "malt_in.total", "value": "12"}': "value",
        '{"tag": "malt_in.total", "value": 1, "ts": "9999-12-31T00:00+00:00"}': "ts",
        '{"tag": "malt_in.total", "value": 1, "ts": 99999999999999999999}': "ts",
        '{"tag": "malt_in.total", "value": 1, "ts": "2030-01-01T00:00+08:00"}': "ts",
        '{"tag": "malt_in.total", "value": 1, "ts": %d}' % (start - 10**9): "ts",
        '{"tag": "malt_in.total", "value": -5}': "value",
        '{"tag": "malt_in.total", "value": 1e13}': "value",
        '{"tag": "malt_in.total", "value": 1, "note": ["x"]}': "note",
        '[1, 2]': "expected a JSON object",
        'not json': "expected a JSON object",
    }
    for raw, field in raw_bodies.items():
        r = _post(served, "/manual", None, raw=raw)
        assert r.status_code == 400, (raw[:80], r.status_code, r.text[:200])
        assert r.json()["error"].startswith(field), (raw[:80], r.json())
    st = SQLiteStore(served.app.config["CPAUDIT_STORE"], readonly=True)
    assert st.max_seq() == before            # nothing of the above was stored
    st.close()
    ok = _post(served, "/manual", {"tag": "malt_in.total", "value": 1234.5, "ts": inside,
                                   "note": "weighbridge ticket 0042"})
    assert ok.status_code == 201 and ok.json()["stored"]["note"] == "weighbridge ticket 0042"
    again = _post(served, "/manual", {"tag": "malt_in.total", "value": 1, "ts": inside})
    assert again.status_code == 409
    # a body larger than any reading: refused before it is read
    big = _post(served, "/manual", None, raw='{"note": "' + "x" * 100_000 + '"}')
    assert big.status_code == 413


def test_a_retracted_reading_stays_in_the_record_with_its_note(served: Served) -> None:
    st = SQLiteStore(served.app.config["CPAUDIT_STORE"], readonly=True)
    ts = int(st.get_meta("campaign_start") or 0) + 1800 * 10**9 + 123
    st.close()
    body = {"tag": "water_in.total", "value": 42.0, "ts": ts, "note": "read off the dial"}
    assert _post(served, "/manual", body).status_code == 201
    assert requests.post(served.url + "/api/v1/manual/retract", json={"tag": "water_in.total",
                         "ts": ts}, timeout=10).status_code == 401
    r = _post(served, "/manual/retract", {"tag": "water_in.total", "ts": ts,
                                          "note": "wrong meter"})
    assert r.status_code == 200 and r.json()["retracted"]["note"] == "wrong meter"
    assert _post(served, "/manual/retract", {"tag": "water_in.total", "ts": ts}).status_code == 404
    assert _post(served, "/manual/retract", {"tag": "water_in.total"}).status_code == 400
    listed = requests.get(served.url + "/api/v1/manual", timeout=10).json()["manual"]
    mine = [x for x in listed if x["tag"] == "water_in.total" and x["ts"] == ts]
    assert len(mine) == 1 and mine[0]["retracted"] and mine[0]["note"] == "read off the dial"
    assert mine[0]["retraction_note"] == "wrong meter" and mine[0]["value"] == 42.0
    st = SQLiteStore(served.app.config["CPAUDIT_STORE"], readonly=True)
    row = st.read(["water_in.total"], ts, ts + 1)
    roll = st.rollup(["water_in.total"], ts // 60_000_000_000 * 60_000_000_000, ts + 1)
    st.close()
    assert list(row["value"]) == [42.0] and list(row["quality"]) == [2]    # kept, bad
    assert int(roll["manual"].sum()) == 1 and float(roll["vmax"].max()) != 42.0
    csv = requests.get(served.url + "/api/v1/export.csv", params={"table": "manual readings"},
                       timeout=60)
    assert csv.status_code == 200 and "read off the dial" in csv.text and "wrong meter" in csv.text


def test_campaign_records_out_of_range_are_refused_and_validity_stays_up(served: Served) -> None:
    for bad in (-1, 99999999999999999999, "2030-01-01T00:00+08:00", "9999-12-31T00:00+00:00",
                True, [1], "²"):
        for path in ("/campaign/start", "/campaign/stop", "/cycle-mark"):
            r = _post(served, path, {"ts": bad})
            assert r.status_code == 400, (path, bad, r.text)
    assert _post(served, "/campaign/start", None, raw="[1]").status_code == 400
    v = requests.get(served.url + "/api/v1/validity", timeout=30)
    assert v.status_code == 200 and v.json()["verdict"] != "no-data"


def test_a_slow_custom_window_does_not_hold_up_the_live_poll(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Custom windows run outside the live documents' lock, two at a time, two more waiting;
    beyond that 503 at once. The slowness is injected (a custom report blocks until released)."""
    import cpaudit.analyzer.iotools as report
    real = report.campaign_report
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow(cfg: Any, store: Any, start: Any = None, end: Any = None, **kw: Any) -> Any:
        if start is not None:
            entered.release()
            release.wait(30)
        return real(cfg, store, start, end, **kw)
    monkeypatch.setattr(report, "campaign_report", slow)
    results: list[int] = []

    def custom(i: int) -> None:
        r = requests.get(served.url + "/api/v1/report",
                         params={"from": str(int(time.time() * 1e9) - (3600 + i) * 10**9)},
                         timeout=60)
        results.append(r.status_code)
    threads = [threading.Thread(target=custom, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
    time.sleep(0.3)
    lat = []
    for _ in range(10):
        for path in ("/api/v1/campaign", "/api/v1/validity", "/api/v1/balance",
                     "/api/v1/balances"):
            t0 = time.perf_counter()
            assert requests.get(served.url + path, timeout=10).status_code == 200
            lat.append(time.perf_counter() - t0)
    assert 503 in results                    # the fifth: two running, two waiting
    release.set()
    for t in threads:
        t.join(60)
    assert sorted(results) == [200, 200, 200, 200, 503]
    assert max(lat[3:]) < 2.0, lat          # the first poll may compute the live documents


def test_reads_need_a_token_when_guarded_and_headers_are_set(
        campaign: tuple[Path, Path]) -> None:
    cfg_path, store_path = campaign
    s = Served({"CPAUDIT_CONFIG": str(cfg_path), "CPAUDIT_STORE": str(store_path),
                "CPAUDIT_TOKEN": TOKEN, "CPAUDIT_READ_TOKEN": READ, "CPAUDIT_READ_GUARD": True})
    try:
        basic = "Basic " + base64.b64encode(f"auditor:{READ}".encode()).decode()
        for path in ("/", "/api/v1/campaign", "/api/v1/validity", "/api/v1/export.xlsx",
                     "/api/v1/manual"):
            r = requests.get(s.url + path, timeout=30)
            assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"], path
            assert requests.get(s.url + path, timeout=30,
                                headers={"Authorization": "Bearer nope"}).status_code == 401
            for h in (AUTH, {"Authorization": f"Bearer {READ}"}, {"Authorization": basic}):
                assert requests.get(s.url + path, headers=h, timeout=60).status_code == 200, path
        for path in ("/healthz", "/api/v1/openapi.json"):
            assert requests.get(s.url + path, timeout=10).status_code == 200
        # the read token reads, it does not change anything
        r = requests.post(s.url + "/api/v1/campaign/stop", json={},
                          headers={"Authorization": f"Bearer {READ}"}, timeout=10)
        assert r.status_code == 401
        page = requests.get(s.url + "/", headers=AUTH, timeout=10)
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "http" not in csp                  # no CDN
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        api = requests.get(s.url + "/api/v1/campaign", headers=AUTH, timeout=10)
        assert api.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        s.close()
