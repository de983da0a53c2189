"""Production cycles of a batch process (DB11/T 1156 7.3.3.3 e), from the source the campaign
declares (``requirements.cycles``): a state tag entering its start state, a batch counter
increasing, a totalizer counting again after an idle spell, or boundaries marked by hand.

A cycle ends where the next one starts. Balances of a batch process are taken over whole cycles:
a window cut in the middle of a brew leaves material in the vessels, which is not a loss. The
functions take either every good sample of the tag or only its changes (``store.transitions``):
both give the same starts.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analyzer.totals import good_series
from config import Config
from config.models import CycleSpec


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


CYCLE_MARKS = "cycle_marks"        # store meta: JSON list of ns, boundaries marked on the web
CAMPAIGN_END = "campaign_end"      # store meta: ns, the campaign stopped by hand ("" = running)


def marks(store: Any) -> list[int]:
    import json
    raw = store.get_meta(CYCLE_MARKS)
    return sorted(int(x) for x in json.loads(raw)) if raw else []


def campaign_end(store: Any) -> int | None:
    raw = store.get_meta(CAMPAIGN_END)
    try:
        return int(raw) if raw else None
    except ValueError:          # a record edited by hand: no end rather than a failure
        return None


def effective_config(cfg: Config, store: Any) -> Config:
    """The campaign as the analysis sees it: with ``requirements.cycles.source: marked``, the
    boundaries of the file plus those marked on the web (kept in the store)."""
    import datetime as dt
    spec = cfg.requirements.cycles
    if spec is None or spec.source != "marked":
        return cfg
    extra = marks(store)
    if not extra:
        return cfg
    when = [dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc) for ns in extra]
    new_spec = spec.model_copy(update={"boundaries": list(spec.boundaries) + when})
    req = cfg.requirements.model_copy(update={"cycles": new_spec})
    return cfg.model_copy(update={"requirements": req})
