"""SQLiteStore.write of large batches (many rows to an INSERT) and the rollup merge (one upsert
per sample): the same rows, seqs and per-minute figures as a row-at-a-time insert and SQLite's own
grouping, whatever the batch size, duplicates, qualities and minutes; and a store file written
before (its rollup merged by the grouping statement, a tail not merged yet) carries on exact."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpaudit.store import Batch, Quality, Reason, SQLiteStore
from cpaudit.store import sqlite as sqlite_store
from cpaudit.store.sqlite import ROLLUP_BUCKET_NS

M = ROLLUP_BUCKET_NS
T = 1_790_000_000 * 10**9 // M * M        # on a minute
S = 10**9


def mixed(rng: np.random.Generator, n: int, tags: int, span_s: int) -> Batch:
    """n samples of ``tags`` tags over ``span_s`` seconds from T: some bad (NaN), some
    uncertain manual readings, some repeated (tag, ts) inside the batch."""
    tag = rng.integers(0, tags, n)
    ts = T + rng.integers(0, span_s, n) * S + rng.integers(0, 3, n) * (S // 3)
    quality = rng.choice([int(Quality.GOOD), int(Quality.UNCERTAIN), int(Quality.BAD)], n,
                         p=[0.8, 0.1, 0.1]).astype(np.int8)
    value = np.where(quality == int(Quality.BAD), np.nan, rng.normal(50.0, 20.0, n))
    reason = np.where(quality == int(Quality.BAD), int(Reason.TIMEOUT),
                      np.where(quality == int(Quality.UNCERTAIN), int(Reason.MANUAL), 0)
                      ).astype(np.int8)
    return Batch([f"t{i}" for i in tag], ts, value, quality, reason)


def grouped(st: SQLiteStore) -> pd.DataFrame:
    """The rollup as SQLite's GROUP BY of every sample makes it (the reference)."""
    return st._rollup_sql(None, None, None).sort_values(["tag", "bucket"], ignore_index=True)


def rows_of(path: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT s.seq, t.name, s.ts, s.value, s.quality, s.reason FROM sample s "
                           "JOIN tag t ON t.id = s.tag_id ORDER BY s.seq").fetchall()
    finally:
        con.close()


def all_good(b: Batch) -> Batch:
    return Batch(b.tags, b.ts, np.nan_to_num(b.value), np.zeros(len(b), np.int8),
                 np.zeros(len(b), np.int8))


@pytest.mark.parametrize("good", [False, True], ids=["mixed", "all-good"])
@pytest.mark.parametrize("n", [1, 2, 63, 127, 128, 129, 255, 256, 1000, 5001])
def test_a_batch_of_any_size_is_stored_as_a_row_at_a_time_insert_stores_it(
        tmp_path: Path, n: int, good: bool) -> None:
    rng = np.random.default_rng(n)
    first, second = mixed(rng, n, 7, 120), mixed(rng, n, 7, 120)
    if good:            # the common case, bound without its quality and reason
        first, second = all_good(first), all_good(second)
    else:
        assert first.quality.any() or n < 10
    st = SQLiteStore(tmp_path / "s.db")
    added = st.write(first) + st.write(second)     # the second repeats some of the first
    st.close()
    # the reference: the same rows, one INSERT OR IGNORE each, in batch order
    con = sqlite3.connect(tmp_path / "ref.db")
    con.executescript("CREATE TABLE tag (id INTEGER PRIMARY KEY, name TEXT UNIQUE);"
                      "CREATE TABLE sample (seq INTEGER PRIMARY KEY, tag_id INTEGER, ts INTEGER,"
                      " value REAL, quality INTEGER, reason INTEGER);"
                      "CREATE UNIQUE INDEX s ON sample(tag_id, ts);")
    with con:
        for b in (first, second):
            ids = {}
            for name in b.tags:
                con.execute("INSERT OR IGNORE INTO tag(name) VALUES (?)", (name,))
                ids[name] = con.execute("SELECT id FROM tag WHERE name=?", (name,)).fetchone()[0]
            con.executemany(
                "INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) "
                "VALUES (?,?,?,?,?)",
                [(ids[t], int(ts), None if np.isnan(v) else float(v), int(q), int(r))
                 for t, ts, v, q, r in zip(b.tags, b.ts, b.value, b.quality, b.reason)])
    con.close()
    want = rows_of(tmp_path / "ref.db")
    assert rows_of(tmp_path / "s.db") == want
    assert added == len(want)
    assert SQLiteStore(tmp_path / "s.db", readonly=True).stats()["samples"] == len(want)


def test_merged_rollup_equals_the_grouped_samples_sparse_dense_late_and_repeated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # merge inside the writes every few hundred rows, as a long campaign does every 200 k
    monkeypatch.setattr(sqlite_store, "ROLL_ROWS", 700)
    rng = np.random.default_rng(16)
    st = SQLiteStore(tmp_path / "s.db")
    sparse = np.arange(0, 6000, 100, dtype=np.int64)          # a minute holds one sample or none
    for k in range(3):
        st.write(Batch([f"slow{i}" for i in range(50) for _ in sparse],
                       np.tile(T + (sparse + k * 6000 + 7) * S, 50),
                       rng.random(50 * len(sparse)), np.zeros(50 * len(sparse), np.int8),
                       np.zeros(50 * len(sparse), np.int8)))
    for _ in range(6):
        st.write(mixed(rng, 2000, 12, 600))                   # dense, into each other's minutes
    st.write(mixed(rng, 300, 12, 6000))                       # late samples into old minutes
    assert int(st.get_meta("rollup.seq") or 0) > 0            # merged during the writes
    pd.testing.assert_frame_equal(st.rollup(), grouped(st))   # table plus the tail not merged
    st.flush_rollup()
    assert st.get_meta("rollup.seq") == str(st.max_seq())
    table = st.rollup()
    pd.testing.assert_frame_equal(table, grouped(st), check_exact=False, rtol=1e-12)
    # counts are exact; the sums are one float addition order apart at most
    ref = grouped(st)
    for col in ("bucket", "rows", "good", "manual"):
        assert table[col].tolist() == ref[col].tolist()
    for col in ("first_ts", "last_ts", "vmin", "vmax"):
        assert table[col].equals(ref[col])
    st.close()


# the merge of the version before this one: GROUP BY the minute over the new samples, then upsert
_GROUPED_MERGE = (
    f"INSERT INTO rollup(tag_id, bucket, rows, good, manual, first_ts, last_ts, vsum, vmin, "
    f"vmax) SELECT tag_id, ts / {M}, {sqlite_store._AGG} FROM sample WHERE seq > ? "
    f"GROUP BY tag_id, ts / {M} " + sqlite_store._MERGE[sqlite_store._MERGE.index("ON CONFLICT"):])


def test_an_edge_box_file_from_before_is_read_and_merged_exact(tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    rng = np.random.default_rng(7)
    st = SQLiteStore(path)
    st.write(mixed(rng, 3000, 10, 900))
    st.close()
    # as the previous version left it: its rollup merged by the grouping statement up to a
    # mark, then more samples written and not merged (a box switched off mid-campaign)
    con = sqlite3.connect(path)
    with con:
        con.execute("DELETE FROM rollup")
        con.execute(_GROUPED_MERGE, (0,))
        con.execute("UPDATE meta SET value = (SELECT MAX(seq) FROM sample) WHERE key = "
                    "'rollup.seq'")
    con.close()
    st = SQLiteStore(path)
    st._wrote = False           # the next writes are new code's; the tail below is the old's
    tail = mixed(rng, 1500, 10, 900)
    with sqlite3.connect(path) as con:
        ids = dict(con.execute("SELECT name, id FROM tag").fetchall())
        con.executemany("INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) "
                        "VALUES (?,?,?,?,?)",
                        [(ids[t], int(ts), None if np.isnan(v) else float(v), int(q), int(r))
                         for t, ts, v, q, r in zip(tail.tags, tail.ts, tail.value,
                                                   tail.quality, tail.reason)])
    con.close()
    old_mark = int(st.get_meta("rollup.seq") or 0)
    assert 0 < old_mark < st.max_seq()
    pd.testing.assert_frame_equal(st.rollup(), grouped(st))
    st.write(mixed(rng, 2000, 10, 1800))             # new code writes on, into the same minutes
    st.close()                                       # and merges on close
    reader = SQLiteStore(path, readonly=True)
    assert reader.get_meta("rollup.seq") == str(reader.max_seq())
    pd.testing.assert_frame_equal(reader.rollup(), grouped(reader), check_exact=False,
                                  rtol=1e-12)
