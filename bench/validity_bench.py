"""Validity report (DB11/T 1156 7.3.3.3) on 80 h of the whole demo site at 1 s.

Figures: the full report as ``cpaudit analyze --validity-only`` computes it (in a child process,
so its peak RSS is the report's own), and the live recomputation after the newest minute is
appended (what the web's live page does between two polls). Baselines in the same run: SQLite's
own scan of every sample (``SELECT COUNT(*), SUM(value)``: the floor of any report that looks at
every row; limits.md measured 0.81 s per 10 M rows) and, for the live figure, the full report.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np

from bench.common import ROOT, header, line, tmpdir

_CHILD = """
import json, sys, time
from cpaudit import config
from cpaudit.analyzer.iotools import validity_from_store
from cpaudit.store import SQLiteStore
cfg = config.load(sys.argv[1])
t0 = time.perf_counter()
r = validity_from_store(cfg, SQLiteStore(sys.argv[2], readonly=True))
secs = time.perf_counter() - t0
# the peak of this process's own memory (VmHWM: ru_maxrss would carry the bench's over exec)
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM"))
print(json.dumps({"secs": secs, "rss_mib": hwm / 1024, "verdict": r.verdict,
                  "checks": len(r.checks)}))
"""


def run(hours: float = 80.0) -> None:
    from cpaudit import config
    from cpaudit.analyzer.balance import material_balance
    from cpaudit.analyzer.iotools import balances_from_store, material_balance_from_store
    from cpaudit.analyzer.totals import balance_tags
    from cpaudit.analyzer.iotools import LiveValidity
    from cpaudit.simulators.generate import generate
    from cpaudit.store import Batch, SQLiteStore
    path = os.path.join(os.path.dirname(config.__file__), "examples", "brewery.yaml")
    cfg = config.load(path)
    header(f"validity — {hours:g} h of the demo site at {cfg.collector.interval_s:g} s "
           f"(generated), {len(cfg.tag_index())} tags")
    with tmpdir() as d:
        db = os.path.join(d, "site.db")
        st = SQLiteStore(db)
        stats = generate(cfg, st, hours, start=1_790_000_000.0)
        st.close()
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        t0 = time.perf_counter()
        con.execute("SELECT COUNT(*), SUM(value) FROM sample").fetchone()
        scan = time.perf_counter() - t0
        con.close()
        out = subprocess.run([sys.executable, "-c", _CHILD, path, db], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        child = json.loads(out.strip().splitlines()[-1])
        line(f"full report, {stats.samples:,} samples ({child['checks']} checks, "
             f"{child['verdict']})", child["secs"], "s", scan, target="<= 5 s")
        line("baseline: SQLite's own scan of every sample", scan, "s")
        line("peak RSS of the report process", child["rss_mib"], "MiB", target="<= 2048 MiB")

        st = SQLiteStore(db, readonly=True)
        t0 = time.perf_counter()
        bal = material_balance_from_store(cfg, st)
        thin = time.perf_counter() - t0
        t0 = time.perf_counter()
        every = balances_from_store(cfg, st)
        layers = time.perf_counter() - t0
        from cpaudit.analyzer.iotools import campaign_report
        t0 = time.perf_counter()
        doc = campaign_report(cfg, st, validity=False)
        report = time.perf_counter() - t0
        pol = doc["balances"]["pollutant"]
        h8 = stats.start_ns + 8 * 3_600 * 10**9
        t0 = time.perf_counter()
        material_balance(cfg, st.read(balance_tags(cfg), None, h8))
        raw8 = time.perf_counter() - t0
        st.close()
        line(f"material balance over {hours:g} h, thin frame ({bal.verdict})", thin, "s",
             raw8 * hours / 8)
        line("baseline: the same from raw rows, 8 h of it, scaled to the whole", raw8 * hours / 8,
             "s")
        line(f"material, water and energy balances over {hours:g} h "
             f"({', '.join(r.verdict for r in every.values())})", layers, "s")
        line(f"totals and all four balances + losses, components, reconciliation, Sankey "
             f"(pollutants {pol['verdict']}, {len(pol['factors'])} factors)", report, "s",
             raw8 * hours / 8, target="<= 5 s")

        st = SQLiteStore(db)
        live = LiveValidity(cfg)
        t0 = time.perf_counter()
        live.report(st)
        first = time.perf_counter() - t0
        # the next minute, written tick by tick as the collector writes it
        last = st.read(None, stats.end_ns - 10**9, None)
        times = []
        for k in range(3):
            for s in range(60):
                shift = (60 * k + s + 1) * 10**9
                st.write(Batch(list(last["tag"]), last["ts"].to_numpy(np.int64) + shift,
                               last["value"].to_numpy(), last["quality"].to_numpy(),
                               last["reason"].to_numpy()))
            t0 = time.perf_counter()
            live.report(st)
            times.append(time.perf_counter() - t0)
        st.close()
        line("live page: first report (reads the rollup)", first, "s")
        line("live page: recompute after the newest minute (median of 3)",
             float(np.median(times)) * 1e3, "ms", first * 1e3, target="<= 200 ms")
