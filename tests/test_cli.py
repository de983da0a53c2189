"""The command line as a user runs it: analyze on a recorded store, and the whole demo."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, brewery_text
from tests.servers import free_port


def processes_mentioning(text: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            out.append(int(pid))
    return out


@pytest.mark.e2e
def test_demo_serves_balance_flags_leak_and_stops_cleanly(tmp_path: Path) -> None:
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(brewery_text())
    store = tmp_path / "demo.db"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpaudit", "demo", "--config", str(cfg), "--store", str(store),
         "--port", str(port), "--leak", "kettle:0.12", "--history", "0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/api/v1/balance"
    balance = None
    try:
        deadline = time.monotonic() + 60          # "within a minute of start"
        while time.monotonic() < deadline:
            try:
                b = requests.get(url, timeout=2).json()
                if b["verdict"] != "no-data" and b["hours"] * 3600 >= 8:
                    balance = b
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        assert balance is not None, "no balance within a minute"
        nodes = {n["node"]: n for n in balance["nodes"]}
        assert nodes["kettle"]["ok"] is False and nodes["kettle"]["closure_pct"] > 5
        assert nodes["mash"]["ok"] is True
        assert processes_mentioning(str(store))      # the collector and the web are running
    finally:
        proc.send_signal(signal.SIGINT)               # Ctrl-C
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"open http://127.0.0.1:{port}/" in out
    time.sleep(0.5)
    assert processes_mentioning(str(cfg)) == [], "something was left running"

    res = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                          str(store), "--json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    mat = doc["balances"]["material"]
    assert {n["node"]: n["ok"] for n in mat["nodes"]} == {"mash": True, "kettle": False}
    top = doc["reconciliation"]["material"]["suspects"][0]
    assert "kettle" in {top["where"], *top["equivalent"]}
    text = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                           str(store)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "kettle" in text.stdout and "BEYOND 5 %" in text.stdout


def test_analyze_bad_inputs(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(brewery_text())
    res = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                          str(tmp_path / "none.db")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "no such store" in res.stderr and "Traceback" not in res.stderr
    empty = tmp_path / "empty.db"
    from cpaudit.store import SQLiteStore
    SQLiteStore(empty).close()
    res = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                          str(empty), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0
    assert json.loads(res.stdout)["balances"]["material"]["verdict"] == "no-data"
    res = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                          str(empty), "--from", "noon"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode != 0 and "bad time 'noon'" in res.stderr


def test_serve_refuses_public_bind_without_token(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(brewery_text())
    env = {k: v for k, v in os.environ.items() if k != "CPAUDIT_TOKEN"}
    res = subprocess.run([sys.executable, "-m", "cpaudit", "serve", str(cfg), "--store",
                          str(tmp_path / "s.db"), "--host", "0.0.0.0"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=30)
    assert res.returncode == 2 and "access token" in res.stderr


@pytest.mark.parametrize("hours", ["1", "0.1667"])
def test_analyze_answers_from_the_first_minute(tmp_path: Path, hours: str) -> None:
    """A batch campaign (the demo site) of 1 h and of 10 min: no complete brew yet. analyze
    exits 0 with no traceback (it was KeyError: 'water_in'), says that there is no complete cycle
    and when the first one completes (3 h a brew: one to two brews after the last reading)."""
    from tests.conftest import site_text
    cfg = tmp_path / "site.yaml"
    cfg.write_text(site_text())
    store = tmp_path / "s.db"
    gen = subprocess.run([sys.executable, "-m", "cpaudit", "generate", str(cfg), "--hours", hours,
                          "--store", str(store), "--quiet"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert gen.returncode == 0, gen.stderr
    res = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                          str(store)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "no complete production cycle" in res.stdout
    assert "the first complete cycle ends at the earliest at about" in res.stdout
    js = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", str(cfg), "--store",
                         str(store), "--json"], capture_output=True, text=True, cwd=ROOT,
                        timeout=120)
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["balances"]["material"]["verdict"] == "no-data"
    assert doc["balance_window"]["first_cycle"].startswith("no complete cycle yet")
    assert doc["validity"]["verdict"] == "invalid"
    assert doc["validity"]["fixes"][0]["check"] == "duration"


def test_from_to_in_a_zone_with_daylight_saving_are_resolved_or_refused() -> None:
    """Europe/Berlin 2026: clocks forward 29 March 02:00 -> 03:00, back 25 October 03:00 ->
    02:00 (EU rule: last Sunday of March and of October, 01:00 UTC)."""
    from cpaudit.cli import _time
    berlin = "Europe/Berlin"
    with pytest.raises(SystemExit, match="does not exist in Europe/Berlin"):
        _time("2026-03-29T02:30", berlin)
    with pytest.raises(SystemExit, match=r"happened twice .*\+02:00 or .*\+01:00"):
        _time("2026-10-25T02:30", berlin)
    # either side of the changes, and with an explicit offset, times are taken as given
    assert _time("2026-10-25T02:30+01:00", berlin) == 1_792_891_800 * 10**9
    assert _time("2026-10-25T02:30+02:00", berlin) == 1_792_888_200 * 10**9
    assert _time("2026-03-29T03:30", berlin) == 1_774_747_800 * 10**9
    assert _time("2026-03-29T01:30", berlin) == 1_774_744_200 * 10**9
    assert _time("2026-11-24T08:00:00.000001", "Asia/Shanghai") == 1_795_478_400_000_001_000
    for bad in ("99999999999999999999999", "9999-12-31T00:00+00:00", "²", "1e9"):
        with pytest.raises(SystemExit):
            _time(bad, berlin)
