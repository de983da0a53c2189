"""The report's read view answers every rollup call with exactly the store's rows, inside the
span it first read and outside it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cpaudit import config
from cpaudit.simulators.generate import generate
from cpaudit.store import SQLiteStore
from cpaudit.store.memo import MemoStore
from tests.conftest import site_text

T0 = 1_795_000_000 // 3600 * 3600       # s, on the hour
MIN = 60_000_000_000


def test_sliced_rollups_equal_the_stores(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(site_text(**{"interval_s: 1.0": "interval_s: 60"}))
    cfg = config.load(p)
    st = SQLiteStore(tmp_path / "s.db")
    generate(cfg, st, 2, start=float(T0))
    memo = MemoStore(st)
    a, b = T0 * 10**9, (T0 + 7200) * 10**9
    tags = ["water_in.total", "hot_wort.total", "gas.flow"]
    calls = [(tags, a + 30 * MIN, b - 10 * MIN),          # the first span
             (tags[:2], a + 40 * MIN + 17, b - 20 * MIN + 5),   # inside it, off the minute
             (tags[1:], None, None),                      # wider: read again
             (tags + ["no.such.tag"], a, a + 5 * MIN),
             (["no.such.tag"], None, None)]
    for t, s, e in calls:
        got, want = memo.rollup(t, s, e), st.rollup(t, s, e)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                      check_dtype=False)
    assert memo.transitions("brewhouse.state").equals(st.transitions("brewhouse.state"))
    st.close()
