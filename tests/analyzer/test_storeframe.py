"""A balance read through the thin frame (rollup minutes, raw rows only where a counter fell and
at the edges) equals the balance on every raw row: the same window, amounts, closures, gaps and
sample counts — with totalizers that roll over, reset, and drop out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cpaudit import config
from cpaudit.analyzer.balance import layer_balance, material_balance
from cpaudit.analyzer.iotools import balances_from_store, material_balance_from_store, thin_frame
from cpaudit.analyzer.totals import balance_tags
from cpaudit.config.scenario import Scenario
from cpaudit.simulators.generate import generate
from cpaudit.store import SQLiteStore
from tests.conftest import BREWERY, campaign_text, site_text

T0 = 1_790_000_000.0
FAULTS = [{"kind": "rollover", "device": "ws_malt", "start": "5h"},
          {"kind": "reset", "device": "ws_grains", "start": "7h"},
          {"kind": "dropout", "device": "fm_water", "start": "4h", "duration": "7m"}]


def same(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (the thin frame sums fewer, larger steps of a counter)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), path
    else:
        assert a == b, path


@pytest.mark.parametrize("plant", ["brewery", "brewhouse"])
def test_thin_frame_balance_equals_the_raw_one(tmp_path: Path, plant: str) -> None:
    p = tmp_path / "c.yaml"
    subs = {"interval_s: 1.0": "interval_s: 5"}
    p.write_text(site_text(**subs) if plant == "brewery" else campaign_text(BREWERY, **subs))
    cfg = config.load(p)
    st = SQLiteStore(tmp_path / "c.db")
    faults = FAULTS if plant == "brewery" else FAULTS[2:]
    generate(cfg, st, 13, start=T0, scenario=Scenario.model_validate({"faults": faults}))
    raw = material_balance(cfg, st.read(balance_tags(cfg)))
    thin = material_balance_from_store(cfg, st)
    assert raw.verdict == "ok" and raw.start_ns is not None
    same(thin.to_dict(), raw.to_dict())
    # every layer at once, the same way
    everything = st.read(balance_tags(cfg))
    for layer, res in balances_from_store(cfg, st).items():
        same(res.to_dict(), layer_balance(cfg, everything, layer).to_dict(), layer)
    water = next(s for s in thin.streams if s.stream == "water_in")
    assert len(water.gaps) == 1 and water.gaps[0][1] - water.gaps[0][0] == 7 * 60 * 10**9
    if plant == "brewery":
        by = {s.stream: s for s in thin.streams}
        assert by["malt_in"].rollovers == 1 and by["spent_grains"].resets == 1
    # and a window given by hand
    lo, hi = raw.start_ns + 3_600 * 10**9, raw.end_ns - 1_800 * 10**9
    same(material_balance_from_store(cfg, st, lo, hi).to_dict(),
         material_balance(cfg, everything, lo, hi).to_dict())
    # two readings a minute in place of twelve, raw only where needed
    n_thin = len(thin_frame(st, balance_tags(cfg, rates=False), None, None))
    assert n_thin < len(st.read(balance_tags(cfg, rates=False))) / 4
    # the rate tags integrate to their totalizers (the simulated meters agree to minute means)
    # where the rate covers the window; the dropout leaves a gap the integral does not fill
    checked = [t for t in thin.streams if t.rate_coverage >= 0.999]
    assert len(checked) >= 3
    for t in checked:
        assert abs(t.cross_check_pct) < 0.5, (t.stream, t.cross_check_pct)
    assert water.rate_coverage < 0.995
