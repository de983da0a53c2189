"""Production cycles marked by hand (``requirements.cycles.source: marked``): boundaries from the
file plus those marked on the web (kept in the store), used by the balances and the validity; a
campaign stopped by hand ends its analyses there."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpaudit import config
from cpaudit.analyzer.cycles import effective_config
from cpaudit.analyzer.iotools import material_balance_from_store, validity_from_store
from cpaudit.simulators.generate import generate
from cpaudit.simulators.site import CYCLE_S
from cpaudit.store.keys import CAMPAIGN_END, CYCLE_MARKS
from cpaudit.store.sqlite import SQLiteStore
from tests.conftest import site_text

T0 = 1_795_000_000.0
S = 1_000_000_000


@pytest.fixture
def marked(tmp_path: Path) -> config.Config:
    text = site_text()
    start = text.index("  cycles:")
    end = text.index("\n  load:", start)
    text = text[:start] + "  cycles: {source: marked}" + text[end:]
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return config.load(p)


def test_marks_make_the_cycles(marked: config.Config, tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "m.db")
    generate(marked, st, 7, start=T0)
    none = material_balance_from_store(marked, st)
    assert none.verdict == "no-data" and "marked boundaries" in none.message
    starts = [int((T0 + k * CYCLE_S) * 1e9) for k in range(3)]     # the brews' own starts
    st.set_meta(CYCLE_MARKS, json.dumps(starts))
    eff = effective_config(marked, st.cycle_marks())
    assert eff.requirements.cycles is not None
    assert eff.requirements.cycles.marked_ns() == starts
    res = material_balance_from_store(marked, st)
    assert (res.start_ns, res.end_ns) == (starts[0], starts[2])
    assert res.verdict == "ok" and "over 2 whole production cycles" in res.message
    v = validity_from_store(marked, st)
    d = v.check("duration")
    assert d.value == 2 and d.status == "fail"        # 3 are required
    # stopped by hand after the second brew: the analyses end there
    st.set_meta(CAMPAIGN_END, str(starts[1] + 60 * S))
    res = material_balance_from_store(marked, st)
    assert (res.start_ns, res.end_ns) == (starts[0], starts[1])      # one whole brew left
    assert "over 1 whole production cycle" in res.message
    # the validity's window is [start, stop): the same instant the balance ends at
    assert validity_from_store(marked, st).end_ns == starts[1] + 60 * S
