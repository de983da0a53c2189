"""A reading entered on the central exports page in Chromium travels to the edge box: `cpaudit
serve --store influxdb://…` with CPAUDIT_TOKEN and CPAUDIT_CHANGE_KEY, an edge record whose sink
names the key; the form says the reading is on its way, the list of changes shows it pending,
then applied once the edge's forwarder has read it, in English and in Chinese."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from cpaudit.store.influx import InfluxV1Store
from tests.servers import InfluxD
from tests.web.test_central_changes import DB, KEY, TOKEN, Edge
from tests.web.test_fleet_browser import _watch, central_served
from tests.web.zh_words import ALLOWED, FIND_ENGLISH


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Edge]]:
    srv = InfluxD(tmp_path / "influxd").start()
    try:
        InfluxV1Store(srv.url, DB).close()
        edge = Edge(tmp_path, srv, "Office entry", "Brewery A, Beijing", "CPAUDIT_TEST_KEY",
                    monkeypatch)
        edge.sync()                           # its status says it takes changes
        try:
            with central_served(f"influxdb://127.0.0.1:{srv.port}/{DB}", CPAUDIT_TOKEN=TOKEN,
                                CPAUDIT_CHANGE_KEY=KEY) as base:
                yield base.rstrip("/") + edge.prefix, edge
        finally:
            edge.fwd.sink.close()
            edge.st.close()
    finally:
        srv.stop()


def test_a_reading_entered_centrally_in_the_browser_lands_on_the_edge(
        served: tuple[str, Edge], browser: Any, output_dir: Path) -> None:
    base, edge = served
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        pg = ctx.new_page()
        seen = _watch(pg, base.split("/c/")[0] + "/")
        pg.goto(base + "exports")
        pg.wait_for_selector("#mtag option[value='hot_wort.total']", state="attached",
                             timeout=60_000)
        pg.select_option("#mtag", "hot_wort.total")
        pg.fill("#mvalue", "4321")
        pg.fill("#mtoken", TOKEN)
        pg.click("#manual button[type=submit]")
        pg.wait_for_selector("#mresult.ok", timeout=30_000)
        assert pg.inner_text("#mresult").startswith("sent to the edge box")
        pg.wait_for_selector("#changelist tr", timeout=30_000)
        row = pg.locator("#changelist tr").first
        assert row.locator("td").nth(3).inner_text() == "pending"
        assert edge.st.manual().empty                       # not on the edge yet

        edge.sync()                                        # the edge's forwarder reads it
        m = edge.st.manual()
        assert list(m["tag"]) == ["hot_wort.total"] and list(m["value"]) == [4321.0]
        pg.reload()
        pg.wait_for_selector("#changelist tr td.ok", timeout=30_000)
        assert row.locator("td").nth(3).inner_text() == "applied ✓"
        assert row.locator("td").nth(2).inner_text() == "hot_wort.total = 4321"
        pg.screenshot(path=str(output_dir / "central-change-en.png"), full_page=True)

        pg.click("#lang")
        pg.wait_for_selector("html[lang='zh-CN']", state="attached")
        pg.wait_for_function("document.querySelector('#changelist tr td.ok') && "
                             "document.querySelector('#changelist tr td.ok').textContent"
                             " === '已生效 ✓'", timeout=30_000)
        english = pg.evaluate(FIND_ENGLISH, ALLOWED)
        assert not english, english[:20]
        pg.screenshot(path=str(output_dir / "central-change-zh.png"), full_page=True)
        assert not seen["refused"] and not seen["foreign"] and not seen["failed"], seen
    finally:
        ctx.close()
