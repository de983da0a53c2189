"""The collector killed with SIGKILL mid-run and restarted, forwarding to a real influxd:
the store is intact, the gap is recorded as `down` and limited to the down time, forwarding
resumes from its cursor, and InfluxDB ends up with the same samples and values as SQLite."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cpaudit.store import Reason, SQLiteStore
from cpaudit.store.influx import InfluxV1Store
from tests.conftest import ROOT, brewery_text, with_influx_sink
from tests.servers import InfluxD

INTERVAL_NS = 500_000_000


def test_sigkill_restart_gap_and_forwarding(tmp_path: Path, influxd: InfluxD) -> None:
    text = with_influx_sink(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}), influxd.url,
                            "site", batch_size=200)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    InfluxV1Store(influxd.url, "site").close()
    db = tmp_path / "c.db"

    def collect() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "cpaudit", "collect", str(cfg), "--store",
                                 str(db)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    sim = subprocess.Popen([sys.executable, "-m", "cpaudit", "simulate", str(cfg)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        col = collect()
        time.sleep(4.0)
        col.send_signal(signal.SIGKILL)
        col.wait(10)
        killed_at = time.time_ns()
        time.sleep(3.0)
        restarted_at = time.time_ns()
        col = collect()
        time.sleep(4.0)
        col.send_signal(signal.SIGTERM)
        assert col.wait(30) == 0
    finally:
        sim.terminate()
        sim.wait(10)
    st = SQLiteStore(db)
    hot = st.read(["hot_wort.total"])
    ts = hot["ts"].to_numpy()
    assert (np.diff(ts) == INTERVAL_NS).all(), "a tick is missing: the gap must be explicit"
    down = hot[hot["reason"] == Reason.DOWN]
    gap_s = (down["ts"].max() - down["ts"].min()) / 1e9 if len(down) else 0
    # the gap covers the time the collector was away (3 s + start-up), and not much more
    assert 2.5 <= gap_s <= (restarted_at - killed_at) / 1e9 + 4.0, gap_s
    # from the first tick not committed before the kill to the last before the restart
    assert killed_at - 2_000_000_000 <= down["ts"].min() <= killed_at + INTERVAL_NS
    assert down["ts"].max() >= restarted_at
    sink = InfluxV1Store(influxd.url, "site", create=False)
    remote = sink.read(None)
    local = st.read(None)
    assert len(remote) == len(local)
    cols = ["tag", "ts", "quality", "reason"]
    assert (remote[cols].to_numpy() == local[cols].to_numpy()).all()
    assert np.array_equal(remote["value"].to_numpy(), local["value"].to_numpy(), equal_nan=True)
    sink.close()
    st.close()
