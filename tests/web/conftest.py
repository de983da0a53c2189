"""Web test fixtures: a live campaign (simulators + collector) with the app on a free port."""
from __future__ import annotations

import shutil
import time
from typing import Iterator

import playwright.sync_api as playwright
import pytest
import requests

from tests.web.test_api import LiveCampaign


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCampaign]:
    lc = LiveCampaign(tmp_path_factory.mktemp("web"))
    lc.start()
    # Wait for a window of at least 6 s: the steam meter's float32 totalizer resolves ~0.24 kg at
    # ~3 900 t, so over 2 s (0.7 kg of steam) it alone moves the kettle's closure by ~4 %.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        b = requests.get(lc.url + "/api/v1/balance", timeout=5).json()
        if b["verdict"] != "no-data" and b["hours"] * 3600 >= 6:
            break
        time.sleep(0.3)
    yield lc
    lc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (no browser download), one per test module."""
    exe = shutil.which("chromium")
    assert exe, "chromium missing: scripts/install-system-deps.sh installs it"
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()
