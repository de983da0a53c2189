"""The collector killed with SIGKILL mid-run: the store stays intact and every tick that was
acknowledged (committed) is complete — all of a device's tags, or none."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cpaudit.store import SQLiteStore
from tests.conftest import ROOT, brewery_text


def test_sigkill_leaves_an_intact_store(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}))
    db = tmp_path / "c.db"
    sim = subprocess.Popen([sys.executable, "-m", "cpaudit", "simulate", str(cfg)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        col = subprocess.Popen([sys.executable, "-m", "cpaudit", "collect", str(cfg), "--store",
                                str(db)], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(4.0)
        col.send_signal(signal.SIGKILL)
        col.wait(10)
    finally:
        sim.terminate()
        sim.wait(10)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    st = SQLiteStore(db)
    df = st.read(None)
    st.close()
    assert len(df) > 0
    per_tick = df[df["tag"].isin(["water_in.flow", "water_in.total", "water_in.total_int",
                                  "water_in.total_frac", "water_in.signal_quality",
                                  "_health.fm_water.online"])].groupby("ts").size()
    assert (per_tick == 6).all(), per_tick[per_tick != 6]
