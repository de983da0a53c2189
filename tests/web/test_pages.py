"""Every page in a real browser (Debian's Chromium driven by Playwright, no browser download)
against a live campaign: figures equal the API's, the view updates by itself and recovers from a
lost connection, the language switches, the XLSX export downloads and opens, a manual reading needs
the token. Screenshots of each page go to test-output/ (English and Chinese)."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator

import pytest
import requests
from openpyxl import load_workbook

from tests.web.test_api import TOKEN, LiveCampaign
from tests.web.zh_words import ALLOWED, FIND_ENGLISH


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    # bypass_csp: Playwright's wait_for_function evaluates a string in the page, which the
    # server's CSP forbids; tests/web/test_csp.py checks every page under the real CSP
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000},  # type: ignore[attr-defined]
                              accept_downloads=True, timezone_id="Asia/Shanghai",
                              bypass_csp=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def test_balances_page_draws_the_api_figures(live: LiveCampaign, page: object,
                                             output_dir: Path) -> None:
    pg = page
    pg.goto(live.url + "/balances")  # type: ignore[attr-defined]
    pg.wait_for_selector("#sankey[data-links] svg", timeout=30_000)  # type: ignore[attr-defined]
    api = requests.get(live.url + "/api/v1/report", params={"validity": "0"}, timeout=30).json()
    sk = api["sankey"]["material"]
    assert pg.get_attribute("#sankey", "data-nodes") == str(len(sk["nodes"]))  # type: ignore[attr-defined]
    assert pg.get_attribute("#sankey", "data-links") == str(len([x for x in sk["links"] if x["value"]]))  # type: ignore[attr-defined]
    # the diagram is drawn: one arrow per flow with an amount, each labelled with amount and unit
    flows = [x for x in sk["links"] if x["value"]]
    assert pg.locator("#sankey path.flow").count() == len(flows)  # type: ignore[attr-defined]
    labels = pg.evaluate(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('#sankey text.flow-label')].map((t) => t.textContent)")
    assert all(re.search(r"[\d,]+\.\d kg$", x) for x in labels) and len(labels) >= len(flows)
    rows = pg.locator("#bnodes tbody tr")  # type: ignore[attr-defined]
    assert rows.count() == 3
    assert "χ²" in pg.inner_text("#recon")  # type: ignore[attr-defined]
    pg.wait_for_selector("#history .main-svg", state="attached", timeout=20_000)  # type: ignore[attr-defined]
    pg.screenshot(path=str(output_dir / "balances.png"), full_page=True)  # type: ignore[attr-defined]
    pg.click("#layers button[data-layer=pollutant]")  # type: ignore[attr-defined]
    assert pg.is_hidden("#sankeysec")  # type: ignore[attr-defined]


def test_numbers_match_the_api_and_the_view_stays_live(live: LiveCampaign, page: object,
                                                       output_dir: Path) -> None:
    pg = page
    pg.goto(live.url + "/")  # type: ignore[attr-defined]
    pg.wait_for_selector("#link[data-state=live]")  # type: ignore[attr-defined]
    pg.wait_for_function("Number(document.body.dataset.refreshes) >= 2")  # type: ignore[attr-defined]
    # the window and the closures the page shows, read in one go (it refreshes every 2 s)
    seen = pg.evaluate("""() => ({
        start: document.getElementById('window').dataset.startNs,
        end: document.getElementById('window').dataset.endNs,
        shown: Object.fromEntries([...document.querySelectorAll('#nodes tbody tr')]
            .map((r) => [r.dataset.node, r.querySelector('.closure').textContent]))})""")  # type: ignore[attr-defined]
    api = requests.get(live.url + "/api/v1/balance",
                       params={"from": seen["start"], "to": seen["end"]}, timeout=10).json()
    assert (str(api["start_ns"]), str(api["end_ns"])) == (seen["start"], seen["end"])
    want = {n["node"]: f"{n['closure_pct']:.2f}" for n in api["nodes"] + [api["overall"]]}
    assert seen["shown"] == want
    assert pg.inner_text("#devices") == f"{len(live.cfg.devices)} / {len(live.cfg.devices)}"  # type: ignore[attr-defined]
    # validity: a campaign of seconds is not valid yet, and the page says why, duration first
    assert pg.get_attribute("#validity", "data-verdict") == "invalid"  # type: ignore[attr-defined]
    assert pg.inner_text("#validity") == "not valid yet"  # type: ignore[attr-defined]
    checks = [r.get_attribute("data-check")
              for r in pg.locator("#checks tbody tr").all()]  # type: ignore[attr-defined]
    v = requests.get(live.url + "/api/v1/validity", timeout=10).json()
    assert "duration" in checks and checks[0] == v["fixes"][0]["check"]
    assert re.fullmatch(r"[\d.]+ of 72 h; duration met from \d{4}-.*",
                        pg.inner_text("#vprogress"))  # type: ignore[attr-defined]
    e1 = float(pg.get_attribute("#elapsed", "data-seconds"))  # type: ignore[attr-defined]
    pg.wait_for_function(f"Number(document.getElementById('elapsed').dataset.seconds) > {e1}")  # type: ignore[attr-defined]
    # a lost connection is shown, and the page recovers by itself
    pg.route("**/api/v1/**", lambda route: route.abort())  # type: ignore[attr-defined]
    pg.wait_for_selector("#link[data-state=lost]", timeout=10_000)  # type: ignore[attr-defined]
    pg.unroute("**/api/v1/**")  # type: ignore[attr-defined]
    pg.wait_for_selector("#link[data-state=live]", timeout=10_000)  # type: ignore[attr-defined]
    pg.screenshot(path=str(output_dir / "campaign-en.png"), full_page=True)  # type: ignore[attr-defined]


def test_language_switch(live: LiveCampaign, page: object, output_dir: Path) -> None:
    pg = page
    pg.goto(live.url + "/")  # type: ignore[attr-defined]
    pg.wait_for_selector("#link[data-state=live]")  # type: ignore[attr-defined]
    assert pg.inner_text("nav a[data-i18n=nav_balances]") == "Balances"  # type: ignore[attr-defined]
    pg.click("#lang")  # type: ignore[attr-defined]
    assert pg.get_attribute("html", "lang") == "zh-CN"  # type: ignore[attr-defined]
    assert pg.inner_text("nav a[data-i18n=nav_balances]") == "平衡"  # type: ignore[attr-defined]
    assert pg.inner_text("[data-i18n=material_card]") == "物料平衡"  # type: ignore[attr-defined]
    assert pg.inner_text("#focus") == live.cfg.campaign.audit_focus_zh  # type: ignore[attr-defined]
    assert pg.inner_text("#link") == "实时"  # type: ignore[attr-defined]
    # the figures already on the page are redrawn in Chinese at once, not at the next refresh
    assert pg.inner_text("#validity") == "尚未有效"  # type: ignore[attr-defined]
    assert "在限值内" in pg.inner_text("#nodes tbody")  # type: ignore[attr-defined]
    # a campaign of seconds (continuous mode): its reasons and fixes are Chinese too
    english = pg.evaluate(FIND_ENGLISH, ALLOWED)  # type: ignore[attr-defined]
    assert not english, english[:20]
    pg.screenshot(path=str(output_dir / "campaign-zh.png"), full_page=True)  # type: ignore[attr-defined]
    pg.goto(live.url + "/devices")  # type: ignore[attr-defined]   # the choice is remembered
    assert pg.inner_text("nav a[data-i18n=nav_devices]") == "设备"  # type: ignore[attr-defined]
    pg.click("#lang")  # type: ignore[attr-defined]
    assert pg.inner_text("nav a[data-i18n=nav_devices]") == "Devices"  # type: ignore[attr-defined]


def test_devices_and_explorer(live: LiveCampaign, page: object, output_dir: Path) -> None:
    pg = page
    pg.goto(live.url + "/devices")  # type: ignore[attr-defined]
    pg.wait_for_function(  # type: ignore[attr-defined]
        f"document.querySelectorAll('#devfull tbody tr').length === {len(live.cfg.devices)}")
    api = requests.get(live.url + "/api/v1/devices", timeout=5).json()["devices"]
    for d in api:
        row = pg.locator(f"#devfull tr[data-device='{d['name']}']")  # type: ignore[attr-defined]
        assert row.locator("td").nth(2).inner_text() in ("online", "stale", "offline")
        assert d["success_rate"] is not None and d["success_rate"] > 0.5
    pg.screenshot(path=str(output_dir / "devices.png"), full_page=True)  # type: ignore[attr-defined]
    pg.goto(live.url + "/explorer")  # type: ignore[attr-defined]
    pg.wait_for_selector("#series[data-points]", timeout=20_000)  # type: ignore[attr-defined]
    assert int(pg.get_attribute("#series", "data-points")) > 0  # type: ignore[attr-defined]
    pg.screenshot(path=str(output_dir / "explorer.png"), full_page=True)  # type: ignore[attr-defined]


def test_export_downloads_a_valid_xlsx_and_manual_entry_needs_the_token(
        live: LiveCampaign, page: object, output_dir: Path) -> None:
    pg = page
    pg.goto(live.url + "/exports")  # type: ignore[attr-defined]
    with pg.expect_download(timeout=60_000) as dl:  # type: ignore[attr-defined]
        pg.click("#xlsx")  # type: ignore[attr-defined]
    path = dl.value.path()
    wb = load_workbook(io.BytesIO(Path(path).read_bytes()))
    assert {"campaign", "validity", "material balance"} <= set(wb.sheetnames)
    assert wb["material balance"]["D1"].value == "inputs [kg]"
    # every table also as CSV, linked from the page
    pg.wait_for_selector("#csvlist a[data-table='material balance']")  # type: ignore[attr-defined]
    href = pg.get_attribute("#csvlist a[data-table='material balance']", "href")  # type: ignore[attr-defined]
    csv = requests.get(f"{live.url}/{href}", timeout=30)
    assert csv.status_code == 200 and csv.text.lstrip("\ufeff").startswith("node,name,名称,inputs [kg]")
    pg.wait_for_function("document.getElementById('mtag').options.length > 0")  # type: ignore[attr-defined]
    pg.select_option("#mtag", "malt_in.total")  # type: ignore[attr-defined]
    pg.fill("#mvalue", "1234.5")  # type: ignore[attr-defined]
    pg.fill("#mtoken", "wrong")  # type: ignore[attr-defined]
    pg.click("#manual button[type=submit]")  # type: ignore[attr-defined]
    pg.wait_for_selector("#mresult.bad")  # type: ignore[attr-defined]
    assert "token" in pg.inner_text("#mresult")  # type: ignore[attr-defined]
    pg.click("button.ctl[data-action='campaign/stop']")  # type: ignore[attr-defined]
    pg.wait_for_selector("#ctlresult.bad")  # type: ignore[attr-defined]   # refused: wrong token
    assert "token" in pg.inner_text("#ctlresult")  # type: ignore[attr-defined]
    pg.fill("#mtoken", TOKEN)  # type: ignore[attr-defined]
    pg.click("#manual button[type=submit]")  # type: ignore[attr-defined]
    pg.wait_for_selector("#mresult.ok")  # type: ignore[attr-defined]
    assert "1234.5" in pg.inner_text("#mresult")  # type: ignore[attr-defined]
    pg.screenshot(path=str(output_dir / "exports.png"), full_page=True)  # type: ignore[attr-defined]
