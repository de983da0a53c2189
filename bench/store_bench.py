"""SQLite store inserts against raw ``sqlite3.executemany`` into the same schema.

Two shapes of data: every sample at its own second (each tag's samples 100 s apart, so nearly
every sample opens a new minute of the rollup: the store's worst case), and the collector's
(every tag read at each 1 s tick, written a tick at a time)."""
from __future__ import annotations

import os
import time

import numpy as np

from bench.common import header, line, raw_sample_db, tmpdir
from cpaudit.store import Batch, SQLiteStore


def _both(d: str, batches: list[Batch], ntags: int) -> tuple[float, float, SQLiteStore]:
    """Rows/s of raw ``executemany`` and of ``SQLiteStore.write`` (rollup merged, as on close)
    for the same batches, one commit each; the store, still open."""
    n = sum(len(b) for b in batches)
    con = raw_sample_db(os.path.join(d, "raw.db"))
    rows = [[(i % ntags, int(t), float(v), 0, 0) for i, (t, v) in
             enumerate(zip(b.ts, b.value))] for b in batches]
    t0 = time.perf_counter()
    for r in rows:
        with con:
            con.executemany("INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) "
                            "VALUES (?,?,?,?,?)", r)
    raw = n / (time.perf_counter() - t0)
    con.close()
    st = SQLiteStore(os.path.join(d, "store.db"))
    t0 = time.perf_counter()
    for b in batches:
        st.write(b)
    st.flush_rollup()
    return raw, n / (time.perf_counter() - t0), st


def run(n: int = 300_000, per_commit: int = 10_000, ntags: int = 100) -> None:
    header(f"store — SQLite, WAL, synchronous=FULL; {n:,} samples, {per_commit:,} per commit, "
           f"{ntags} tags")
    with tmpdir() as d:
        tags = [f"t{i % ntags}" for i in range(per_commit)]
        batches = [Batch(tags=tags, ts=np.arange(k * per_commit, (k + 1) * per_commit) * 10**9,
                         value=np.random.default_rng(k).random(per_commit),
                         quality=np.zeros(per_commit), reason=np.zeros(per_commit))
                   for k in range(n // per_commit)]
        raw, ours, st = _both(d, batches, ntags)
        t0 = time.perf_counter()
        df = st.read(None)
        read = len(df) / (time.perf_counter() - t0)
        st.close()
    line("raw executemany of prepared tuples (baseline)", raw, "rows/s")
    line("SQLiteStore.write(Batch), a sample per second", ours, "rows/s", raw, "≥ 0.7x")
    line("SQLiteStore.read into a DataFrame", read, "rows/s")
    ticks(n, ntags)


def ticks(n: int, ntags: int, ticks_per_commit: int = 1) -> None:
    """The collector's shape: all tags at each tick, one commit per tick (its flush)."""
    per = ntags * ticks_per_commit
    tags = [f"t{i}" for i in range(ntags)] * ticks_per_commit
    with tmpdir() as d:
        batches = [Batch(tags=tags, ts=np.repeat(np.arange(k * ticks_per_commit,
                                                           (k + 1) * ticks_per_commit), ntags)
                         * 10**9, value=np.random.default_rng(k).random(per),
                         quality=np.zeros(per), reason=np.zeros(per)) for k in range(n // per)]
        raw, ours, st = _both(d, batches, ntags)
        st.close()
    line(f"raw executemany, {per} rows per commit (baseline)", raw, "rows/s")
    line("SQLiteStore.write(Batch), a tick per commit, rollup kept", ours, "rows/s", raw,
         "≥ 0.7x")
