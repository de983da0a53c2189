"""The per-minute rollup the SQLite store keeps in its write transactions: always equal to the
same aggregates computed from the samples, whatever the writes (duplicates, bad quality, NaN,
manual entries, late samples into old minutes), and correct for a store made before it existed."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from cpaudit.store import Batch, Quality, Reason, SQLiteStore
from cpaudit.store.sqlite import ROLLUP_BUCKET_NS

M = ROLLUP_BUCKET_NS
T = 1_790_000_000 * 10**9 // M * M        # on a minute


def batch(tag: str, ts: np.ndarray, value: np.ndarray, quality: int = 0,
          reason: int = 0) -> Batch:
    n = len(ts)
    return Batch([tag] * n, ts, value, np.full(n, quality, np.int8), np.full(n, reason, np.int8))


def mixed_writes(st: SQLiteStore) -> None:
    s = 10**9
    ts = T + np.arange(0, 300, 1, dtype=np.int64) * s
    st.write(batch("a", ts, np.arange(300.0)))
    st.write(batch("a", ts[:50], np.full(50, -1.0)))            # duplicates: ignored
    st.write(batch("b", ts[::5], np.full(60, np.nan), Quality.BAD, Reason.TIMEOUT))
    st.write(batch("b", ts[1::5], np.full(60, 3.0), Quality.UNCERTAIN, Reason.MANUAL))
    st.write_series([("c", ts[:120], np.linspace(0, 1, 120), np.zeros(120, np.int8),
                      np.zeros(120, np.int8))])
    st.write(batch("a", T + np.array([400, 30]) * s + 500_000_000, np.array([7.0, 9.0])))  # late
    # a batch of which part is new and part a duplicate: the added rows are read back
    st.write(Batch(["c", "c"], np.array([ts[0], ts[200]]), np.array([5.0, 5.0]),
                   np.zeros(2, np.int8), np.zeros(2, np.int8)))


def test_rollup_equals_the_aggregates_of_the_samples(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "s.db")
    st.write_series([("a", np.array([T - M]), np.array([1.0]), np.zeros(1, np.int8),
                      np.zeros(1, np.int8))])          # a bulk write: merged at once
    assert st.get_meta("rollup.seq") == "1"
    mixed_writes(st)                                   # small writes: merged later
    assert st.get_meta("rollup.seq") == "1"

    def fresh() -> pd.DataFrame:
        return st._rollup_sql(None, None, None).sort_values(["tag", "bucket"], ignore_index=True)

    pd.testing.assert_frame_equal(st.rollup(), fresh())   # the table plus what it lacks yet
    st.flush_rollup()
    assert st.get_meta("rollup.seq") == str(st.max_seq())
    pd.testing.assert_frame_equal(st.rollup(), fresh())   # the table alone
    # more into minutes the table already holds: merged onto them, not over them
    st.write(batch("a", T + np.array([1, 2]) * 10**9 + 10**8, np.array([-5.0, 500.0])))
    st.flush_rollup()
    kept = st.rollup()
    pd.testing.assert_frame_equal(kept, fresh())
    st.close()
    kept = kept[kept["bucket"] >= T]
    a = kept[kept["tag"] == "a"].set_index("bucket")
    assert a.loc[T, "rows"] == 63 and a.loc[T, "good"] == 63      # 60 ticks, 1 late, 2 more
    assert a.loc[T, "vmin"] == -5.0 and a.loc[T, "vmax"] == 500.0
    assert a.loc[T, "vsum"] == 1779.0 + 495.0
    assert a.loc[T + 6 * M, "good"] == 1                          # the late one at 400.5 s
    b = kept[kept["tag"] == "b"]
    assert b["good"].sum() == 0 and b["manual"].sum() == 60 and b["rows"].sum() == 120
    assert b["vmin"].isna().all() and (b["vsum"] == 0).all()
    # a window selects the minutes that overlap it
    part = SQLiteStore(st.path, readonly=True).rollup(["a"], T + 90 * 10**9, T + 150 * 10**9)
    assert part["bucket"].tolist() == [T + M, T + 2 * M]


def test_rollup_since_recomputes_the_touched_minutes_whole(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "s.db")
    mixed_writes(st)
    seq = st.max_seq()
    st.write(batch("a", np.array([T + 10**9 // 2]), np.array([100.0])))   # into minute 0
    newest, tail = st.rollup_since(seq)
    assert newest == seq + 1
    assert tail[["tag", "bucket", "rows", "vmax"]].values.tolist() == [["a", T, 62, 100.0]]
    assert st.rollup_since(newest)[1].empty


def test_a_store_made_before_the_rollup_is_aggregated_from_its_samples(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    st = SQLiteStore(path)
    mixed_writes(st)
    st.close()
    con = sqlite3.connect(path)                 # what a store of the previous version holds
    with con:
        con.execute("DROP TABLE rollup")
        con.execute("DELETE FROM meta WHERE key = 'rollup.seq'")
    con.close()
    old = SQLiteStore(path)                     # reopened: the table exists again, empty
    extra = batch("a", np.array([T + 900 * 10**9]), np.array([1.0]))
    old.write(extra)
    assert old.get_meta("rollup.seq") is None   # not complete, so not kept nor trusted
    ref = SQLiteStore(tmp_path / "new.db")      # the same writes into a store that keeps one
    mixed_writes(ref)
    ref.write(extra)
    ref.flush_rollup()
    assert ref.get_meta("rollup.seq") == str(ref.max_seq())
    pd.testing.assert_frame_equal(old.rollup(), ref.rollup())
    pd.testing.assert_frame_equal(SQLiteStore(path, readonly=True).rollup(), ref.rollup())
    a = ref.rollup(["a"])
    assert a["bucket"].max() == T + 15 * M and a["good"].sum() == 303      # 300 ticks, 2 late, 1 more


def test_transitions_keep_the_first_sample_and_every_change(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "s.db")
    v = np.array([0, 0, 1, 1, 1, 2, 2, 0, 0, 1], np.float64)
    ts = T + np.arange(10, dtype=np.int64) * 10**9
    st.write(batch("state", ts, v))
    st.write(batch("state", T + np.array([20]) * 10**9, np.array([np.nan]), Quality.BAD,
                   Reason.TIMEOUT))
    tr = st.transitions("state")
    assert tr["value"].tolist() == [0, 1, 2, 0, 1]
    assert ((tr["ts"] - T) // 10**9).tolist() == [0, 2, 5, 7, 9]
    assert st.transitions("state", T + 3 * 10**9)["value"].tolist() == [1, 2, 0, 1]
    assert st.transitions("nothing").empty


def test_two_writers_of_one_file_never_merge_the_same_rows_twice(tmp_path: Path) -> None:
    a, b = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    s = 10**9
    a.write(batch("x", T + np.arange(0, 30, dtype=np.int64) * s, np.ones(30)))   # pending
    b.write(batch("y", T + np.arange(0, 30, dtype=np.int64) * s, np.ones(30)))
    b.flush_rollup()                        # merges a's pending rows too
    a.write(batch("x", T + np.arange(30, 60, dtype=np.int64) * s, np.ones(30)))
    a.flush_rollup()
    reader = SQLiteStore(tmp_path / "s.db", readonly=True)   # reading never writes
    pd.testing.assert_frame_equal(
        reader.rollup(), reader._rollup_sql(None, None, None).sort_values(
            ["tag", "bucket"], ignore_index=True))
    assert reader.rollup(["x"])["good"].tolist() == [60]
