"""Every page under the server's Content-Security-Policy, enforced by a real browser (Debian's
Chromium through Playwright, without bypass_csp): no script, style, image or connection is
refused, nothing is fetched from another origin, and the charts draw. (A browser test that
evaluates string predicates in the page, wait_for_function, needs bypass_csp: the policy forbids
eval, rightly.)"""
from __future__ import annotations



from tests.web.test_api import LiveCampaign

PAGES = {"/": True, "/balances": True, "/devices": False, "/explorer": True, "/exports": False}


def test_every_page_works_under_its_csp(live: LiveCampaign, browser: object) -> None:
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})  # type: ignore[attr-defined]
    try:
        for path, charts in PAGES.items():
            pg = ctx.new_page()
            refused: list[str] = []
            foreign: list[str] = []
            pg.on("console", lambda m: refused.append(m.text)
                  if "Content Security Policy" in m.text or "Refused to" in m.text else None)
            pg.on("pageerror", lambda e: refused.append(str(e)))
            pg.on("request", lambda r: foreign.append(r.url)
                  if not r.url.startswith((live.url, "data:", "blob:")) else None)
            resp = pg.goto(live.url + path)
            assert resp is not None and resp.status == 200
            assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
            if charts:
                pg.wait_for_selector(".js-plotly-plot", timeout=20000)
            pg.wait_for_timeout(1500)
            assert not refused, (path, refused)
            assert not foreign, (path, foreign)
            pg.close()
    finally:
        ctx.close()
