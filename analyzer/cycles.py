"""Production cycles of a batch process (DB11/T 1156 7.3.3.3 e), from the source the campaign
declares (``requirements.cycles``): a state tag entering its start state, a batch counter
increasing, a totalizer counting again after an idle spell, or boundaries marked by hand.

A cycle ends where the next one starts. Balances of a batch process are taken over whole cycles:
a window cut in the middle of a brew leaves material in the vessels, which is not a loss. The
functions take either every good sample of the tag or only its changes (``store.transitions``):
both give the same starts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cpaudit.analyzer.totals import good_series
from cpaudit.config import Config
from cpaudit.config.models import CycleSpec


def changes(frame: pd.DataFrame, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """The good samples of ``tag`` where its value changes (the first one kept)."""
    ts, v = good_series(frame, tag)
    if len(ts) < 2:
        return ts, v
    keep = np.concatenate([[True], v[1:] != v[:-1]])
    return ts[keep], v[keep]


def cycle_starts(frame: pd.DataFrame | None, spec: CycleSpec) -> np.ndarray:
    """Times [ns] at which cycles start. A state's first sample counts only when the state
    before it is known to differ, so a window opening mid-step is not a start."""
    if spec.source == "marked":
        return np.array(spec.marked_ns(), dtype=np.int64)
    if frame is None or spec.tag is None:
        return np.empty(0, np.int64)
    ts, v = changes(frame, spec.tag)
    if len(ts) < 2:
        return np.empty(0, np.int64)
    if spec.source == "state":
        at = np.isclose(v, spec.start_state)
        return ts[1:][at[1:] & ~at[:-1]]
    up = v[1:] > v[:-1]
    if spec.source == "counter":
        return ts[1:][up]
    # totalizer: counting again after at least idle_min minutes without a change
    idle = np.diff(ts) >= spec.idle_min * 60e9
    return ts[1:][up & idle]


def whole_cycles(cfg: Config, frame: pd.DataFrame, window: tuple[int, int]
                 ) -> tuple[tuple[int, int] | None, int]:
    """``window`` trimmed to whole cycles (first start to last start inside it) and the number of
    cycles; the window itself when the campaign has no cycle definition."""
    spec = cfg.requirements.cycles
    if spec is None:
        return window, 0
    starts = cycle_starts(frame, spec)
    starts = starts[(starts >= window[0]) & (starts <= window[1])]
    if len(starts) < 2:
        return None, 0
    return (int(starts[0]), int(starts[-1])), len(starts) - 1


def effective_config(cfg: Config, marks: list[int]) -> Config:
    """The campaign as the analysis sees it: with ``requirements.cycles.source: marked``, the
    boundaries of the file plus ``marks``, those marked on the web (the store's
    ``cycle_marks()``) [ns UTC]."""
    import datetime as dt
    spec = cfg.requirements.cycles
    if spec is None or spec.source != "marked":
        return cfg
    extra = marks
    if not extra:
        return cfg
    when = [dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc) for ns in extra]
    new_spec = spec.model_copy(update={"boundaries": list(spec.boundaries) + when})
    req = cfg.requirements.model_copy(update={"cycles": new_spec})
    return cfg.model_copy(update={"requirements": req})
