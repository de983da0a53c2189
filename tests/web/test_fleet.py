"""The central list (web/fleet.py) against a real influxd: campaigns forwarded with a good, a
broken and no configuration (one of them found in --config-dir) are all listed, the broken ones
saying why, the good ones with their figures as their own pages give them; the list is
read-only and its OpenAPI description fuzzed by schemathesis."""
from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from cpaudit import config
from cpaudit.simulators.generate import generate
from cpaudit.store import SQLiteStore
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from cpaudit.store.sample import Batch
from tests.conftest import brewery_text
from tests.servers import InfluxD
from tests.web.test_hardening import Served
from cpaudit.web.fleet import campaign_path, create_fleet_app

DB = "office"
GOOD = {"site": "Brewery A, Beijing", "campaign": "Good"}
FILED = {"site": "", "campaign": "Filed"}             # no site, its config in --config-dir
BROKEN = {"site": "Brewery C", "campaign": "Broken YAML"}
BADKEY = {"site": "Brewery D", "campaign": "Bad key"}
NONE = {"site": "Brewery E", "campaign": "Nothing"}


def _text(name: str, site: str) -> str:
    return brewery_text(**{"name: Brewhouse measurement campaign (demo)": f"name: {name}",
                           "site: Demo brewery, Beijing": f"site: {site or 'x'}"})


def _edge(tmp: Path, srv: InfluxD, scope: dict[str, str], keep_config: bool) -> Path:
    """An hour generated on an edge store and forwarded, the configuration with it or not."""
    text = _text(scope["campaign"], scope["site"])
    (tmp / f"{scope['campaign']}.yaml").write_text(text, encoding="utf-8")
    db = tmp / f"{scope['campaign']}.db"
    st = SQLiteStore(db)
    generate(config.load(tmp / f"{scope['campaign']}.yaml"), st, 1.0)
    if keep_config:
        st.set_meta("campaign_config", text)
    f = Forwarder(st, InfluxV1Store(srv.url, DB, scope=scope), "office")
    f.drain()
    f.sink.close()
    st.close()
    return db


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InfluxD, Path, Path]]:
    tmp = tmp_path_factory.mktemp("fleet")
    srv = InfluxD(tmp / "influxd").start()
    folder = tmp / "configs"
    folder.mkdir()
    good_db = _edge(tmp, srv, GOOD, keep_config=True)
    _edge(tmp, srv, FILED, keep_config=False)
    (folder / "filed.yaml").write_text(_text("Filed", ""), encoding="utf-8")
    (folder / "stray.yaml").write_text("campaign: [not closed\n", encoding="utf-8")
    for scope, meta in [
            (BROKEN, {"campaign_config": "campaign:\n  name: [not closed\n"}),
            (BADKEY, {"campaign_config": _text("Bad key", "Brewery D").replace(
                "  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  colour: red\n")}),
            (NONE, {})]:
        sink = InfluxV1Store(srv.url, DB, scope=scope, create=False)
        sink.write_meta({"campaign_name": scope["campaign"], "campaign_start": "1", **meta})
        sink.close()
    yield srv, folder, good_db
    srv.stop()


def _settled(client: Any, want: int, timeout_s: float = 180) -> list[dict[str, Any]]:
    """The list once every campaign that has a configuration has its figures."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get("/api/v1/campaigns")
        assert r.status_code == 200, r.get_data()[:300]
        rows = r.get_json()["campaigns"]
        if len(rows) == want and all(x["config_error"] or (x["figures"] and not x["pending"])
                                     for x in rows):
            return rows  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)


def test_the_list_stays_up_when_a_campaign_config_is_broken(
        office: tuple[InfluxD, Path, Path]) -> None:
    srv, folder, good_db = office
    app = create_fleet_app({"CPAUDIT_STORE": f"influxdb://127.0.0.1:{srv.port}/{DB}",
                            "CPAUDIT_CONFIG_DIR": str(folder)})
    c = app.test_client()
    first = c.get("/api/v1/campaigns")              # answers at once, figures on the way
    assert first.status_code == 200 and len(first.get_json()["campaigns"]) == 5
    rows = {r["campaign"]: r for r in _settled(c, 5)}
    assert "is broken" in rows["Broken YAML"]["config_error"]
    assert "colour" in rows["Bad key"]["config_error"]         # the loader's field path
    assert "forwarded no campaign configuration" in rows["Nothing"]["config_error"]
    assert rows["Nothing"]["state"] == "no-data" and rows["Nothing"]["figures"] is None
    assert rows["Filed"]["config"] == str(folder / "filed.yaml") and rows["Filed"]["site"] == ""
    assert rows["Good"]["config"] == "forwarded"
    for name in ("Good", "Filed"):
        r = rows[name]
        assert r["state"] == "running" and r["config_error"] is None, r
        assert r["edge"]["backlog"] == 0 and r["edge"]["at_ns"] > 0
        # the row says what the campaign's own pages say, under its prefix
        base = "/" + r["href"]
        own_v = c.get(base + "api/v1/validity").get_json()
        own_b = c.get(base + "api/v1/balances").get_json()
        assert r["figures"]["verdict"] == own_v["verdict"]
        closures = {k: own_b[k]["overall"]["closure_pct"] for k in ("material", "water", "energy")
                    if own_b.get(k) and own_b[k].get("overall")
                    and own_b[k]["overall"]["closure_pct"] is not None}
        worst = max(closures, key=lambda k: abs(closures[k]))
        assert r["figures"]["worst"]["layer"] == worst
        assert r["figures"]["worst"]["closure_pct"] == closures[worst]
        assert c.get(base).status_code == 200
        assert c.get(base + "api/v1/campaign").get_json()["name"] == name
        assert c.get(base[:-1]).headers["Location"].endswith(base)
    assert rows["Filed"]["href"].startswith("c/-/")
    # a broken campaign's pages say why; a made-up one is not there
    bad = c.get("/" + rows["Broken YAML"]["href"])
    assert bad.status_code == 503 and "is broken" in bad.get_json()["error"]
    assert c.get("/c/nowhere/nothing/").status_code == 404
    assert c.get("/").status_code == 200
    # read-only, the list and every campaign
    r = c.post("/api/v1/campaigns")
    assert r.status_code == 405 and "read-only" in r.get_json()["error"]
    r = c.post("/" + rows["Good"]["href"] + "api/v1/manual",
               json={"tag": "hot_wort.total", "value": 1.0})
    assert r.status_code == 405 and "read-only" in r.get_json()["error"]

    # kept while no new minute arrives; a new minute of Good's makes it computed again
    again = {r["campaign"]: r for r in c.get("/api/v1/campaigns").get_json()["campaigns"]}
    assert again["Good"]["figures"] == rows["Good"]["figures"] and not again["Good"]["pending"]
    st = SQLiteStore(good_db)
    last = int(st.quick_stats()["last_ts"])
    tag = "hot_wort.total"
    st.write(Batch(tags=[tag], ts=np.array([last + 120 * 10**9]),
                   value=np.array([float(st.last([tag])["value"].iloc[0])]),
                   quality=np.zeros(1), reason=np.zeros(1)))
    f = Forwarder(st, InfluxV1Store(srv.url, DB, scope=GOOD, create=False), "office")
    f.drain()
    f.sink.close()
    st.close()
    deadline = time.monotonic() + 120
    while True:
        g = {r["campaign"]: r for r in c.get("/api/v1/campaigns").get_json()["campaigns"]}["Good"]
        if g["figures"]["data_minute_ns"] > rows["Good"]["figures"]["data_minute_ns"]:
            break
        assert time.monotonic() < deadline, g
        time.sleep(0.5)
    assert g["last_data_ns"] == last + 120 * 10**9


def test_the_paths_carry_any_name() -> None:
    assert campaign_path("北京 A, 1", "Camp B?x/y") == \
        "c/%E5%8C%97%E4%BA%AC%20A%2C%201/Camp%20B%3Fx%2Fy/"
    assert campaign_path("", "c") == "c/-/c/"
    assert urllib.parse.unquote(campaign_path("a b", "c")) == "c/a b/c/"


def test_the_list_api_fuzzed_from_its_description(office: tuple[InfluxD, Path, Path]) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance,
                                                   status_code_conformance)

    from cpaudit.web.fleet import openapi
    srv, folder, _ = office
    app = create_fleet_app({"CPAUDIT_STORE": f"influxdb://127.0.0.1:{srv.port}/{DB}",
                            "CPAUDIT_CONFIG_DIR": str(folder)})
    served = Served(app)
    try:
        schema = schemathesis.openapi.from_dict(openapi())
        ops = [r.ok() for r in schema.get_all_operations()]
        assert {op.label for op in ops} >= {"GET /api/v1/campaigns"}
        seen: list[int] = []
        for op in ops:
            @settings(max_examples=10, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def one(case: Any) -> None:
                resp = case.call(base_url=served.url, timeout=120)
                seen.append(resp.status_code)
                case.validate_response(resp, checks=[not_a_server_error,
                                                     status_code_conformance,
                                                     content_type_conformance])
            one()
        assert seen and all(s == 200 for s in seen), seen
    finally:
        served.close()


def test_the_list_and_every_campaign_need_the_token_when_guarded(
        office: tuple[InfluxD, Path, Path]) -> None:
    srv, folder, _ = office
    app = create_fleet_app({"CPAUDIT_STORE": f"influxdb://127.0.0.1:{srv.port}/{DB}",
                            "CPAUDIT_TOKEN": "s3cret", "CPAUDIT_READ_GUARD": True})
    c = app.test_client()
    h = {"Authorization": "Bearer s3cret"}
    assert c.get("/api/v1/campaigns").status_code == 401
    assert c.get("/api/v1/campaigns", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/healthz").status_code == 200
    with c.get("/static/fleet.js") as js:
        assert js.status_code == 200
    good = "/" + campaign_path(GOOD["site"], GOOD["campaign"])
    assert c.get(good + "api/v1/campaign").status_code == 401
    assert c.get(good + "api/v1/campaign", headers=h).get_json()["name"] == "Good"
    # the row's figures are read with the token too (from the campaign's own guarded API)
    deadline = time.monotonic() + 120
    while True:
        rows = {r["campaign"]: r for r in c.get("/api/v1/campaigns", headers=h)
                .get_json()["campaigns"]}
        figs = rows["Good"]["figures"]
        if figs and not rows["Good"]["pending"]:
            break
        assert time.monotonic() < deadline, rows["Good"]
        time.sleep(0.5)
    assert "error" not in figs and figs["verdict"] in ("valid", "invalid"), figs
    # without --config-dir the filed campaign says it has no configuration
    assert "forwarded no campaign configuration" in rows["Filed"]["config_error"]
    r = c.post("/api/v1/campaigns", headers=h)
    assert r.status_code == 405


def test_config_dir_is_for_the_list_only() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT
    r = subprocess.run([sys.executable, "-m", "cpaudit", "serve", "--store",
                        "influxdb://127.0.0.1:1/office?campaign=c", "--config-dir", "x"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "--config-dir is for the list" in r.stderr


def test_figures_that_failed_are_tried_again_and_keep_the_last_good(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cpaudit.web.fleet as fleet
    calls: list[int] = []

    def compute() -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("InfluxDB away")
        return {"verdict": "invalid", "n": len(calls)}

    def settle(stamp: Any) -> tuple[dict[str, Any] | None, bool]:
        deadline = time.monotonic() + 10
        while True:
            got = figs.get(("s", "c"), stamp, compute)
            if not got[1]:
                return got
            assert time.monotonic() < deadline
            time.sleep(0.02)
    figs = fleet.Figures()
    assert figs.get(("s", "c"), 1, compute) == (None, True)       # never waits
    assert settle(1) == ({"verdict": "invalid", "n": 1}, False)
    assert settle(1)[0] == {"verdict": "invalid", "n": 1} and len(calls) == 1   # kept
    got = settle(2)                                              # a new minute: fails
    assert got[0] is not None and got[0]["n"] == 1 and "InfluxDB away" in got[0]["error"]
    assert settle(2) == got and len(calls) == 2                  # not before RETRY_S
    monkeypatch.setattr(fleet, "RETRY_S", 0.0)
    figs.get(("s", "c"), 2, compute)
    assert settle(2) == ({"verdict": "invalid", "n": 3}, False)
