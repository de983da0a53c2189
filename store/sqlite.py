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
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from store.base import StoreError
from store.sample import SAMPLE_COLUMNS, Batch

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
"""


_INSERT = "INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) VALUES (?,?,?,?,?)"


class SQLiteStore:
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
        if readonly and not os.path.exists(self.path):
            raise StoreError(f"{self.path}: no such store")
        conn = self._conn()
        if not readonly:
            with conn:
                conn.executescript(_SCHEMA)

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
                body: Callable[[sqlite3.Connection, dict[str, int]], None]) -> int:
        """Run ``body(conn, tag ids)`` in one write transaction; the rows it added."""
        if self.readonly:
            raise StoreError(f"{self.path}: store opened read-only")
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                ids = self._ids_for(conn, tags)
                before = conn.total_changes
                body(conn, ids)
                added = conn.total_changes - before
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: write failed: {e}") from e
        return added

    def write(self, batch: Batch) -> int:
        if len(batch) == 0:
            if self.readonly:
                raise StoreError(f"{self.path}: store opened read-only")
            return 0

        def body(conn: sqlite3.Connection, ids: dict[str, int]) -> None:
            # SQLite binds NaN as NULL; +-inf never reach here as good (Batch invariant),
            # and are stored as NULL too so that a read gives NaN back.
            values = np.where(np.isinf(batch.value), np.nan, batch.value)
            conn.executemany(_INSERT, zip(map(ids.__getitem__, batch.tags), batch.ts.tolist(),
                                          values.tolist(), batch.quality.tolist(),
                                          batch.reason.tolist()))
        added = self._insert(set(batch.tags), body)
        with self._write_lock:
            self._ignored += len(batch) - added
        return added

    def write_series(self, series: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray,
                                                  np.ndarray]]) -> int:
        """Write whole series at once, one transaction: (tag, ts [ns], value, quality, reason)
        per tag, columns as numpy arrays. The same idempotence as :meth:`write`; the fast path of
        bulk producers (``cpaudit generate``)."""
        def body(conn: sqlite3.Connection, ids: dict[str, int]) -> None:
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
        return self._insert({s[0] for s in series}, body)

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

    def _where(self, tags: Sequence[str] | None, start: int | None, end: int | None
               ) -> tuple[str, list[Any], dict[int, str]] | None:
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
            clauses.append("ts >= ?")
            params.append(int(start))
        if end is not None:
            clauses.append("ts < ?")
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
        wanted = names if tags is None else {i: n for i, n in names.items() if n in set(tags)}
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
            tags=[names[i] for i in tid], ts=np.fromiter(ts, np.int64, n),
            value=np.array([np.nan if v is None else v for v in val], dtype=np.float64),
            quality=np.fromiter(q, np.int8, n), reason=np.fromiter(r, np.int8, n))

    def max_seq(self) -> int:
        return int(self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM sample").fetchone()[0])

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

    def get_meta(self, key: str) -> str | None:
        try:
            row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": np.empty(0, np.int64), "tag": np.empty(0, object),
        "value": np.empty(0, np.float64), "quality": np.empty(0, np.int8),
        "reason": np.empty(0, np.int8),
    }, columns=list(SAMPLE_COLUMNS))
