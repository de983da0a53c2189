"""Readings entered by hand as a store-level record: listed by ``manual()`` on every backend, and
on the edge's SQLite retracted without being deleted (bad quality, its minute of the rollup
recomputed, written again in the write order so that a forwarder ships the retraction)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from cpaudit.store import Batch, Quality, Reason, SQLiteStore
from cpaudit.store.influx import InfluxV1Store
from tests.servers import InfluxD

T0 = 1_795_000_020_000_000_000      # ns, 20 s into a minute
MIN = 60_000_000_000


@pytest.fixture(scope="module")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD]:
    srv = InfluxD(tmp_path_factory.mktemp("influx")).start()
    yield srv
    srv.stop()


def _readings() -> Batch:
    """Meter readings each second of two minutes, two readings by hand among them."""
    tags = ["w"] * 120 + ["w", "m"]
    ts = [T0 + i * 10**9 for i in range(120)] + [T0 + 5 * 10**9 + 1, T0 + 70 * 10**9 + 3]
    reason = [0] * 120 + [int(Reason.MANUAL)] * 2
    return Batch(tags=tags, ts=ts, value=[1.0] * 120 + [500.0, 7.0], quality=[0] * 122,
                 reason=reason)


@pytest.mark.parametrize("backend", ["sqlite", "influxdb-v1"])
def test_manual_lists_the_hand_readings_in_time_order(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    st: SQLiteStore | InfluxV1Store
    if backend == "sqlite":
        st = SQLiteStore(tmp_path / "m.db")
    else:
        st = InfluxV1Store(request.getfixturevalue("influx_server").url, "manual_record")
    try:
        assert len(st.manual()) == 0
        st.write(_readings())
        if isinstance(st, SQLiteStore):
            st.flush_rollup()
        m = st.manual()
        assert m["tag"].tolist() == ["w", "m"] and m["value"].tolist() == [500.0, 7.0]
        assert m["ts"].tolist() == [T0 + 5 * 10**9 + 1, T0 + 70 * 10**9 + 3]
    finally:
        st.close()


def test_a_retraction_keeps_the_reading_and_recomputes_its_minute(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "r.db")
    st.write(_readings())
    st.flush_rollup()
    minute = T0 // MIN * MIN
    before = st.rollup(["w"], minute, minute + MIN)
    assert float(before["vmax"].max()) == 500.0 and int(before["manual"].sum()) == 1
    seq = st.max_seq()
    hand = T0 + 5 * 10**9 + 1
    assert st.retract("w", hand) is True
    assert st.retract("w", hand) is False            # retracted already
    assert st.retract("w", T0) is False              # a meter's reading is not retracted
    row = st.read(["w"], hand, hand + 1)
    assert row["value"].tolist() == [500.0] and row["quality"].tolist() == [int(Quality.BAD)]
    assert row["reason"].tolist() == [int(Reason.MANUAL)]
    after, changed = st.changes(seq, 100)             # what a forwarder ships next
    assert changed.tags == ["w"] and changed.quality.tolist() == [int(Quality.BAD)]
    for r in (st.rollup(["w"], minute, minute + MIN), st.rollup_since(seq, ["w"])[1]):
        assert float(r["vmax"].max()) == 1.0              # the minute without the reading
        assert int(r["good"].sum()) == 60 and int(r["rows"].sum()) == 61
    st.flush_rollup()
    merged = st.rollup(["w"], minute, minute + MIN)
    assert int(merged["rows"].sum()) == 61 and int(merged["manual"].sum()) == 1
    assert st.manual()["quality"].tolist() == [int(Quality.BAD), 0]
    st.close()
