"""An edge box upgraded from a version that forwarded no site and campaign tags: `cpaudit resend`
sends its whole record again, and the central reader scoped to the campaign then sees all of it,
not only what came after the upgrade. Against a real influxd."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from cpaudit.store import Batch, SQLiteStore
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from tests.conftest import ROOT
from tests.servers import InfluxD

T0 = 1_795_000_000 * 10**9
S = 10**9


def _write(st: SQLiteStore, start: int, n: int) -> None:
    ts = T0 + (start + np.arange(n, dtype=np.int64)) * S
    st.write(Batch(["flow"] * n, ts, np.arange(start, start + n, dtype=np.float64),
                   np.zeros(n, np.int8), np.zeros(n, np.int8)))


def test_resend_after_the_series_changed(tmp_path: Path, influxd: InfluxD) -> None:
    db = tmp_path / "edge.db"
    edge = SQLiteStore(db)
    edge.begin_campaign(T0, "C")
    _write(edge, 0, 600)
    # the old version: the same sink name, no site and campaign on its points
    old = Forwarder(edge, InfluxV1Store(influxd.url, "office"), "office")
    old.drain()
    old.sink.close()
    _write(edge, 600, 300)                     # after the upgrade
    scope = {"site": "S", "campaign": "C"}
    new = Forwarder(edge, InfluxV1Store(influxd.url, "office", scope=scope, create=False),
                    "office")
    new.drain()
    central = InfluxV1Store(influxd.url, "office", scope=scope, create=False)
    assert central.count(["flow"]) == 300      # what came after the upgrade only
    edge.close()
    r = subprocess.run([sys.executable, "-m", "cpaudit", "resend", "--store", str(db)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "office: forwards again from the first sample" in r.stdout
    edge = SQLiteStore(db)
    new.source = edge
    new.drain()                                # a running collector's next batches
    assert central.count(["flow"]) == 900
    assert central.rollup(["flow"]).equals(edge.rollup(["flow"]))
    assert central.campaign_start() == T0
    # sent twice, kept once: the write is idempotent on series and time
    again = subprocess.run([sys.executable, "-m", "cpaudit", "resend", "--store", str(db),
                            "--sink", "office"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0
    new.drain()
    assert central.count(["flow"]) == 900
    central.close()
    new.sink.close()
    edge.close()


def test_resend_refuses_what_is_not_a_record(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "cpaudit", "resend", "--store",
                        str(tmp_path / "none.db")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "no such store" in r.stderr
    empty = tmp_path / "empty.db"
    SQLiteStore(empty).close()
    r = subprocess.run([sys.executable, "-m", "cpaudit", "resend", "--store", str(empty)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "nothing to send again" in r.stdout
