"""The web from a central InfluxDB: a campaign generated on an "edge" SQLite store, forwarded
to a real influxd, then served twice — from the edge file and from the InfluxDB URL with no
config file — must answer the same documents; the central view refuses every change."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from cpaudit.store import SQLiteStore
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from tests.conftest import ROOT
from tests.servers import InfluxD, free_port, wait_port
from cpaudit.web import create_app

BREWERY = ROOT / "config" / "examples" / "brewery.yaml"
SCOPE = {"site": "Demo brewery, Beijing", "campaign": "Brewery measurement campaign (demo)"}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, InfluxD]]:
    d = tmp_path_factory.mktemp("central_web")
    db = d / "edge.db"
    subprocess.run([sys.executable, "-m", "cpaudit", "generate", str(BREWERY), "--hours", "14",
                    "--store", str(db), "--quiet", "--leak", "anaerobic:0.08"], cwd=ROOT,
                   check=True, capture_output=True)
    srv = InfluxD(d / "influx").start()
    src = SQLiteStore(db)
    f = Forwarder(src, InfluxV1Store(srv.url, "office", scope=SCOPE), "office")
    f.drain()
    f.sink.close()
    src.close()
    url = f"influxdb://127.0.0.1:{srv.port}/office?" + urllib.parse.urlencode(SCOPE)
    yield str(db), url, srv
    srv.stop()


PATHS = ["/api/v1/campaign", "/api/v1/validity", "/api/v1/balance", "/api/v1/balances",
         "/api/v1/tags", "/api/v1/manual", "/api/v1/closure-series?layer=material",
         "/api/v1/series?tag=water_in.flow&points=100", "/api/v1/report?validity=0"]


def test_central_pages_equal_the_edges(both: tuple[str, str, InfluxD]) -> None:
    db, url, _ = both
    edge = create_app({"CPAUDIT_CONFIG": str(BREWERY), "CPAUDIT_STORE": db}).test_client()
    central = create_app({"CPAUDIT_CONFIG": "", "CPAUDIT_STORE": url}).test_client()
    for path in PATHS:
        a, b = edge.get(path), central.get(path)
        assert a.status_code == b.status_code == 200, (path, a.status_code, b.get_data()[:300])
        ja, jb = a.get_json(), b.get_json()
        assert ja == jb, path
    # the pages themselves render from the central store too
    for page in ("/", "/balances", "/devices", "/explorer"):
        r = central.get(page)
        assert r.status_code == 200 and b"<html" in r.get_data(), page


def test_central_view_is_read_only(both: tuple[str, str, InfluxD]) -> None:
    _, url, _ = both
    c = create_app({"CPAUDIT_CONFIG": "", "CPAUDIT_STORE": url,
                    "CPAUDIT_TOKEN": "t0ken"}).test_client()
    h = {"Authorization": "Bearer t0ken"}
    for path, body in [("/api/v1/campaign/start", {}), ("/api/v1/campaign/stop", {}),
                       ("/api/v1/cycle-mark", {}),
                       ("/api/v1/manual", {"tag": "water_in.total", "value": 1.0})]:
        r = c.post(path, json=body, headers=h)
        assert r.status_code == 405 and "read-only" in r.get_json()["error"], path


def test_cpaudit_serve_from_a_store_url(both: tuple[str, str, InfluxD]) -> None:
    _, url, _ = both
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "cpaudit", "serve", "--store", url, "--port",
                          str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_port(port, 30, p)  # type: ignore[arg-type]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/campaign", timeout=30) as r:
            doc = json.loads(r.read())
        assert doc["name"] == SCOPE["campaign"] and doc["samples"] > 500_000
    finally:
        p.terminate()
        out, err = p.communicate(timeout=20)
    assert "serving http://127.0.0.1" in out, err[-2000:]
    r2 = subprocess.run([sys.executable, "-m", "cpaudit", "serve", "--store", "x.db"], cwd=ROOT,
                        capture_output=True, text=True)
    assert r2.returncode == 2 and "needs the campaign file" in r2.stderr


def test_central_balances_page_in_the_browser(both: tuple[str, str, InfluxD],
                                              output_dir: Path) -> None:
    """The Balances page of the central view in Chromium: the verdict, the node table and the
    diagram as the central API gives them, no script error, a screenshot for the record."""
    import shutil

    import playwright.sync_api as playwright
    _, url, _ = both
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "cpaudit", "serve", "--store", url, "--port",
                          str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 30)
        exe = shutil.which("chromium")
        assert exe
        with playwright.sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
            pg = b.new_page(viewport={"width": 1366, "height": 1000})
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(f"http://127.0.0.1:{port}/balances")
            pg.wait_for_selector("#sankey[data-links] svg", timeout=60_000)
            # the page says what the central API says
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/report?validity=0",
                                        timeout=60) as r:
                api = json.loads(r.read())
            want = api["balances"]["material"]["verdict"]
            assert pg.get_attribute("#bverdict", "data-verdict") == want
            mat = api["balances"]["material"]
            assert want in ("ok", "exceeded")         # 14 h: a balance is judged (the leak)
            # a row per node and the overall one, each with the API's closure
            pg.wait_for_selector("#bnodes tbody tr", state="attached", timeout=60_000)
            assert pg.locator("#bnodes tbody tr").count() == len(mat["nodes"]) + 1
            sk = api["sankey"]["material"]
            flows = [x for x in sk["links"] if x["value"]]
            assert pg.get_attribute("#sankey", "data-links") == str(len(flows))
            assert pg.locator("#sankey path.flow").count() == len(flows) > 0
            pg.screenshot(path=str(output_dir / "central-balances.png"), full_page=True)
            b.close()
        assert not errors, errors
    finally:
        p.terminate()
        p.wait(20)
