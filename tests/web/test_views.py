"""Every page in a real browser (Debian's Chromium driven by Playwright) at a phone's width (390 px)
and a desktop's (1366 px), in English and in Chinese, on a generated 14 h batch campaign with a
leak at the anaerobic reactor (the brewery demo with ``--leak anaerobic:0.08``):

- no page is wider than the window (tables scroll inside themselves);
- every chart axis names its quantity and its unit, and the time axes the campaign's zone;
- no English word on a Chinese page outside units, proper names and identifiers;
- the closure chart agrees with the table under it (the same verdict per node and overall), draws
  what the analyzer signs (/api/v1/closure-series, one balance per completed cycle) and makes the
  failing node stand out;
- figures grey out when the server stops and come back when it returns;
- zooming the tag explorer asks the server again.

Screenshots of every page in both languages and at both widths go to test-output/pages/.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from werkzeug.serving import make_server

from tests.servers import free_port
from tests.web.zh_words import ALLOWED, FIND_ENGLISH
from cpaudit.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "examples" / "brewery.yaml"
WIDTHS = (390, 1366)
LANGS = ("en", "zh")
PAGES = ("", "balances", "devices", "explorer", "exports")


class Served:
    """The web app over a store, on a port that stays the same when it is stopped and started
    again (the stale-data test stops it)."""

    def __init__(self, store: Path) -> None:
        self.app = create_app({"CPAUDIT_CONFIG": str(CONFIG), "CPAUDIT_STORE": str(store)})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Any = None

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store = tmp_path_factory.mktemp("views") / "leak.db"
    _generate(store, "14", "--leak", "anaerobic:0.08")
    s = Served(store)
    s.start()
    yield s
    s.stop()


def _generate(store: Path, hours: str, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "cpaudit", "generate", str(CONFIG), "--hours", hours,
                    "--store", str(store), "--quiet", *args],
                   check=True, env=env, cwd=ROOT, capture_output=True, timeout=300)


def _page(browser: Any, width: int, lang: str) -> tuple[Any, Any, list[str]]:
    # a browser in another zone than the campaign's: the pages must still show the campaign's
    # bypass_csp: wait_for_function evaluates a string, which the CSP forbids (test_csp.py
    # checks the pages under the real one)
    ctx = browser.new_context(viewport={"width": width, "height": 900},
                              timezone_id="America/New_York", bypass_csp=True)
    ctx.add_init_script(f"localStorage.setItem('cpaudit.lang', '{lang}')")
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, pg, errors


def _ready(pg: Any, name: str) -> None:
    pg.wait_for_selector("#link[data-state=live]", timeout=30_000)
    pg.wait_for_function("Number(document.body.dataset.refreshes) >= 1", timeout=30_000)
    if name == "balances":
        pg.wait_for_selector("#history[data-verdicts]", timeout=30_000)
        pg.wait_for_selector("#sankey[data-links] svg", timeout=30_000)
    if name == "explorer":
        pg.wait_for_selector("#series[data-points]", timeout=30_000)
    if name == "":
        pg.wait_for_selector("#loadchart .main-svg", state="attached", timeout=30_000)
    pg.wait_for_timeout(300)


AXES = """() => [...document.querySelectorAll('.js-plotly-plot')].filter((g) => g.offsetParent)
  .filter((g) => !g.querySelector('.sankey'))
  .map((g) => ({id: g.id,
    x: [...g.querySelectorAll('.g-xtitle text')].map((t) => t.textContent),
    y: [...g.querySelectorAll('.g-ytitle text')].map((t) => t.textContent)}))"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGS)
def test_every_page_fits_has_units_and_speaks_one_language(site: Served, browser: Any, width: int,
                                                           lang: str, output_dir: Path) -> None:
    out = output_dir / "pages"
    out.mkdir(exist_ok=True)
    ctx, pg, errors = _page(browser, width, lang)
    try:
        for name in PAGES:
            pg.goto(f"{site.url}/{name}")
            _ready(pg, name)
            if name == "" and lang == "en":      # the progress in the campaign's unit, in words
                assert pg.inner_text("#required") == "of 3 cycles required (7.3.3.3 e)"
                done = pg.get_attribute("#vprogress", "data-done")
                assert re.fullmatch(rf"{done} cycles \(3 required\); duration met from "
                                    r"\d{4}-\d\d-\d\d \d\d:\d\d", pg.inner_text("#vprogress"))
            if name == "" and lang == "zh":
                assert pg.inner_text("#required") == "共需 3 个周期 （7.3.3.3 e）"
            tabs = ["material", "water", "energy", "pollutant"] if name == "balances" else [None]
            drawn = 0
            for tab in tabs:
                where = f"{name or 'campaign'}{'/' + tab if tab else ''} at {width} px in {lang}"
                if tab:
                    pg.click(f"#layers button[data-layer={tab}]")
                    if tab != "pollutant":
                        pg.wait_for_selector(f"#sankey[data-layer={tab}] svg", timeout=30_000)
                    pg.wait_for_timeout(600)
                assert pg.evaluate("document.documentElement.scrollWidth") <= width, where
                charts = pg.evaluate(AXES)
                drawn += len(charts)
                for c in charts:   # quantity [unit] on y; time (zone, offset) on x
                    assert c["y"] and "[" in c["y"][0] and c["y"][0].rstrip().endswith("]"), (where, c)
                    assert c["x"] and "Asia/Shanghai, UTC+08:00" in c["x"][0], (where, c)
                if lang == "zh":
                    english = pg.evaluate(FIND_ENGLISH, ALLOWED)
                    assert not english, (where, english[:20])
                shot = f"{name or 'campaign'}{'-' + tab if tab and tab != 'material' else ''}"
                pg.screenshot(path=str(out / f"{shot}-{lang}-{width}.png"), full_page=True)
            if name in ("", "balances", "explorer"):
                assert drawn, f"{name}: no chart drawn"
    finally:
        ctx.close()
    assert not errors, errors


def test_closure_chart_agrees_with_the_table(site: Served, browser: Any) -> None:
    ctx, pg, errors = _page(browser, 1366, "en")
    try:
        pg.goto(f"{site.url}/balances")
        _ready(pg, "balances")
        table = pg.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#bnodes tbody tr')]
            .map((r) => [r.dataset.node, {ok: r.dataset.ok, closure: r.querySelector('.closure').textContent}]))""")
        chart = pg.evaluate("""() => { const g = document.getElementById('history');
            const tr = g.data.find((d) => d.meta === 'table');
            return {verdicts: JSON.parse(g.dataset.verdicts), failing: g.dataset.failing, basis: g.dataset.basis,
              table: Object.fromEntries(tr.customdata.map((n, i) => [n, {y: tr.y[i], colour: tr.marker.color[i]}])),
              lines: Object.fromEntries(g.data.filter((d) => d.meta !== 'table')
                .map((d) => [d.meta, {y: d.y, width: d.line.width, colour: d.line.color}]))}; }""")
        # the same verdict per node and overall, the same figure
        assert set(chart["table"]) == set(table)
        for node, row in table.items():
            assert str(chart["verdicts"][node]).lower() == row["ok"], node
            assert f"{chart['table'][node]['y']:.2f}" == row["closure"], node
            assert chart["table"][node]["colour"] == ("#c62828" if row["ok"] == "false" else "#2e7d32")
        # the leak: anaerobic and overall beyond the limit in the table and standing out in the chart
        assert table["anaerobic"]["ok"] == "false" and table["overall"]["ok"] == "false"
        assert table["mash"]["ok"] == "true"
        assert "anaerobic" in chart["failing"].split(",")
        assert chart["lines"]["anaerobic"]["colour"] == "#c62828"
        assert chart["lines"]["anaerobic"]["width"] > chart["lines"]["mash"]["width"]
        # the lines are the analyzer's balances per completed cycle, nothing else
        api = requests.get(f"{site.url}/api/v1/closure-series", params={"layer": "material"},
                           timeout=60).json()
        assert chart["basis"] == api["basis"] == "cycle"
        assert len(api["t_ms"]) >= 3
        for node, n in api["nodes"].items():
            assert chart["lines"][node]["y"] == n["closure_pct"], node
            assert all(abs(v) > api["limit_pct"] for v in n["closure_pct"]) == (node in ("anaerobic", "overall"))
    finally:
        ctx.close()
    assert not errors, errors


def test_stale_figures_grey_out_and_recover(site: Served, browser: Any) -> None:
    ctx, pg, errors = _page(browser, 1366, "en")
    try:
        pg.goto(f"{site.url}/balances")
        _ready(pg, "balances")
        live = pg.evaluate("getComputedStyle(document.getElementById('bverdict')).color")
        assert pg.get_attribute("body", "data-stale") == "0"
        site.stop()
        try:
            t0 = time.monotonic()
            pg.wait_for_selector("body.stale", timeout=10_000)
            assert time.monotonic() - t0 < 8          # the heartbeat runs every 2 s
            assert pg.get_attribute("#link", "data-state") == "lost"
            grey = pg.evaluate("getComputedStyle(document.getElementById('bverdict')).color")
            assert grey != live and grey == "rgb(138, 150, 163)"
            assert float(pg.evaluate("getComputedStyle(document.querySelector('#bnodes')).opacity")) < 1
        finally:
            site.start()
        pg.wait_for_selector("body:not(.stale)", timeout=15_000)
        pg.wait_for_selector("#link[data-state=live]")
        assert pg.evaluate("getComputedStyle(document.getElementById('bverdict')).color") == live
    finally:
        ctx.close()
    assert not errors, errors


def test_explorer_default_range_fits_and_zoom_asks_the_server(site: Served, browser: Any) -> None:
    ctx, pg, errors = _page(browser, 1366, "en")
    asked: list[str] = []
    pg.on("request", lambda r: asked.append(r.url) if "/api/v1/series" in r.url else None)
    try:
        pg.goto(f"{site.url}/explorer")
        _ready(pg, "explorer")
        c = requests.get(f"{site.url}/api/v1/campaign", timeout=10).json()
        first = {k: int(pg.get_attribute("#series", f"data-{k}")) for k in ("from-ns", "to-ns")}
        # the default (72 h, more than the 14 h of data) fits the data: the campaign's first to last reading
        assert abs(first["from-ns"] - c["start_ns"]) < 60e9
        assert abs(first["to-ns"] - c["last_ts"]) < 60e9
        bucket0 = float(pg.get_attribute("#series", "data-bucket-s"))
        n0 = len(asked)
        box = pg.locator("#series .nsewdrag").bounding_box()
        y = box["y"] + box["height"] / 2
        pg.mouse.move(box["x"] + box["width"] * 0.45, y)
        pg.mouse.down()
        pg.mouse.move(box["x"] + box["width"] * 0.50, y, steps=5)
        pg.mouse.up()
        pg.wait_for_function("Number(document.getElementById('series').dataset.requests) >= 2")
        assert len(asked) > n0 and "from=" in asked[-1] and "to=" in asked[-1]
        zoomed = {k: int(pg.get_attribute("#series", f"data-{k}")) for k in ("from-ns", "to-ns")}
        span0, span1 = first["to-ns"] - first["from-ns"], zoomed["to-ns"] - zoomed["from-ns"]
        assert 0.02 < span1 / span0 < 0.1               # about the 5 % of the width dragged
        assert float(pg.get_attribute("#series", "data-bucket-s")) < bucket0 / 5
        assert first["from-ns"] < zoomed["from-ns"] < zoomed["to-ns"] < first["to-ns"]
    finally:
        ctx.close()
    assert not errors, errors


# every label and unit box of a diagram, as the browser lays it out: pairs that overlap (a label
# inside its own unit box is where it belongs)
OVERLAPS = r"""() => {
  const boxes = [...document.querySelectorAll('svg text, svg rect.unit')].map((e) => {
    const b = e.getBBox();
    return {t: e.textContent.slice(0, 50), x: b.x, y: b.y, w: b.width, h: b.height, rect: e.tagName === 'rect'}; });
  const inside = (p, q) => p.x >= q.x - 0.5 && p.y >= q.y - 0.5 && p.x + p.w <= q.x + q.w + 0.5 && p.y + p.h <= q.y + q.h + 0.5;
  const bad = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
    const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
    if (ox > 0.5 && oy > 0.5 && !(a.rect && inside(b, a)) && !(b.rect && inside(a, b))) bad.push(`${a.t} × ${b.t}`);
  }
  const svg = document.querySelector('svg');
  return {bad, flows: document.querySelectorAll('svg path.flow').length,
          labels: [...document.querySelectorAll('svg text.flow-label')].map((t) => t.textContent),
          width: Number(svg.getAttribute('width')), right: Math.max(...boxes.map((b) => b.x + b.w))};
}"""


@pytest.mark.parametrize("lang", LANGS)
def test_exported_diagram_has_no_overlap_and_an_amount_on_every_flow(site: Served, browser: Any,
                                                                      lang: str,
                                                                      output_dir: Path) -> None:
    report = requests.get(f"{site.url}/api/v1/report", params={"validity": "0"}, timeout=60).json()
    pg = browser.new_page()
    try:
        for layer in ("material", "water", "energy"):
            r = requests.get(f"{site.url}/api/v1/sankey.svg",
                             params={"layer": layer, "lang": lang}, timeout=60)
            assert r.status_code == 200
            (output_dir / "pages").mkdir(exist_ok=True)
            (output_dir / "pages" / f"diagram-{layer}-{lang}.svg").write_text(r.text)
            pg.set_content(r.text)
            got = pg.evaluate(OVERLAPS)
            assert not got["bad"], (layer, lang, got["bad"][:10])
            assert got["right"] <= got["width"], (layer, lang)     # nothing cut at the edge
            flows = [x for x in report["sankey"][layer]["links"] if x["value"]]
            assert got["flows"] == len(flows)
            unit = report["sankey"][layer]["unit"]
            for f in flows:        # each flow's name with its amount and unit, in the language
                name = f["label_zh"] if lang == "zh" and f["label_zh"] else f["label"]
                want = f"{name} {f['value']:,.1f} {unit}"
                assert any(want in x for x in got["labels"]), (layer, want)
            pg.screenshot(path=str(output_dir / "pages" / f"diagram-{layer}-{lang}.png"), full_page=True)
    finally:
        pg.close()


def test_chinese_pages_of_a_short_campaign_with_faults(tmp_path: Path, browser: Any,
                                                      output_dir: Path) -> None:
    """8 h: one complete brew of the three required, a leak at the mash tun, two meters
    dropping out: the sentences of a campaign not valid yet, in Chinese too."""
    store = tmp_path / "faults.db"
    _generate(store, "8", "--leak", "mash:0.07", "--fault", "dropout device=fm_water start=2h duration=20m",
              "--fault", "dropout device=fm_steam start=5h duration=2m")
    s = Served(store)
    s.start()
    ctx, pg, errors = _page(browser, 1366, "zh")
    try:
        for name in ("", "balances"):
            pg.goto(f"{s.url}/{name}")
            _ready(pg, name)
            for tab in (["material", "water", "energy", "pollutant"] if name else [None]):
                if tab:
                    pg.click(f"#layers button[data-layer={tab}]")
                    pg.wait_for_timeout(600)
                english = pg.evaluate(FIND_ENGLISH, ALLOWED)
                assert not english, (name, tab, english[:20])
        assert pg.get_attribute("#bverdict", "data-verdict") == "ok"       # pollutants
        pg.click("#layers button[data-layer=material]")
        assert pg.get_attribute("#bverdict", "data-verdict") == "exceeded"
        pg.screenshot(path=str(output_dir / "pages" / "balances-faults-zh-1366.png"), full_page=True)
    finally:
        ctx.close()
        s.stop()
    assert not errors, errors
