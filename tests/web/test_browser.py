"""The campaign page in a real browser (Debian's Chromium, headless): its JavaScript renders the
figures of the API and refreshes them without reloading. A screenshot goes to test-output/."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import requests

from tests.web.test_api import LiveCampaign

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp: Path, *args: str) -> str:
    exe = shutil.which("chromium")
    assert exe, "chromium missing: scripts/install-system-deps.sh installs it"
    out = subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp}", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_page_renders_api_figures_and_refreshes(live: LiveCampaign, tmp_path: Path,
                                                output_dir: Path) -> None:
    dom = chromium(tmp_path / "a", "--virtual-time-budget=7000", "--dump-dom", live.url + "/")
    # the balance over exactly the window the page shows (the live window moves on meanwhile)
    start, end = re.search(r'id="window"[^>]*data-start-ns="(\d+)"[^>]*data-end-ns="(\d+)"',
                           dom).groups()  # type: ignore[union-attr]
    api = requests.get(live.url + "/api/v1/balance", params={"from": start, "to": end},
                       timeout=5).json()
    assert (str(api["start_ns"]), str(api["end_ns"])) == (start, end)
    refreshes = int(re.search(r'<body[^>]*data-refreshes="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert refreshes >= 2, "the page did not refresh itself"
    assert re.search(r'id="devices">8 / 8<', dom)
    assert 'data-state="live"' in dom
    shown = dict(re.findall(r'data-node="(\w+)".*?class="closure \w+">([-\d.]+)<', dom))
    want = {n["node"]: n["closure_pct"] for n in api["nodes"] + [api["overall"]]}
    assert set(shown) == set(want) == {"mash", "kettle", "overall"}
    for node, value in shown.items():
        assert value == f"{want[node]:.2f}", node       # as displayed: two decimals
    # validity: a campaign of seconds is not valid yet, and the page says why, duration first
    assert re.search(r'id="validity" data-verdict="invalid">not valid yet<', dom) or \
        re.search(r'id="validity"[^>]*data-verdict="invalid"', dom)
    checks = re.findall(r'<tr data-check="([^"]+)">', dom)
    assert "duration" in checks
    v = requests.get(live.url + "/api/v1/validity", timeout=10).json()
    assert checks[0] == v["fixes"][0]["check"]
    assert re.search(r'id="vprogress">[\d.]+ of 72 h; duration met from \d{4}-', dom)
    shot = output_dir / "campaign.png"
    chromium(tmp_path / "b", "--window-size=1200,900", "--virtual-time-budget=5000",
             f"--screenshot={shot}", live.url + "/")
    assert shot.stat().st_size > 10_000
