"""The central list in Chromium (Playwright, Debian's chromium, the page's own CSP), served by
`cpaudit serve --store influxdb://…/office` from one influxd that two live collectors of two
simulated sites forwarded to through an outage: both campaigns listed with the verdicts and the
worst closures the API gives, each edge box's backlog, a click opens the campaign's page, which
draws its data under its /c/<site>/<campaign>/ prefix, and the language switch says it all in
Chinese."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.conftest import ROOT
from tests.servers import InfluxD, free_port, wait_port
from tests.store.test_two_sites import DATABASE, Edge, two_sites
from tests.web.zh_words import ALLOWED, FIND_ENGLISH


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Edge]]]:
    tmp = tmp_path_factory.mktemp("fleet_browser")
    srv = InfluxD(tmp / "influxd").start()
    try:
        edges = two_sites(tmp, srv, before_s=4.0, outage_s=2.0, after_s=5.0)
        with central_served(f"influxdb://127.0.0.1:{srv.port}/{DATABASE}") as base:
            yield base, edges
    finally:
        srv.stop()


@contextlib.contextmanager
def central_served(store_url: str, **env: str) -> Iterator[str]:
    """``cpaudit serve --store <store_url>`` in its own process, ``env`` added to its
    environment: its base URL. It leaves no traceback on its stderr."""
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "cpaudit", "serve", "--store", store_url,
                          "--port", str(port)], cwd=ROOT, env={**os.environ, **env},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, 30, p)  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}/"
    finally:
        p.terminate()
        _, err = p.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode()[-3000:]


def _watch(pg: Any, base: str) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"refused": [], "foreign": [], "failed": [], "urls": []}
    pg.on("console", lambda m: seen["refused"].append(m.text)
          if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    pg.on("pageerror", lambda e: seen["refused"].append(str(e)))
    pg.on("request", lambda r: seen["urls"].append(r.url) if r.url.startswith(base)
          else (None if r.url.startswith(("data:", "blob:")) else seen["foreign"].append(r.url)))
    pg.on("response", lambda r: seen["failed"].append(f"{r.status} {r.url}")
          if r.status >= 400 else None)
    return seen


def test_the_fleet_list_in_the_browser(fleet: tuple[str, list[Edge]], browser: Any,
                                       output_dir: Path) -> None:
    base, edges = fleet
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        pg = ctx.new_page()
        seen = _watch(pg, base)
        resp = pg.goto(base)
        assert resp is not None and resp.status == 200
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        pg.wait_for_selector("body[data-rows='2'][data-pending='0']", timeout=120_000)
        api = {r["campaign"]: r for r in requests.get(base + "api/v1/campaigns",
                                                      timeout=60).json()["campaigns"]}
        assert set(api) == {e.name for e in edges}
        for e in edges:
            row = pg.locator(f"#fleet tbody tr[data-campaign='{e.name}']")
            assert row.get_attribute("data-site") == e.site
            assert row.get_attribute("data-state") == "running"
            figs = api[e.name]["figures"]
            assert row.locator("td.verdict").get_attribute("data-verdict") == figs["verdict"]
            # a few seconds of brewhouse: the material balance closes, so a closure is shown
            assert figs["worst"] is not None
            worst = row.locator("td.worst")
            assert worst.get_attribute("data-layer") == figs["worst"]["layer"]
            assert float(worst.get_attribute("data-closure")) == figs["worst"]["closure_pct"]
            # the edge box caught up after the outage: nothing held back
            assert row.locator("td.backlog").get_attribute("data-backlog") == "0"
            assert row.locator("td.backlog").inner_text() == "0"
        pg.screenshot(path=str(output_dir / "fleet-en.png"), full_page=True)

        # Chinese: the switch of every page, every word but names and units in Chinese
        pg.click("#lang")
        pg.wait_for_selector("html[lang='zh-CN']", state="attached")
        assert pg.inner_text("h1") == "实测项目"
        assert pg.locator("#fleet tbody tr").first.locator("td").nth(2).inner_text() == "进行中"
        english = pg.evaluate(FIND_ENGLISH, ALLOWED)
        assert not english, english[:20]
        pg.screenshot(path=str(output_dir / "fleet-zh.png"), full_page=True)
        pg.click("#lang")

        # a click opens the campaign as its edge box shows it, under its prefix
        a = edges[0]
        pg.locator(f"#fleet tbody tr[data-campaign='{a.name}'] a").click()
        pg.wait_for_url(f"{base}c/**")
        prefix = base + api[a.name]["href"]
        assert pg.url == prefix
        pg.wait_for_selector(".js-plotly-plot", timeout=60_000)
        pg.wait_for_selector("#link[data-state='live']", timeout=30_000)
        assert pg.inner_text("#name") == a.name
        pg.goto(prefix + "balances")
        pg.wait_for_selector("#sankey[data-links] svg", timeout=60_000)
        pg.screenshot(path=str(output_dir / "fleet-campaign-balances.png"), full_page=True)
        later = [u for u in seen["urls"] if "/c/" in u]
        assert later and all(u.startswith(prefix) for u in later), later[:5]
        assert not seen["refused"] and not seen["foreign"] and not seen["failed"], seen
    finally:
        ctx.close()
