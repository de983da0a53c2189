"""Production cycles of a batch process, from a state tag (DB11/T 1156 7.3.3.3 e).

A cycle starts when the state tag enters the configured start state from another value; it ends
where the next one starts. Balances of a batch process are taken over whole cycles: a window cut
in the middle of a brew leaves material in the vessels, which is not a loss.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.totals import good_series
from config import Config


def cycle_starts(frame: pd.DataFrame, tag: str, start_state: float) -> np.ndarray:
    """Times [ns] at which the state enters ``start_state`` (the first sample counts only when
    the state before it is known to differ, so a window opening mid-step is not a start)."""
    ts, v = good_series(frame, tag)
    if len(ts) < 2:
        return np.empty(0, np.int64)
    at = np.isclose(v, start_state)
    enter = at[1:] & ~at[:-1]
    return ts[1:][enter]


def whole_cycles(cfg: Config, frame: pd.DataFrame, window: tuple[int, int]
                 ) -> tuple[tuple[int, int] | None, int]:
    """``window`` trimmed to whole cycles (first start to last start inside it) and the number of
    cycles; the window itself when the campaign has no cycle definition."""
    spec = cfg.requirements.cycles
    if spec is None:
        return window, 0
    starts = cycle_starts(frame, spec.tag, spec.start_state)
    starts = starts[(starts >= window[0]) & (starts <= window[1])]
    if len(starts) < 2:
        return None, 0
    return (int(starts[0]), int(starts[-1])), len(starts) - 1
