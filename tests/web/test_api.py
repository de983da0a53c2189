"""The web app over real HTTP (werkzeug server on a free port) while a real collector records
the simulated site into the SQLite store."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

from cpaudit import config
from cpaudit.collector.service import Collector
from cpaudit.simulators.live import Site
from cpaudit.store import SQLiteStore
from tests.conftest import brewery_text
from tests.servers import free_port
from cpaudit.web import create_app


TOKEN = "test-token-5b1c"


class LiveCampaign:
    """Site + collector in a background event loop; web app in a server thread."""

    def __init__(self, tmp: Path) -> None:
        self.cfg_path = tmp / "c.yaml"
        self.cfg_path.write_text(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}))
        self.cfg = config.load(self.cfg_path)
        self.store_path = tmp / "c.db"
        self.loop = asyncio.new_event_loop()
        self.stop_evt: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.stop_evt = asyncio.Event()
        st = SQLiteStore(self.store_path)
        async with Site(self.cfg):
            self.ready.set()
            await Collector(self.cfg, st).run(self.stop_evt)
        st.close()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(10)
        app = create_app({"CPAUDIT_CONFIG": str(self.cfg_path),
                          "CPAUDIT_STORE": str(self.store_path), "CPAUDIT_TOKEN": TOKEN})
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.web = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.web.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        assert self.stop_evt is not None
        self.loop.call_soon_threadsafe(self.stop_evt.set)
        self.thread.join(10)
        self.loop.close()


def test_balance_per_node(live: LiveCampaign) -> None:
    r = requests.get(live.url + "/api/v1/balance", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    b = r.json()
    assert [n["node"] for n in b["nodes"]] == ["mash", "kettle"]
    for n in b["nodes"] + [b["overall"]]:
        assert abs(n["closure_pct"]) < 3.0 and n["ok"] is True
        assert n["total_in"] > 0 and set(n["inputs"]) and set(n["outputs"])
    assert b["verdict"] == "ok" and b["limit_pct"] == 5.0
    assert {s["stream"] for s in b["streams"]} == {s.id for s in live.cfg.flowsheet.streams}


def test_campaign_is_live(live: LiveCampaign) -> None:
    c1 = requests.get(live.url + "/api/v1/campaign", timeout=5).json()
    assert c1["devices_total"] == 8 and c1["devices_online"] == 8
    assert c1["name"] == live.cfg.campaign.name and c1["elapsed_s"] > 0
    time.sleep(1.2)
    c2 = requests.get(live.url + "/api/v1/campaign", timeout=5).json()
    assert c2["samples"] > c1["samples"] and c2["elapsed_s"] > c1["elapsed_s"]


def test_devices(live: LiveCampaign) -> None:
    d = requests.get(live.url + "/api/v1/devices", timeout=5).json()["devices"]
    assert {x["name"] for x in d} == {dev.name for dev in live.cfg.devices}
    assert all(x["state"] == "online" and x["latency_ms"] is not None for x in d)
    # the collector's own store, from its health samples: writing, nothing waiting
    deadline = time.monotonic() + 5
    while True:
        store = requests.get(live.url + "/api/v1/devices", timeout=5).json()["store"]
        if store["ok"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert store["ok"] == 1.0 and store["pending_rows"] is not None and store["write_errors"] == 0


def test_window_parameters_and_errors(live: LiveCampaign) -> None:
    now = time.time_ns()
    b = requests.get(live.url + "/api/v1/balance",
                     params={"from": str(now - 3_000_000_000)}, timeout=5).json()
    assert b["start_ns"] >= now - 3_000_000_000
    r = requests.get(live.url + "/api/v1/balance", params={"from": "yesterday"}, timeout=5)
    assert r.status_code == 400 and "from: expected ISO 8601" in r.json()["error"]
    r = requests.get(live.url + "/api/v1/balance", params={"from": "2026-11-24T08:00"}, timeout=5)
    assert r.status_code == 400 and "time zone" in r.json()["error"]
    r = requests.get(live.url + "/api/v1/balance", params={"from": "10", "to": "5"}, timeout=5)
    assert r.status_code == 400
    r = requests.get(live.url + "/api/v1/nothing", timeout=5)
    assert r.status_code == 404 and r.json()["status"] == 404


def test_page_and_its_script_are_served_locally(live: LiveCampaign) -> None:
    page = requests.get(live.url + "/", timeout=5)
    assert page.status_code == 200 and live.cfg.campaign.name in page.text
    # nothing is fetched from elsewhere: every script and style is the app's own
    assert "/static/campaign.js" in page.text and "/vendor/plotly.min.js" in page.text
    assert "http" not in page.text.split("<body", 1)[1]
    js = requests.get(live.url + "/static/campaign.js", timeout=5)
    assert js.status_code == 200 and "api/v1/balance" in js.text
    vendor = requests.get(live.url + "/vendor/plotly.min.js", timeout=5)
    assert vendor.status_code == 200 and "plotly.js v3" in vendor.text[:200]
    for name in ("../app.py", "plotly.js", "%2e%2e%2fapp.py"):
        assert requests.get(live.url + "/vendor/" + name, timeout=5).status_code == 404


def test_validity_is_live_and_carries_the_collectors_skew(live: LiveCampaign) -> None:
    r = requests.get(live.url + "/api/v1/validity", timeout=10)
    assert r.status_code == 200
    v1 = r.json()
    checks = {c["id"]: c for c in v1["checks"]}
    # a campaign of seconds: valid streams and certificates, far from 72 h
    assert v1["mode"] == "continuous" and v1["verdict"] == "invalid"
    assert checks["streams"]["status"] == "pass"
    assert checks["calibration:fm_water"]["status"] == "pass"
    assert checks["duration"]["status"] == "fail" and checks["duration"]["limit"] == 72
    assert v1["fixes"] and v1["progress"]["unit"] == "h" and v1["progress"]["to_go"] > 71.9
    # the real collector records its poll skew: the check has a figure, not "no data"
    assert checks["skew"]["value"] is not None and checks["skew"]["value"] >= 0
    assert checks["skew"]["limit"] == live.cfg.collector.late_tolerance_ms
    assert 0.5 < checks["coverage:water_in.total"]["value"] <= 1.0
    assert v1["start"].endswith("+08:00")
    time.sleep(1.5)
    v2 = requests.get(live.url + "/api/v1/validity", timeout=10).json()
    assert v2["end_ns"] > v1["end_ns"] and v2["start_ns"] == v1["start_ns"]
    bad = requests.get(live.url + "/api/v1/validity?from=2026-01-01T00:00:00", timeout=5)
    assert bad.status_code == 400 and "time zone" in bad.json()["error"]


def test_report_exports_and_diagram(live: LiveCampaign) -> None:
    import io

    from openpyxl import load_workbook
    time.sleep(2.0)
    rep = requests.get(live.url + "/api/v1/report", timeout=20).json()
    assert set(rep["balances"]) == {"material", "water", "energy", "pollutant"}
    mat = rep["balances"]["material"]
    assert mat["start_ns"] is not None and mat["nodes"]
    assert rep["validity"]["verdict"] in ("valid", "invalid")
    g = rep["reconciliation"]["material"]["global_test"]
    assert {"statistic", "dof", "p_value", "rejected"} <= set(g)
    assert rep["sankey"]["material"]["links"]
    # the same window gives the same numbers as the material balance endpoint
    w = {"from": str(mat["start_ns"]), "to": str(mat["end_ns"])}
    one = requests.get(live.url + "/api/v1/balance", params=w, timeout=20).json()
    two = requests.get(live.url + "/api/v1/balances", params=w, timeout=20).json()["material"]
    assert [n["closure_pct"] for n in one["nodes"]] == [n["closure_pct"] for n in two["nodes"]]
    x = requests.get(live.url + "/api/v1/export.xlsx", timeout=30)
    assert x.status_code == 200 and x.headers["Content-Disposition"].endswith('.xlsx')
    wb = load_workbook(io.BytesIO(x.content))
    assert "material balance" in wb.sheetnames and "validity" in wb.sheetnames
    head = [c.value for c in wb["material balance"][1]]
    assert "inputs [kg]" in head and "closure [%]" in head
    svg = requests.get(live.url + "/api/v1/sankey.svg", params={"lang": "zh"}, timeout=20)
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "</svg>" in svg.text
    assert requests.get(live.url + "/api/v1/sankey.svg", params={"layer": "heat"},
                        timeout=5).status_code == 400
    assert requests.get(live.url + "/api/v1/report", params={"alpha": "2"},
                        timeout=5).status_code == 400


def test_series_history_manual_and_openapi(live: LiveCampaign) -> None:
    spec = requests.get(live.url + "/api/v1/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.") and "/api/v1/series" in spec["paths"]
    tags = {t["tag"]: t for t in requests.get(live.url + "/api/v1/tags", timeout=5).json()["tags"]}
    assert tags["water_in.total"]["unit"] == "m3"
    s = requests.get(live.url + "/api/v1/series", params={"tag": "water_in.flow", "points": 20},
                     timeout=5).json()
    assert s["source"] == "raw" and len(s["t_ms"]) <= 20 and s["unit"] == "m3/h"
    got = [(lo, m, hi) for lo, m, hi in zip(s["min"], s["mean"], s["max"]) if m is not None]
    assert got and all(lo <= m <= hi for lo, m, hi in got)
    assert requests.get(live.url + "/api/v1/series", params={"tag": "nope"},
                        timeout=5).status_code == 400
    assert requests.get(live.url + "/api/v1/series", params={"tag": "water_in.flow",
                                                             "points": "5"}, timeout=5).status_code == 400
    h = requests.get(live.url + "/api/v1/closure-history", timeout=10).json()
    assert set(h["nodes"]) == {"mash", "kettle", "overall"} and len(h["t_ms"]) >= 1
    d = requests.get(live.url + "/api/v1/devices", timeout=5).json()
    assert d["sinks"] == [] and all(x["success_rate"] is not None for x in d["devices"])
    # a manual reading: refused without the token, stored as manual with it
    body = {"tag": "malt_in.total", "value": 99.5}
    assert requests.post(live.url + "/api/v1/manual", json=body, timeout=5).status_code == 401
    r = requests.post(live.url + "/api/v1/manual", json=body, timeout=5,
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201 and r.json()["stored"]["reason"] == "manual"
    ts = r.json()["stored"]["ts"]
    st = SQLiteStore(live.store_path, readonly=True)
    row = st.read(["malt_in.total"], ts, ts + 1)
    st.close()
    assert list(row["value"]) == [99.5] and list(row["reason"]) == [9]      # Reason.MANUAL
    bad = requests.post(live.url + "/api/v1/manual", json={"tag": "malt_in.total", "value": "x"},
                        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert bad.status_code == 400 and "value" in bad.json()["error"]


def test_campaign_stop_start_and_cycle_marks_need_the_token(live: LiveCampaign) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    st = SQLiteStore(live.store_path, readonly=True)
    original = int(st.get_meta("campaign_start") or 0)
    st.close()
    assert requests.post(live.url + "/api/v1/campaign/stop", timeout=5).status_code == 401
    stop = time.time_ns() - 1_000_000_000
    r = requests.post(live.url + "/api/v1/campaign/stop", json={"ts": stop}, headers=auth,
                      timeout=5)
    assert r.status_code == 200 and r.json()["campaign_end"] == stop
    time.sleep(1.5)
    # the analyses end where the campaign was stopped, while recording goes on
    assert requests.get(live.url + "/api/v1/validity", timeout=10).json()["end_ns"] == stop  # [start, stop)
    assert requests.get(live.url + "/api/v1/balance", timeout=10).json()["end_ns"] <= stop
    bad = requests.post(live.url + "/api/v1/campaign/stop", json={"ts": original - 1},
                        headers=auth, timeout=5)
    assert bad.status_code == 400
    # this campaign is continuous: there are no cycles to mark
    m = requests.post(live.url + "/api/v1/cycle-mark", json={}, headers=auth, timeout=5)
    assert m.status_code == 400 and "no production cycles" in m.json()["error"]
    # started again from its original start: running, and its end moves on
    r = requests.post(live.url + "/api/v1/campaign/start", json={"ts": original}, headers=auth,
                      timeout=5)
    assert r.status_code == 200
    v1 = requests.get(live.url + "/api/v1/validity", timeout=10).json()
    assert v1["start_ns"] == original and v1["end_ns"] > stop + 1
