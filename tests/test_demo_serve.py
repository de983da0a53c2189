"""`cpaudit serve` as a site runs it (waitress: no log line per request, security headers, a
clean stop on SIGTERM) and the demo's own MQTT broker (it never joins one already listening)."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import requests

from cpaudit import config
from cpaudit import demo
from cpaudit.simulators.generate import generate
from cpaudit.store import SQLiteStore
from tests.conftest import ROOT, brewery_text, site_text
from tests.servers import Mosquitto, free_port, wait_port


def test_serve_is_quiet_per_request_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(brewery_text())
    db = tmp_path / "s.db"
    st = SQLiteStore(db)
    generate(config.load(cfg), st, 0.5)
    st.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cpaudit", "serve", str(cfg), "--store",
                             str(db), "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_port(port, 30)
        for _ in range(30):
            r = requests.get(f"http://127.0.0.1:{port}/api/v1/campaign", timeout=10)
            assert r.status_code == 200
        assert r.headers["Server"] == "cpaudit"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        big = requests.post(f"http://127.0.0.1:{port}/api/v1/manual", data="x" * 200_000,
                            headers={"Content-Type": "application/json"}, timeout=10)
        assert big.status_code in (400, 413)      # 413 by waitress or Flask, never read whole
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 1 and "waitress" in lines[0], out    # one line, none per request


@pytest.fixture()
def stranger(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker the demo did not start, standing where a site's would (1883 on a real box)."""
    b = Mosquitto(tmp_path / "stranger").start()
    yield b
    b.stop()


def test_the_demo_runs_its_own_broker_beside_a_strangers(
        tmp_path: Path, stranger: Mosquitto, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "SHARED_BROKER", ("127.0.0.1", stranger.port))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(site_text())                        # the demo site: four MQTT meters
    derived, broker = demo._private_broker(str(cfg), str(tmp_path / "demo.db"))
    try:
        assert broker is not None and broker.poll() is None
        said = capsys.readouterr().out
        assert f"already listens on 127.0.0.1:{stranger.port}" in said
        mqtt = [d for d in config.load(derived).devices if d.protocol == "mqtt"]
        ports = {d.port for d in mqtt}
        assert mqtt and len(ports) == 1 and stranger.port not in ports and 1883 not in ports
        (port,) = ports
        wait_port(port, 5)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass                                       # the demo's own broker answers
        # the rest of the campaign is the user's file, untouched
        base = config.load(cfg)
        assert [d.name for d in base.devices] == [d.name for d in config.load(derived).devices]
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(10)
