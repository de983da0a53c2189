"""``cpaudit generate``: 80 h of the whole demo site at 1 s into a fresh SQLite store.

Baseline, measured in the same run: raw ``sqlite3.executemany`` of the same number of rows into
the same schema with precomputed tuples (the floor of any Python producer writing SQLite row by
row; shared/reference/limits.md gives 650 k rows/s in 10 k-row transactions on such a machine).
"""
from __future__ import annotations

import os
import resource
import time

import numpy as np

from bench.common import header, line, raw_sample_db, tmpdir


def _raw_rate(n_rows: int, ntags: int, d: str) -> float:
    con = raw_sample_db(os.path.join(d, "raw.db"))
    per = n_rows // ntags
    ts = (np.arange(per, dtype=np.int64) * 10**9).tolist()
    vals = np.random.default_rng(1).random(per).tolist()
    t0 = time.perf_counter()
    for chunk in range(0, per, 3600):
        with con:
            for k in range(ntags):
                con.executemany("INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason)"
                                " VALUES (?,?,?,?,?)",
                                [(k, t, v, 0, 0) for t, v in zip(ts[chunk:chunk + 3600],
                                                                 vals[chunk:chunk + 3600])])
    rate = ntags * per / (time.perf_counter() - t0)
    con.close()
    return rate


def run(hours: float = 80.0) -> None:
    from cpaudit import config
    from cpaudit.simulators.generate import generate
    from cpaudit.store import SQLiteStore
    cfg = config.load(os.path.join(os.path.dirname(config.__file__), "examples", "brewery.yaml"))
    header(f"generate — {hours:g} h of the demo site at {cfg.collector.interval_s:g} s, "
           f"{len(cfg.tag_index())} tags, into a fresh SQLite store")
    with tmpdir() as d:
        st = SQLiteStore(os.path.join(d, "gen.db"))
        t0 = time.perf_counter()
        stats = generate(cfg, st, hours, start=1_790_000_000.0)
        secs = time.perf_counter() - t0
        st.close()
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        rate = stats.samples / secs
        raw = _raw_rate(min(stats.samples, 3_600_000), len(stats.tags), d)
        line(f"{stats.samples:,} samples of {len(stats.tags)} tags", secs, "s",
             target="well under 60 s")
        line("generate rate", rate / 1e3, "k samples/s", raw / 1e3)
        line("baseline: raw executemany, same schema", raw / 1e3, "k rows/s")
        line("store size", size / stats.samples, "B/sample")
        line("peak RSS so far", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MiB")
