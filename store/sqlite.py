"""SQLite backend: the embedded default and the campaign's raw data of record.

WAL journal, ``synchronous=FULL`` (on this class of machine it costs about the same as NORMAL, see
shared/reference/limits.md), one transaction per batch. A sample is identified by (tag, ts): writing
the same sample again is a no-op, so at-least-once producers (MQTT QoS 1, a restarted forwarder)
cannot duplicate it. The first write of a (tag, ts) is the record; a later one with another value is
ignored and counted in ``stats()['ignored']``.

One connection per thread; writes are serialised by a lock. Readers in other processes (the web)
see committed data at once thanks to WAL.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from cpaudit.store.base import StoreError
from cpaudit.store.records import KeptRecords
from cpaudit.store.sample import SAMPLE_COLUMNS, Batch, Quality, Reason

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tag (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS sample (
    seq INTEGER PRIMARY KEY,
    tag_id INTEGER NOT NULL REFERENCES tag(id),
    ts INTEGER NOT NULL,
    value REAL,
    quality INTEGER NOT NULL,
    reason INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sample_tag_ts ON sample(tag_id, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS undeliverable (
    sink TEXT NOT NULL, tag TEXT NOT NULL, ts INTEGER NOT NULL, reason TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (sink, tag, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup (
    tag_id INTEGER NOT NULL, bucket INTEGER NOT NULL, rows INTEGER NOT NULL,
    good INTEGER NOT NULL, manual INTEGER NOT NULL, first_ts INTEGER, last_ts INTEGER,
    vsum REAL NOT NULL, vmin REAL, vmax REAL, PRIMARY KEY (tag_id, bucket)) WITHOUT ROWID;
"""

# Per-minute aggregates of every tag, kept in the write transaction (see ``SQLiteStore.rollup``):
# a validity report over 80 h of 76 tags at 1 s reads 365 k rollup rows instead of grouping 22 M
# samples (5.7-13 s inside SQLite on the reference machine: the GROUP BY needs a temporary B-tree).
ROLLUP_BUCKET_NS = 60_000_000_000
_ROLLUP_SEQ = "rollup.seq"      # meta: every sample with seq <= this is in the rollup table
_MERGE = """INSERT INTO rollup(tag_id, bucket, rows, good, manual, first_ts, last_ts, vsum, vmin, vmax)
VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(tag_id, bucket) DO UPDATE SET
 rows = rows + excluded.rows, good = good + excluded.good, manual = manual + excluded.manual,
 first_ts = coalesce(min(first_ts, excluded.first_ts), first_ts, excluded.first_ts),
 last_ts = coalesce(max(last_ts, excluded.last_ts), last_ts, excluded.last_ts),
 vsum = vsum + excluded.vsum,
 vmin = coalesce(min(vmin, excluded.vmin), vmin, excluded.vmin),
 vmax = coalesce(max(vmax, excluded.vmax), vmax, excluded.vmax)"""
_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_GOOD = f"quality = {int(Quality.GOOD)}"
# the aggregates of a rollup row, over the samples of one tag and minute
_AGG = (f"COUNT(*), SUM({_GOOD}), SUM(reason = {int(Reason.MANUAL)}), "
        f"MIN(CASE WHEN {_GOOD} THEN ts END), MAX(CASE WHEN {_GOOD} THEN ts END), "
        f"TOTAL(CASE WHEN {_GOOD} THEN value END), MIN(CASE WHEN {_GOOD} THEN value END), "
        f"MAX(CASE WHEN {_GOOD} THEN value END)")
_MERGE_SQL = (f"INSERT INTO rollup(tag_id, bucket, rows, good, manual, first_ts, last_ts, vsum, "
              f"vmin, vmax) SELECT tag_id, ts / {ROLLUP_BUCKET_NS}, {_AGG} FROM sample "
              f"WHERE seq > ? GROUP BY tag_id, ts / {ROLLUP_BUCKET_NS} " +
              _MERGE[_MERGE.index("ON CONFLICT"):])
_RAW_SCHEMA = """CREATE TABLE IF NOT EXISTS raw_packet (seq INTEGER PRIMARY KEY,
    rx_ns INTEGER NOT NULL, peer TEXT NOT NULL, device TEXT NOT NULL, status TEXT NOT NULL,
    data BLOB NOT NULL)"""
ROLL_EVERY_S = 10.0             # the collector's small writes are merged this often ...
ROLL_ROWS = 200_000             # ... or after this many rows
_I64_MAX = np.iinfo(np.int64).max
_I64_MIN = np.iinfo(np.int64).min


def _aggregate(tid: np.ndarray, ts: np.ndarray, value: np.ndarray, quality: np.ndarray,
               reason: np.ndarray) -> list[tuple[Any, ...]]:
    """Rollup rows (the columns of the ``rollup`` table) of freshly inserted samples, in numpy."""
    n = len(ts)
    if n == 0:
        return []
    bucket = ts // ROLLUP_BUCKET_NS
    key = (tid.astype(np.int64) << 40) | (bucket - bucket.min())
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
    good = quality[order] == int(Quality.GOOD)
    t, v = ts[order], value[order]
    rows = np.diff(np.concatenate([starts, [n]]))
    ngood = np.add.reduceat(good.astype(np.int64), starts)
    manual = np.add.reduceat((reason[order] == int(Reason.MANUAL)).astype(np.int64), starts)
    first = np.minimum.reduceat(np.where(good, t, _I64_MAX), starts)
    last = np.maximum.reduceat(np.where(good, t, _I64_MIN), starts)
    vsum = np.add.reduceat(np.where(good, v, 0.0), starts)
    vmin = np.minimum.reduceat(np.where(good, v, np.inf), starts)
    vmax = np.maximum.reduceat(np.where(good, v, -np.inf), starts)
    has = ngood > 0
    out = []
    for i, s0 in enumerate(starts.tolist()):
        h = bool(has[i])
        out.append((int(tid[order[s0]]), int(bucket[order[s0]]), int(rows[i]), int(ngood[i]),
                    int(manual[i]), int(first[i]) if h else None, int(last[i]) if h else None,
                    float(vsum[i]), float(vmin[i]) if h else None, float(vmax[i]) if h else None))
    return out



_INSERT = "INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) VALUES (?,?,?,?,?)"


class SQLiteStore(KeptRecords):
    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = os.fspath(path)
        self.readonly = readonly
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._tag_ids: dict[str, int] = {}
        self._closed = False
        self._ignored = 0
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._rolled_at = time.monotonic()
        self._wrote = False         # close() merges the rollup only for a store that wrote
        if readonly and not os.path.exists(self.path):
            raise StoreError(f"{self.path}: no such store")
        conn = self._conn()
        if not readonly:
            with conn:
                conn.executescript(_SCHEMA)
                if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM sample)").fetchone()[0]:
                    # a new store: its rollup is complete from the first sample on
                    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, '0')",
                                 (_ROLLUP_SEQ,))

    # -- connections -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                if self.readonly:
                    conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                           check_same_thread=False, timeout=30)
                else:
                    d = os.path.dirname(os.path.abspath(self.path))
                    os.makedirs(d, exist_ok=True)
                    conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot open store: {e}") from e
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._wrote:
                self.flush_rollup()
        except StoreError:
            pass        # the samples are safe; readers aggregate what the rollup lacks
        self._closed = True
        with self._conns_lock:
            for c in self._conns:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._conns.clear()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tags --------------------------------------------------------------------------------
    def _ids_for(self, conn: sqlite3.Connection, names: set[str]) -> dict[str, int]:
        missing = names.difference(self._tag_ids)
        if missing:
            conn.executemany("INSERT OR IGNORE INTO tag(name) VALUES (?)", [(n,) for n in missing])
            for tid, name in conn.execute("SELECT id, name FROM tag"):
                self._tag_ids[name] = tid
        return self._tag_ids

    def _tag_map(self) -> dict[int, str]:
        return {tid: name for tid, name in self._conn().execute("SELECT id, name FROM tag")}

    def tags(self) -> list[str]:
        return sorted(self._tag_map().values())

    # -- write -------------------------------------------------------------------------------
    def _insert(self, tags: set[str],
                body: Callable[[sqlite3.Connection, dict[str, int]], _Columns],
                bulk: bool = False) -> int:
        """Run ``body(conn, tag ids)`` in one write transaction; the rows it added. ``body``
        returns the columns it tried to insert (tag id, ts, value, quality, reason)."""
        if self.readonly:
            raise StoreError(f"{self.path}: store opened read-only")
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                ids = self._ids_for(conn, tags)
                seq0 = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM sample").fetchone()[0]
                before = conn.total_changes
                tried = body(conn, ids)
                added = conn.total_changes - before
                self._wrote = True
                if added:
                    self._roll(conn, seq0, added, tried, bulk)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: write failed: {e}") from e
            except BaseException:     # a value SQLite cannot bind: leave no transaction open
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return added

    def _roll(self, conn: sqlite3.Connection, seq0: int, added: int, tried: _Columns,
              bulk: bool) -> None:
        """Bring the rollup up to date with the rows written, when it is kept (a store made before
        the rollup existed has no mark: its readers aggregate the samples instead).

        A bulk write whose rows were all new is aggregated from the columns in hand (numpy). A
        small write (the collector's, a tick at a time) is merged later, every
        :data:`ROLL_EVERY_S` or :data:`ROLL_ROWS` rows, inside SQLite: one update per tag and
        minute instead of one per sample. Readers add what the mark does not cover yet."""
        mark = self._mark(conn)
        if mark is None:
            return
        newest = seq0 + added
        if bulk and mark == seq0 and added == len(tried[1]):
            tid, ts, value, q, r = tried
            conn.executemany(_MERGE, _aggregate(tid, ts.astype(np.int64),
                                                value.astype(np.float64), q, r))
        elif newest - mark >= ROLL_ROWS or time.monotonic() - self._rolled_at >= ROLL_EVERY_S:
            conn.execute(_MERGE_SQL, (mark,))
        else:
            return
        conn.execute("UPDATE meta SET value=? WHERE key=?", (str(newest), _ROLLUP_SEQ))
        self._rolled_at = time.monotonic()

    @staticmethod
    def _mark(conn: sqlite3.Connection) -> int | None:
        """Up to which seq the rollup is merged; read inside the write transaction, so that two
        writers of one file (or a writer after another) never merge the same rows twice."""
        row = conn.execute("SELECT value FROM meta WHERE key=?", (_ROLLUP_SEQ,)).fetchone()
        return None if row is None else int(row[0])

    def flush_rollup(self) -> None:
        """Merge what the rollup does not cover yet (called on close by a store that wrote)."""
        if self.readonly or self._closed:
            return
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                mark = self._mark(conn)
                newest = self.max_seq()
                if mark is not None and mark != newest:
                    conn.execute(_MERGE_SQL, (mark,))
                    conn.execute("UPDATE meta SET value=? WHERE key=?", (str(newest), _ROLLUP_SEQ))
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: rollup failed: {e}") from e

    def write(self, batch: Batch) -> int:
        if len(batch) == 0:
            if self.readonly:
                raise StoreError(f"{self.path}: store opened read-only")
            return 0

        def body(conn: sqlite3.Connection, ids: dict[str, int]) -> _Columns:
            # SQLite binds NaN as NULL; +-inf never reach here as good (Batch invariant),
            # and are stored as NULL too so that a read gives NaN back.
            values = np.where(np.isinf(batch.value), np.nan, batch.value)
            tid = np.fromiter(map(ids.__getitem__, batch.tags), np.int64, len(batch))
            conn.executemany(_INSERT, zip(tid.tolist(), batch.ts.tolist(),
                                          values.tolist(), batch.quality.tolist(),
                                          batch.reason.tolist()))
            return tid, batch.ts, values, batch.quality, batch.reason
        added = self._insert(set(batch.tags), body)
        with self._write_lock:
            self._ignored += len(batch) - added
        return added

    def write_series(self, series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray,
                                                  np.ndarray]]) -> int:
        """Write whole series at once, one transaction: (tag, ts [ns], value, quality, reason)
        per tag, columns as numpy arrays. The same idempotence as :meth:`write`; the fast path of
        bulk producers (``cpaudit generate``)."""
        def body(conn: sqlite3.Connection, ids: dict[str, int]) -> _Columns:
            tried: list[_Columns] = []
            for tag, ts, value, quality, reason in series:
                if len(ts) == 0:
                    continue
                b = Batch([tag] * len(ts), ts, value, quality, reason)   # checks invariants
                values = np.where(np.isfinite(b.value), b.value, np.nan)
                tid = int(ids[tag])
                if not b.quality.any() and not b.reason.any():   # all good: bind 2, not 5
                    conn.executemany(_INSERT.replace("?,?,?,?,?", f"{tid},?,?,0,0"),
                                     zip(b.ts.tolist(), values.tolist()))
                else:
                    conn.executemany(_INSERT, zip([tid] * len(ts), b.ts.tolist(), values.tolist(),
                                                  b.quality.tolist(), b.reason.tolist()))
                tried.append((np.full(len(ts), tid, np.int64), b.ts, values, b.quality, b.reason))
            if not tried:
                return tuple(np.empty(0, np.int64) for _ in range(5))  # type: ignore[return-value]
            return tuple(np.concatenate(c) for c in zip(*tried))  # type: ignore[return-value]
        return self._insert({s[0] for s in series}, body, bulk=True)

    # -- read --------------------------------------------------------------------------------
    def _frame(self, rows: list[tuple[Any, ...]], names: dict[int, str]) -> pd.DataFrame:
        n = len(rows)
        if n == 0:
            return empty_frame()
        tid, ts, val, q, r = zip(*rows)
        return pd.DataFrame({
            "ts": np.fromiter(ts, np.int64, n),
            "tag": [names[i] for i in tid],
            "value": np.array([np.nan if v is None else v for v in val], dtype=np.float64),
            "quality": np.fromiter(q, np.int8, n),
            "reason": np.fromiter(r, np.int8, n),
        }, columns=list(SAMPLE_COLUMNS))

    def _where(self, tags: Sequence[str] | None, start: int | None, end: int | None,
               column: str = "ts") -> tuple[str, list[Any], dict[int, str]] | None:
        names = self._tag_map()
        clauses: list[str] = []
        params: list[Any] = []
        if tags is not None:
            wanted = set(tags)
            ids = [i for i, n in names.items() if n in wanted]
            if not ids:
                return None
            clauses.append(f"tag_id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if start is not None:
            clauses.append(f"{column} >= ?")
            params.append(int(start))
        if end is not None:
            clauses.append(f"{column} < ?")
            params.append(int(end))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return where, params, names

    def read(self, tags: Sequence[str] | None = None, start: int | None = None,
             end: int | None = None) -> pd.DataFrame:
        w = self._where(tags, start, end)
        if w is None:
            return empty_frame()
        where, params, names = w
        try:
            rows = self._conn().execute(
                f"SELECT tag_id, ts, value, quality, reason FROM sample{where} ORDER BY tag_id, ts",
                params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: read failed: {e}") from e
        df = self._frame(rows, names)
        return df.sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)

    def last(self, tags: Sequence[str] | None = None) -> pd.DataFrame:
        names = self._tag_map()
        if tags is None:
            wanted = names
        else:
            want = set(tags)
            wanted = {i: n for i, n in names.items() if n in want}
        conn = self._conn()
        rows = []
        for tid in wanted:
            row = conn.execute(
                "SELECT tag_id, ts, value, quality, reason FROM sample WHERE tag_id=? "
                "ORDER BY ts DESC LIMIT 1", (tid,)).fetchone()
            if row:
                rows.append(row)
        df = self._frame(rows, names)
        return df.sort_values("tag").reset_index(drop=True)

    def edges(self, tags: Sequence[str], start: int | None = None, end: int | None = None,
              ) -> pd.DataFrame:
        """First and last *good* sample of each tag in the window, computed inside SQLite.

        Columns: tag, first_ts, first_value, last_ts, last_value, good, total. Used for totalizer
        differences over long windows without pulling every row (limits.md: 10-30x faster).
        """
        w = self._where(tags, start, end)
        cols = ["tag", "first_ts", "first_value", "last_ts", "last_value", "good", "total"]
        if w is None:
            return pd.DataFrame(columns=cols)
        where, params, names = w
        conn = self._conn()
        out = []
        good_where = where + (" AND " if where else " WHERE ") + "quality = 0"
        for tid, first_ts, last_ts, good in conn.execute(
                f"SELECT tag_id, MIN(ts), MAX(ts), COUNT(*) FROM sample{good_where} GROUP BY tag_id",
                params).fetchall():
            fv = conn.execute("SELECT value FROM sample WHERE tag_id=? AND ts=?",
                              (tid, first_ts)).fetchone()[0]
            lv = conn.execute("SELECT value FROM sample WHERE tag_id=? AND ts=?",
                              (tid, last_ts)).fetchone()[0]
            out.append((tid, first_ts, fv, last_ts, lv, good))
        totals = dict(conn.execute(
            f"SELECT tag_id, COUNT(*) FROM sample{where} GROUP BY tag_id", params).fetchall())
        rows = [(names[o[0]], o[1], np.nan if o[2] is None else o[2], o[3],
                 np.nan if o[4] is None else o[4], o[5], totals.get(o[0], 0)) for o in out]
        return pd.DataFrame(rows, columns=cols)

    def rollup(self, tags: Sequence[str] | None = None, start: int | None = None,
               end: int | None = None) -> pd.DataFrame:
        """Per tag and minute (buckets of :data:`ROLLUP_BUCKET_NS`, aligned to the epoch) that
        overlap [start, end): the aggregates a validity report needs, without pulling the rows.

        Columns (:data:`ROLLUP_COLUMNS`): ``tag``, ``bucket`` (start, ns), ``rows`` (samples of
        any quality), ``good``, ``manual`` (reason manual), ``first_ts``/``last_ts`` (of the good
        samples; NaN without), ``vsum``/``vmin``/``vmax`` (of the good values; vsum 0 without).
        Sorted by tag, then bucket. Read from the rollup table the writers keep, plus the
        buckets touched by samples written since (recomputed whole from the samples); a store
        made before the rollup existed is aggregated from its samples (slow: a full scan).
        """
        b = ROLLUP_BUCKET_NS
        lo = None if start is None else int(start) // b * b
        mark = self.get_meta(_ROLLUP_SEQ)
        if mark is None:
            return self._rollup_sql(tags, lo, end)
        # the same filter on the rollup's bucket numbers: the minutes overlapping [start, end)
        w = self._where(tags, None if lo is None else lo // b,
                        None if end is None else -(-int(end) // b), column="bucket")
        if w is None:
            return _empty_rollup()
        where, params, names = w
        try:
            rows = self._conn().execute(
                f"SELECT tag_id, bucket * {b}, rows, good, manual, first_ts, last_ts, vsum, vmin, "
                f"vmax FROM rollup{where}", params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: rollup failed: {e}") from e
        table = _rollup_frame(rows, names)
        _, tail = self.rollup_since(int(mark), tags)
        if len(tail):
            if lo is not None:
                tail = tail[tail["bucket"] >= lo]
            if end is not None:
                tail = tail[tail["bucket"] < end]
            key = ["tag", "bucket"]
            table = pd.concat([table, tail], ignore_index=True).drop_duplicates(key, keep="last")
        return table.sort_values(["tag", "bucket"], kind="stable").reset_index(drop=True)

    def _rollup_sql(self, tags: Sequence[str] | None, start: int | None, end: int | None
                    ) -> pd.DataFrame:
        """The rollup aggregated from the samples, inside SQLite."""
        w = self._where(tags, start, end)
        if w is None:
            return _empty_rollup()
        where, params, names = w
        b = ROLLUP_BUCKET_NS
        sql = f"SELECT tag_id, ts / {b} * {b}, {_AGG} FROM sample{where} GROUP BY tag_id, ts / {b}"
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: rollup failed: {e}") from e
        return _rollup_frame(rows, names)

    def rollup_since(self, after_seq: int, tags: Sequence[str] | None = None
                     ) -> tuple[int, pd.DataFrame]:
        """The buckets touched by samples written after ``after_seq`` (write order), recomputed
        whole from the samples: (newest seq, rollup rows). Lets a live reader keep a rollup
        current by appending the newest minute instead of reading the campaign again; a late
        sample (a device's store-and-forward) re-opens its old bucket and is counted too."""
        conn = self._conn()
        newest = self.max_seq()
        b = ROLLUP_BUCKET_NS
        touched = conn.execute(
            f"SELECT tag_id, MIN(ts / {b}), MAX(ts / {b}) FROM sample WHERE seq > ? AND seq <= ? "
            "GROUP BY tag_id", (after_seq, newest)).fetchall()
        names = self._tag_map()
        wanted = None if tags is None else set(tags)
        parts = [self._rollup_sql([names[tid]], lo * b, (hi + 1) * b) for tid, lo, hi in touched
                 if wanted is None or names[tid] in wanted]
        parts = [p for p in parts if len(p)]
        if not parts:
            return newest, _empty_rollup()
        return newest, pd.concat(parts, ignore_index=True)

    def transitions(self, tag: str, start: int | None = None, end: int | None = None
                    ) -> pd.DataFrame:
        """The good samples of a state tag where its value changes (the first one included), as
        a frame of SAMPLE_COLUMNS: a batch process's steps over a long campaign without pulling
        every row (SQLite window function over the tag's index)."""
        w = self._where([tag], start, end)
        if w is None:
            return empty_frame()
        where, params, names = w
        sql = ("SELECT tag_id, ts, value, quality, reason FROM (SELECT tag_id, ts, value, quality, "
               "reason, LAG(value) OVER (ORDER BY ts) AS prev FROM sample" + where +
               f" AND quality = {int(Quality.GOOD)}) WHERE prev IS NULL OR value != prev "
               "ORDER BY ts")
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: read failed: {e}") from e
        return self._frame(rows, names)

    def changes(self, after_seq: int, limit: int) -> tuple[int, Batch]:
        """Samples in write order after ``after_seq``: (last seq returned, batch). For the
        forwarder's durable cursor."""
        rows = self._conn().execute(
            "SELECT seq, tag_id, ts, value, quality, reason FROM sample WHERE seq > ? "
            "ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
        if not rows:
            return after_seq, Batch()
        names = self._tag_map()
        seq, tid, ts, val, q, r = zip(*rows)
        n = len(rows)
        return int(seq[-1]), Batch(
            tags=list(map(names.__getitem__, tid)), ts=np.fromiter(ts, np.int64, n),
            value=np.array(val, dtype=np.float64),          # NULL (None) becomes NaN
            quality=np.fromiter(q, np.int8, n), reason=np.fromiter(r, np.int8, n))

    def max_seq(self) -> int:
        return int(self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM sample").fetchone()[0])

    def quick_stats(self) -> dict[str, Any]:
        """What a live page needs without a full scan: rows written (the write sequence: every
        sample row gets the next one) and the newest row's timestamp — both index lookups."""
        conn = self._conn()
        row = conn.execute("SELECT seq, ts FROM sample ORDER BY seq DESC LIMIT 1").fetchone()
        return {"samples": int(row[0]) if row else 0, "last_ts": int(row[1]) if row else None}

    def first_minute(self) -> int | None:
        """The first minute the rollup holds [ns] (a scan of the rollup: a few ms a day of data;
        for a store without ``campaign_start``)."""
        conn = self._conn()
        row = conn.execute("SELECT MIN(bucket) FROM rollup").fetchone()
        first = int(row[0]) * ROLLUP_BUCKET_NS if row and row[0] is not None else None
        # and the samples not merged into the rollup table yet (a young store has only those)
        mark = self.get_meta(_ROLLUP_SEQ)
        tail = conn.execute("SELECT MIN(ts) FROM sample WHERE seq > ?",
                            (int(mark) if mark is not None else 0,)).fetchone()
        if tail and tail[0] is not None:
            t = int(tail[0]) // ROLLUP_BUCKET_NS * ROLLUP_BUCKET_NS
            first = t if first is None else min(first, t)
        return first

    def meta_keys(self) -> list[str]:
        """Every key of ``meta``, the store's own bookkeeping (the forwarders' cursors, the rollup
        mark) included."""
        return sorted(k for (k,) in self._conn().execute("SELECT key FROM meta"))

    def meta_items(self) -> dict[str, str]:
        """Every campaign record in ``meta`` but the store's own bookkeeping (the rollup mark,
        the forwarders' cursors): what an edge box forwards for a central reader."""
        rows = self._conn().execute("SELECT key, value FROM meta").fetchall()
        return {k: v for k, v in rows if not k.startswith(("forward.", "rollup."))}

    def rollup_changes(self, after_seq: int) -> tuple[int, pd.DataFrame]:
        """The whole rollup rows of every minute touched by samples written after ``after_seq``
        (as :meth:`rollup` gives them): (newest seq, rows). From the start (``after_seq`` 0) it
        is the rollup table as it stands; later, the minutes the new rows fall in (a late
        sample re-opens its old minute, and that minute is given again, whole)."""
        newest = self.max_seq()
        if newest <= after_seq:
            return newest, _empty_rollup()
        if after_seq <= 0:
            return newest, self.rollup(None)
        b = ROLLUP_BUCKET_NS
        touched = self._conn().execute(
            f"SELECT tag_id, MIN(ts / {b}), MAX(ts / {b}) FROM sample WHERE seq > ? AND seq <= ? "
            "GROUP BY tag_id", (after_seq, newest)).fetchall()
        names = self._tag_map()
        groups: dict[tuple[int, int], list[str]] = {}
        for tid, lo, hi in touched:
            groups.setdefault((int(lo), int(hi)), []).append(names[tid])
        parts = [self.rollup(tags, lo * b, (hi + 1) * b) for (lo, hi), tags in groups.items()]
        parts = [p for p in parts if len(p)]
        if not parts:
            return newest, _empty_rollup()
        return newest, pd.concat(parts, ignore_index=True)

    def mark_undeliverable(self, sink: str, rows: Sequence[tuple[str, int, str]]) -> None:
        """Samples (tag, ts, reason) a sink refused for what they hold: kept in SQLite as ever,
        recorded as never forwarded to ``sink`` and why, so the central copy's hole is known."""
        if not rows:
            return
        now = time.time_ns()
        conn = self._conn()
        with self._write_lock:
            try:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO undeliverable(sink, tag, ts, reason, "
                                     "at) VALUES (?,?,?,?,?)",
                                     [(sink, t, int(ts), r, now) for t, ts, r in rows])
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: write failed: {e}") from e

    def undeliverable(self, sink: str | None = None) -> pd.DataFrame:
        """What :meth:`mark_undeliverable` recorded: columns sink, tag, ts, reason, at."""
        try:
            rows = self._conn().execute(
                "SELECT sink, tag, ts, reason, at FROM undeliverable"
                + (" WHERE sink = ?" if sink is not None else "") + " ORDER BY sink, ts, tag",
                (sink,) if sink is not None else ()).fetchall()
        except sqlite3.Error as e:
            if "no such table" in str(e):       # a store opened read-only from before
                rows = []
            else:
                raise StoreError(f"{self.path}: read failed: {e}") from e
        return pd.DataFrame(rows, columns=["sink", "tag", "ts", "reason", "at"])

    @property
    def ignored(self) -> int:
        """Rows not added because the store already held that tag at that instant (the first
        written is kept: writes are idempotent)."""
        return self._ignored

    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        n, first, last = conn.execute("SELECT COUNT(*), MIN(ts), MAX(ts) FROM sample").fetchone()
        ntags = conn.execute("SELECT COUNT(*) FROM tag").fetchone()[0]
        return {"samples": n, "tags": ntags, "first_ts": first, "last_ts": last,
                "ignored": self._ignored, "path": self.path}

    # -- campaign metadata -------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        conn = self._conn()
        try:
            with self._write_lock, conn:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot write metadata: {e}") from e

    def manual(self) -> pd.DataFrame:
        """Every reading entered by hand (reason manual), retracted ones included (bad quality),
        as a frame of SAMPLE_COLUMNS in time order."""
        conn = self._conn()
        m, b = int(Reason.MANUAL), ROLLUP_BUCKET_NS
        cols = "SELECT tag_id, ts, value, quality, reason FROM sample WHERE reason = ?"
        mark = self._mark(conn)
        if mark is None:        # no rollup: a scan
            rows = conn.execute(cols + " ORDER BY ts", (m,)).fetchall()
        else:                   # the minutes the rollup says hold one, and what it lacks yet
            rows = conn.execute(cols + " AND seq > ?", (m, mark)).fetchall()
            for tid, bucket in conn.execute(
                    "SELECT tag_id, bucket FROM rollup WHERE manual > 0").fetchall():
                rows += conn.execute(cols + " AND tag_id = ? AND ts >= ? AND ts < ? AND seq <= ?",
                                     (m, tid, bucket * b, (bucket + 1) * b, mark)).fetchall()
        f = self._frame(rows, self._tag_map())
        return f.sort_values(["ts", "tag"], kind="stable").reset_index(drop=True)

    def retract(self, tag: str, ts: int) -> bool:
        """Retract the good manual reading of ``tag`` at ``ts``: it stays in the record with bad
        quality (reason manual), is written again in the write order (so a forwarder ships the
        retraction and a live reader recomputes its minute), and its minute of the rollup is
        recomputed. False when there is no such reading (or it is retracted already)."""
        if self.readonly:
            raise StoreError(f"{self.path}: store opened read-only")
        conn = self._conn()
        b = ROLLUP_BUCKET_NS
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    "SELECT s.seq, s.tag_id FROM sample s JOIN tag t ON t.id = s.tag_id WHERE "
                    f"t.name = ? AND s.ts = ? AND s.reason = ? AND s.{_GOOD}",
                    (tag, ts, int(Reason.MANUAL))).fetchone()
                if row is None:
                    conn.execute("ROLLBACK")
                    return False
                seq, tid = row
                newest = conn.execute("SELECT MAX(seq) FROM sample").fetchone()[0]
                conn.execute("UPDATE sample SET seq = ?, quality = ? WHERE seq = ?",
                             (newest + 1, int(Quality.BAD), seq))
                mark = self._mark(conn)
                if mark is not None:
                    # the minute as the rows the mark covers make it; the moved row (now beyond
                    # the mark) is merged with the next write, as bad
                    conn.execute("DELETE FROM rollup WHERE tag_id = ? AND bucket = ?",
                                 (tid, ts // b))
                    conn.execute(
                        f"INSERT INTO rollup(tag_id, bucket, rows, good, manual, first_ts, "
                        f"last_ts, vsum, vmin, vmax) SELECT tag_id, ts / {b}, {_AGG} FROM sample "
                        f"WHERE tag_id = ? AND ts >= ? AND ts < ? AND seq <= ? GROUP BY tag_id",
                        (tid, ts // b * b, (ts // b + 1) * b, mark))
                conn.execute("COMMIT")
                self._wrote = True
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: retraction failed: {e}") from e
        return True

    def get_meta(self, key: str) -> str | None:
        try:
            row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    # -- raw packets as received (HJ 212: a disputed value traced to the wire) --------------
    def write_raw(self, rows: Sequence[tuple[int, str, str, str, bytes]]) -> int:
        """Keep packets as received: (receive time [ns UTC], peer, device or "", status: "ok" or
        why it was refused, the bytes). Its own table, its own transaction; never rolled up."""
        if not rows:
            return 0
        if self.readonly:
            raise StoreError(f"{self.path}: store opened read-only")
        conn = self._conn()
        try:
            with self._write_lock, conn:
                conn.execute(_RAW_SCHEMA)
                conn.executemany("INSERT INTO raw_packet(rx_ns, peer, device, status, data) "
                                 "VALUES (?,?,?,?,?)", rows)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot write raw packets: {e}") from e
        return len(rows)

    def read_raw(self, device: str | None = None, start: int | None = None,
                 end: int | None = None) -> list[tuple[int, str, str, str, bytes]]:
        """Raw packets with ``start <= rx_ns < end``, in arrival order (see :meth:`write_raw`)."""
        q = "SELECT rx_ns, peer, device, status, data FROM raw_packet WHERE 1=1"
        args: list[Any] = []
        for cond, v in (("device = ?", device), ("rx_ns >= ?", start), ("rx_ns < ?", end)):
            if v is not None:
                q += f" AND {cond}"
                args.append(v)
        try:
            return [tuple(r) for r in self._conn().execute(q + " ORDER BY seq", args)]
        except sqlite3.OperationalError:
            return []       # no raw table: nothing was received


ROLLUP_COLUMNS = ("tag", "bucket", "rows", "good", "manual", "first_ts", "last_ts", "vsum", "vmin",
                  "vmax")


def _empty_rollup() -> pd.DataFrame:
    ints = {c: np.empty(0, np.int64) for c in ("bucket", "rows", "good", "manual")}
    flts = {c: np.empty(0, np.float64) for c in ("first_ts", "last_ts", "vsum", "vmin", "vmax")}
    return pd.DataFrame({"tag": np.empty(0, object), **ints, **flts}, columns=list(ROLLUP_COLUMNS))


def _rollup_frame(rows: list[tuple[Any, ...]], names: dict[int, str]) -> pd.DataFrame:
    if not rows:
        return _empty_rollup()
    cols = list(zip(*rows))
    n = len(rows)

    def f64(c: tuple[Any, ...]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in c], dtype=np.float64)

    return pd.DataFrame({
        "tag": [names[i] for i in cols[0]],
        "bucket": np.fromiter(cols[1], np.int64, n),
        "rows": np.fromiter(cols[2], np.int64, n),
        "good": np.fromiter(cols[3], np.int64, n),
        "manual": np.fromiter(cols[4], np.int64, n),
        "first_ts": f64(cols[5]), "last_ts": f64(cols[6]),
        "vsum": f64(cols[7]), "vmin": f64(cols[8]), "vmax": f64(cols[9]),
    }, columns=list(ROLLUP_COLUMNS))


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": np.empty(0, np.int64), "tag": np.empty(0, object),
        "value": np.empty(0, np.float64), "quality": np.empty(0, np.int8),
        "reason": np.empty(0, np.int8),
    }, columns=list(SAMPLE_COLUMNS))
