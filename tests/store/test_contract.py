"""The contract every Store backend must pass (STYLE.md: one suite, parametrised over backends):
SQLite, and InfluxDB through its v1 HTTP API against a real ``influxd`` started on a free port."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from cpaudit.store import SAMPLE_COLUMNS, Batch, Quality, Reason, Sample, SQLiteStore, Store
from cpaudit.store.influx import InfluxV1Store
from tests.servers import InfluxD

BACKENDS = ["sqlite", "influxdb-v1"]
T0 = 1_795_000_000_000_000_000  # ns


@pytest.fixture(scope="module")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD]:
    srv = InfluxD(tmp_path_factory.mktemp("influx")).start()
    yield srv
    srv.stop()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    st: Store
    if request.param == "sqlite":
        st = SQLiteStore(tmp_path / "c.db")
    else:
        srv = request.getfixturevalue("influx_server")
        st = InfluxV1Store(srv.url, f"contract_{request.node.name.split('[')[0]}")
    yield st
    st.close()


def batch(n: int = 10, tag: str = "a", t0: int = T0, step: int = 1_000_000_000) -> Batch:
    return Batch(tags=[tag] * n, ts=[t0 + i * step for i in range(n)],
                 value=[float(i) * 1.5 for i in range(n)], quality=[0] * n, reason=[0] * n)


def test_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)


def test_round_trip_values_and_schema(store: Store) -> None:
    assert store.write(batch(10)) == 10
    df = store.read(["a"], None, None)
    assert list(df.columns) == list(SAMPLE_COLUMNS)
    assert df["ts"].tolist() == [T0 + i * 1_000_000_000 for i in range(10)]
    assert df["value"].tolist() == [i * 1.5 for i in range(10)]
    assert str(df["ts"].dtype) == "int64"


def test_bad_sample_keeps_nan_and_reason(store: Store) -> None:
    store.write(Batch.from_samples([
        Sample("a", T0, math.nan, Quality.BAD, Reason.TIMEOUT),
        Sample("a", T0 + 1, 2.0, Quality.UNCERTAIN, Reason.LATE),
    ]))
    df = store.read(["a"], None, None)
    assert math.isnan(df["value"].iloc[0])
    assert df["quality"].tolist() == [Quality.BAD, Quality.UNCERTAIN]
    assert df["reason"].tolist() == [Reason.TIMEOUT, Reason.LATE]


def test_write_is_idempotent(store: Store) -> None:
    store.write(batch(5))
    store.write(batch(5))
    assert store.read(["a"], None, None)["value"].tolist() == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert store.stats()["samples"] == 5


def test_sqlite_first_write_is_the_record(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "f.db")
    st.write(batch(5))
    again = batch(5)
    again.value[:] = 99.0
    assert st.write(again) == 0
    assert st.read(["a"])["value"].tolist() == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert st.stats()["ignored"] == 5
    st.close()


def test_tag_names_that_need_escaping(store: Store) -> None:
    odd = "line 1,valve=open \\x 'q'"
    store.write(batch(2, tag=odd))
    df = store.read([odd], None, None)
    assert df["tag"].tolist() == [odd, odd] and df["value"].tolist() == [0.0, 1.5]


def test_range_is_half_open(store: Store) -> None:
    store.write(batch(10))
    df = store.read(["a"], T0 + 2_000_000_000, T0 + 5_000_000_000)
    assert df["ts"].tolist() == [T0 + k * 1_000_000_000 for k in (2, 3, 4)]


def test_tag_filter_and_unknown_tags(store: Store) -> None:
    store.write(Batch.concat([batch(3, "a"), batch(4, "b")]))
    assert set(store.read(["b"], None, None)["tag"]) == {"b"}
    assert len(store.read(None, None, None)) == 7
    empty = store.read(["nope"], None, None)
    assert empty.empty and list(empty.columns) == list(SAMPLE_COLUMNS)
    assert store.tags() == ["a", "b"]


def test_an_empty_list_of_tags_asks_for_nothing(store: Store) -> None:
    """No tags (a campaign with no health tags yet, say) is an empty answer on every backend,
    not an error: the central devices page answered 500 on "(… OR …)" of nothing."""
    store.write(Batch.concat([batch(3, "a"), batch(4, "b")]))
    for got in (store.read([], None, None), store.last([])):
        assert got.empty and list(got.columns) == list(SAMPLE_COLUMNS)


def test_last_gives_newest_per_tag(store: Store) -> None:
    store.write(Batch.concat([batch(3, "a"), batch(4, "b")]))
    last = store.last()
    assert dict(zip(last["tag"], last["value"])) == {"a": 3.0, "b": 4.5}
    assert store.last(["a"])["ts"].tolist() == [T0 + 2_000_000_000]


def test_stats(store: Store) -> None:
    store.write(batch(4))
    s = store.stats()
    assert (s["samples"], s["tags"], s["first_ts"], s["last_ts"]) == (4, 1, T0, T0 + 3_000_000_000)


def test_batch_rejects_nan_good() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        Batch(tags=["a"], ts=[1], value=[math.nan], quality=[0], reason=[0])
    with pytest.raises(ValueError, match="non-finite"):
        Sample("a", 1, math.inf)
    with pytest.raises(ValueError, match="differ in length"):
        Batch(tags=["a", "b"], ts=[1], value=[1.0], quality=[0], reason=[0])


def test_sqlite_survives_reopen_and_is_readable_while_written(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    w = SQLiteStore(path)
    w.write(batch(3))
    reader = SQLiteStore(path, readonly=True)
    assert len(reader.read(["a"])) == 3
    w.write(batch(3, t0=T0 + 10_000_000_000))
    assert len(reader.read(["a"])) == 6          # a committed write is visible at once (WAL)
    w.close()
    reader.close()
    again = SQLiteStore(path)
    assert again.stats()["samples"] == 6
    again.close()


def test_edges_first_and_last_good(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "e.db")
    b = batch(6)
    b.quality[0] = Quality.BAD
    b.value[0] = np.nan
    b.quality[5] = Quality.BAD
    b.value[5] = np.nan
    st.write(b)
    e = st.edges(["a"])
    row = e.iloc[0]
    assert (row.first_ts, row.first_value, row.last_ts, row.last_value, row.good, row.total) == \
        (T0 + 1_000_000_000, 1.5, T0 + 4_000_000_000, 6.0, 4, 6)
    st.close()


# -- what the analyzer reads: the rollup, a state tag's transitions, the campaign's records ----
MIN = 60_000_000_000


def _campaign(tmp_path: Path) -> SQLiteStore:
    """Three minutes of two tags with bad, manual and late samples, a state tag that steps,
    and campaign records; values chosen so the per-minute figures can be checked by hand."""
    st = SQLiteStore(tmp_path / "edge.db")
    t0 = T0 // MIN * MIN
    st.write(batch(120, "flow", t0, 1_000_000_000))          # 0, 1.5, … over minutes 0 and 1
    st.write(Batch.from_samples([
        Sample("flow", t0 + 130 * 10**9, math.nan, Quality.BAD, Reason.TIMEOUT),
        Sample("flow", t0 + 131 * 10**9, 7.0, Quality.GOOD, Reason.NONE),
        Sample("flow", t0 + 132 * 10**9, 9.0, Quality.UNCERTAIN, Reason.MANUAL),
    ]))
    st.write(Batch(tags=["state"] * 6, ts=[t0 + i * 30 * 10**9 for i in range(6)],
                   value=[1, 1, 2, 2, 2, 1], quality=[0] * 6, reason=[0] * 6))
    st.write(Batch.from_samples([Sample("flow", t0 + 59 * 10**9 + 1, 100.0)]))   # late, minute 0
    st.begin_campaign(t0, "contract")
    st.keep_config("x" * 40_000 + "é")                    # beyond one field's 16 k parts
    st.mark_cycle(t0 + 90 * 10**9)
    st.mark_cycle(t0 + 30 * 10**9)
    st.mark_cycle(t0 + 90 * 10**9)                        # once
    st.note_manual("flow", t0 + 132 * 10**9, "weighbridge 关")
    st.end_campaign(t0 + 3 * MIN)
    return st


@pytest.fixture(params=BACKENDS)
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[object, SQLiteStore]]:
    edge = _campaign(tmp_path)
    if request.param == "sqlite":
        yield edge, edge
    else:
        from cpaudit.store.forward import Forwarder
        srv = request.getfixturevalue("influx_server")
        db = f"central_{request.node.name.split('[')[0]}"
        scope = {"site": "s, 1", "campaign": "c=1"}
        f = Forwarder(edge, InfluxV1Store(srv.url, db, scope=scope), "central")
        f.drain()
        f.sink.close()
        central = InfluxV1Store(srv.url, db, scope=scope, create=False)
        yield central, edge
        central.close()
    edge.close()


def test_rollup_per_minute_by_hand_and_as_the_edge(reader: tuple[object, SQLiteStore]) -> None:
    st, edge = reader
    r = st.rollup(None)  # type: ignore[attr-defined]
    flow = r[r["tag"] == "flow"].reset_index(drop=True)
    t0 = T0 // MIN * MIN
    assert flow["bucket"].tolist() == [t0, t0 + MIN, t0 + 2 * MIN]
    # minute 0: ticks 0..59 s (values 0 … 88.5) plus the late 100.0; minute 1: 60..119 s;
    # minute 2: a timeout, a good 7.0 and a manual 9.0 (uncertain: not good)
    assert flow["rows"].tolist() == [61, 60, 3]
    assert flow["good"].tolist() == [61, 60, 1]
    assert flow["manual"].tolist() == [0, 0, 1]
    assert flow["vsum"].tolist() == [sum(i * 1.5 for i in range(60)) + 100.0,
                                     sum(i * 1.5 for i in range(60, 120)), 7.0]
    assert flow["vmax"].tolist() == [100.0, 178.5, 7.0]
    assert flow["last_ts"].iloc[0] == t0 + 59 * 10**9 + 1
    # the same frame, column for column, as the edge's own
    ref = edge.rollup(None)
    assert r.dtypes.to_dict() == ref.dtypes.to_dict()
    assert r.equals(ref)
    # a window inside a minute gives the minutes it overlaps, as on the edge
    for lo, hi in [(t0 + 30 * 10**9, t0 + 61 * 10**9), (t0 + MIN, t0 + 2 * MIN), (None, t0)]:
        assert st.rollup(["flow"], lo, hi).equals(edge.rollup(["flow"], lo, hi))  # type: ignore[attr-defined]


def test_transitions_records_and_time_span(reader: tuple[object, SQLiteStore]) -> None:
    st, edge = reader
    tr = st.transitions("state")  # type: ignore[attr-defined]
    t0 = T0 // MIN * MIN
    assert tr["ts"].tolist() == [t0, t0 + 60 * 10**9, t0 + 150 * 10**9]
    assert tr["value"].tolist() == [1.0, 2.0, 1.0]
    assert tr.equals(edge.transitions("state"))
    assert st.get_meta("campaign_start") == str(t0)  # type: ignore[attr-defined]
    assert st.get_meta("campaign_config") == "x" * 40_000 + "é"  # type: ignore[attr-defined]
    assert st.get_meta("no such key") is None  # type: ignore[attr-defined]
    assert st.first_minute() == t0  # type: ignore[attr-defined]
    # the hand readings, found centrally through the forwarded rollup's minutes
    m = st.manual()  # type: ignore[attr-defined]
    assert m[["tag", "ts", "value"]].values.tolist() == [["flow", t0 + 132 * 10**9, 9.0]]
    assert m[["tag", "ts", "value", "quality"]].equals(
        edge.manual()[["tag", "ts", "value", "quality"]])
    # the newest data: on SQLite the last row written (an index lookup; here the late sample),
    # on InfluxDB the newest time; the same whenever samples arrive in time order
    newest = int(edge.read(None)["ts"].max())
    last_written = t0 + 59 * 10**9 + 1
    assert st.quick_stats()["last_ts"] in (newest, last_written)  # type: ignore[attr-defined]
    assert (st.quick_stats()["last_ts"] == newest) == (st is not edge)  # type: ignore[attr-defined]


def test_campaign_records_behind_named_accessors(reader: tuple[object, SQLiteStore]) -> None:
    """The records the analyzer and the web use, the same on the edge and centrally; a central
    copy is a reader, never a store the web may change."""
    from cpaudit.store.base import CampaignReader, CampaignStore
    st, edge = reader
    t0 = T0 // MIN * MIN
    assert isinstance(st, CampaignReader)
    assert isinstance(st, CampaignStore) == (st is edge)
    assert st.campaign_start() == t0
    assert st.campaign_end() == t0 + 3 * MIN
    assert st.campaign_name() == "contract"
    assert st.campaign_config() == "x" * 40_000 + "é"
    assert st.cycle_marks() == [t0 + 30 * 10**9, t0 + 90 * 10**9]
    notes, gone = st.manual_notes()
    assert notes == {("flow", t0 + 132 * 10**9): "weighbridge 关"} and gone == {}
    assert st.meta_items() == edge.meta_items()


def test_retraction_and_restart_records(tmp_path: Path) -> None:
    """A hand reading retracted says when and why; a restart clears the stop."""
    st = SQLiteStore(tmp_path / "r.db")
    t0 = T0 // MIN * MIN
    st.write(Batch(["flow"], [t0], [5.0], [int(Quality.GOOD)], [int(Reason.MANUAL)]))
    assert st.retract_manual("flow", t0, t0 + 7, "wrong ticket")
    assert not st.retract_manual("flow", t0, t0 + 8, "again")     # retracted already
    assert not st.retract_manual("flow", t0 + 1, t0 + 8, "none")  # no such reading
    assert st.manual_notes()[1] == {("flow", t0): {"at": t0 + 7, "note": "wrong ticket"}}
    st.begin_campaign(t0)
    st.end_campaign(t0 + MIN)
    assert st.campaign_end() == t0 + MIN
    st.begin_campaign(t0 + 2 * MIN)
    assert (st.campaign_start(), st.campaign_end()) == (t0 + 2 * MIN, None)
    st.set_meta("campaign_end", "not a number")          # a record edited by hand
    assert st.campaign_end() is None
    st.close()
