"""Stream totals over a window: the amount through each stream.

From a totalizer: the difference of the readings at the window's edges, with rollover at the
configured maximum and resets detected (shared/reference/devices.md 4.2-4.3). Every stream of a
balance is differenced over the **same** window (the intersection of the spans their tags cover),
so the balance compares inputs and outputs measured synchronously (DB11/T 1156 7.3.3.3 e).
"""
from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cpaudit.config import Config
from cpaudit.config.models import Stream
from cpaudit.config.units import dimension, factor
from cpaudit.store import Quality


@dataclass
class StreamTotal:
    stream: str
    tag: str | None
    provenance: str
    amount: float            # in ``unit``
    unit: str
    amount_kg: float         # [kg] (NaN for an energy carrier)
    method: str              # totalizer | theoretical | missing
    good_samples: int = 0
    resets: int = 0
    rollovers: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # [start, end) ns without good data
    note: str = ""
    value: float = float("nan")   # in the layer's balance unit (kg, t of water, kgce)
    # the rate tag integrated over the same window, in ``unit`` (NaN without a rate tag), the
    # share of the window its readings cover, and the difference to the totalizer [%]
    rate_amount: float = float("nan")
    rate_coverage: float = float("nan")
    cross_check_pct: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["amount"] = _num(self.amount)
        d["amount_kg"] = _num(self.amount_kg)
        for k in ("value", "rate_amount", "rate_coverage", "cross_check_pct"):
            d[k] = _num(getattr(self, k))
        return d


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def unwrap(values: np.ndarray, rollover: float | None) -> tuple[np.ndarray, int, int]:
    """Turn totalizer readings into a monotonic cumulative amount.

    A decrease is a rollover when a maximum is configured and the previous reading was in the
    upper half of the range (the counter wrapped: add the maximum); otherwise it is a reset to zero
    (count the new reading from zero and flag it). Returns (cumulative, resets, rollovers).
    """
    if len(values) == 0:
        return values.astype(np.float64), 0, 0
    d = np.diff(values.astype(np.float64))
    tol = 1e-9 * np.maximum(np.abs(values[:-1]), 1.0)
    neg = d < -tol
    rolls = 0
    resets = 0
    if neg.any():
        for i in np.flatnonzero(neg):
            prev, cur = values[i], values[i + 1]
            if rollover is not None and prev >= 0.5 * rollover:
                d[i] = cur + rollover - prev
                rolls += 1
            else:
                d[i] = cur
                resets += 1
    d[(~neg) & (d < 0)] = 0.0
    return np.concatenate([[0.0], np.cumsum(d)]), resets, rolls


def totalizer_amount(ts: np.ndarray, values: np.ndarray, start: int, end: int,
                     rollover: float | None = None) -> tuple[float, int, int]:
    """Amount counted between ``start`` and ``end`` [ns] from good totalizer readings, linearly
    interpolated at the edges. Returns (amount, resets, rollovers); NaN when the readings do not
    span the window."""
    if len(ts) < 2 or ts[0] > start or ts[-1] < end:
        return float("nan"), 0, 0
    cum, resets, rolls = unwrap(values, rollover)
    a, b = np.interp([start, end], ts.astype(np.float64), cum)
    return float(b - a), resets, rolls


MINUTE = 60_000_000_000
_RATE_BASE = {"mass_rate": "kg", "volume_rate": "m3", "power": "kWh"}


def minute_rates(frame: pd.DataFrame, tags: list[str]) -> pd.DataFrame:
    """Per tag and minute: good readings and their sum (the columns of the store's rollup that
    a rate integral needs), from raw samples."""
    sel = frame[frame["tag"].isin(tags) & (frame["quality"] == int(Quality.GOOD))]
    if not len(sel):
        return pd.DataFrame({"tag": [], "bucket": [], "good": [], "vsum": []})
    g = sel.assign(bucket=sel["ts"] // MINUTE * MINUTE).groupby(["tag", "bucket"], observed=True)
    out = g["value"].agg(["size", "sum"]).reset_index()
    return out.rename(columns={"size": "good", "sum": "vsum"})


def rate_integral(rows: pd.DataFrame, start: int, end: int, unit: str
                  ) -> tuple[float, str, float, list[tuple[int, int]]]:
    """A rate tag integrated over [start, end): each minute's mean rate times the part of the
    minute inside the window, over the minutes with a good reading (at the window's edges the
    mean of the whole minute: the store keeps minutes, so both paths agree). A minute without one
    is a gap: reported, not filled, located to the minute. Returns (amount, its unit — kg, m3 or kWh —, covered share of the
    window, gaps [start, end) ns)."""
    base = _RATE_BASE.get(dimension(unit))
    if base is None:
        raise ValueError(f"{unit!r} is not a rate")
    per_h = factor(unit, f"{base}/h")
    grid = np.arange(start // MINUTE * MINUTE, end, MINUTE, dtype=np.int64)
    mean = np.full(len(grid), np.nan)
    if len(rows):
        b = rows["bucket"].to_numpy(np.int64)
        idx = (b - grid[0]) // MINUTE
        ok = (idx >= 0) & (idx < len(grid)) & (rows["good"].to_numpy() > 0)
        mean[idx[ok]] = rows["vsum"].to_numpy()[ok] / rows["good"].to_numpy()[ok]
    span = np.minimum(grid + MINUTE, end) - np.maximum(grid, start)
    have = np.isfinite(mean)
    amount = float((mean[have] * per_h * span[have] / 3.6e12).sum())
    covered = float(span[have].sum() / (end - start)) if end > start else float("nan")
    gaps: list[tuple[int, int]] = []
    for i in np.flatnonzero(~have):
        a, z = int(max(grid[i], start)), int(min(grid[i] + MINUTE, end))
        if gaps and gaps[-1][1] == a:
            gaps[-1] = (gaps[-1][0], z)
        else:
            gaps.append((a, z))
    return amount, base, covered, gaps


def _gaps(ts: np.ndarray, start: int, end: int, interval_ns: int) -> list[tuple[int, int]]:
    if len(ts) == 0:
        return [(start, end)]
    edges = np.concatenate([[start - interval_ns], ts, [end + interval_ns]]).astype(np.int64)
    i = np.flatnonzero(np.diff(edges) > 1.5 * interval_ns)
    return list(zip((edges[i] + interval_ns).tolist(), edges[i + 1].tolist()))


# per frame, its good samples per tag, sorted by time: a balance asks for the same tags of the
# same frame many times (common window, totals, cycles); one groupby instead of a mask per call
# (a frame is unhashable: kept by id, with a weak reference to check it and drop the entry)
_GOOD: dict[int, tuple["weakref.ref[pd.DataFrame]",
                       dict[str, tuple[np.ndarray, np.ndarray]]]] = {}


def _good_by_tag(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    key = id(frame)
    hit = _GOOD.get(key)
    if hit is not None and hit[0]() is frame:
        return hit[1]
    good = frame[frame["quality"] == int(Quality.GOOD)]
    good = good.sort_values(["tag", "ts"], kind="stable")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    tags = good["tag"].astype(str).to_numpy()
    ts = good["ts"].to_numpy(np.int64)
    val = good["value"].to_numpy(np.float64)
    if len(tags):
        cut = np.flatnonzero(tags[1:] != tags[:-1]) + 1
        for a, b in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(tags)]])):
            out[str(tags[a])] = (ts[a:b], val[a:b])
    _GOOD[key] = (weakref.ref(frame), out)
    weakref.finalize(frame, _GOOD.pop, key, None)
    return out


def good_series(frame: pd.DataFrame, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """The good samples of ``tag`` in ``frame``, sorted by time: (ts [ns], value). The frame
    must not be changed in place after the first call (the answer is kept per frame)."""
    hit = _good_by_tag(frame).get(tag)
    if hit is None:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return hit


def common_window(frame: pd.DataFrame, tags: list[str], start: int | None = None,
                  end: int | None = None) -> tuple[int, int] | None:
    """The span every tag covers with good samples, within [start, end]. None if empty."""
    lo, hi = start, end
    for t in tags:
        ts, _ = good_series(frame, t)
        if len(ts) == 0:
            return None
        lo = int(ts[0]) if lo is None else max(lo, int(ts[0]))
        hi = int(ts[-1]) if hi is None else min(hi, int(ts[-1]))
    if lo is None or hi is None or hi <= lo:
        return None
    return lo, hi


def to_kg(amount: float, unit: str, stream: Stream) -> float:
    dim = dimension(unit)
    if dim == "mass":
        return amount * factor(unit, "kg")
    if dim == "volume" and stream.density_kg_m3:
        return amount * factor(unit, "m3") * stream.density_kg_m3
    raise ValueError(f"stream {stream.id}: cannot express {unit!r} as mass")


LAYER_UNIT = {"material": "kg", "water": "t", "energy": "kgce", "pollutant": "kg"}


def layer_value(cfg: Config, layer: str, amount: float, unit: str, stream: Stream
                ) -> tuple[float, str]:
    """``amount`` [``unit``] of ``stream`` in the layer's balance unit (:data:`LAYER_UNIT`):
    mass for the material layer, tonnes (= m3) of water for the water layer, kgce for the energy
    layer (GB/T 2589, :mod:`analyzer.energy`). Returns (value, note); NaN with the reason when it
    cannot be converted."""
    if not np.isfinite(amount):
        return float("nan"), ""
    if layer in ("material", "pollutant"):
        return to_kg(amount, unit, stream), ""
    if layer == "water":
        w = water_fraction(cfg, stream)
        if w is None:
            return float("nan"), "no water content declared"
        note = "" if w == 1.0 and "water" in stream.layers else f"water content {w:.4g}"
        return to_kg(amount, unit, stream) * w / 1000.0, note
    from cpaudit.analyzer.energy import coefficient
    if stream.carrier is None:
        return float("nan"), "no carrier declared: cannot convert to kgce"
    from cpaudit.analyzer.energy import gas_state_factor
    c = coefficient(cfg, stream.carrier)
    if dimension(unit) != dimension(c.unit):
        return float("nan"), f"{unit} cannot be converted to {c.unit} for the {stream.carrier} " \
            "coefficient"
    state, snote = gas_state_factor(cfg, stream.carrier, unit, c.unit)
    return amount * factor(unit, c.unit) * state * c.kgce, _join(
        f"{c.kgce:g} kgce/{c.unit} ({c.status}: {c.source})", snote)


def water_fraction(cfg: Config, s: Stream) -> float | None:
    """The water content of stream ``s`` [kg water / kg]: declared per stream
    (``water.fractions``), else the complement of the dry-matter component named by
    ``water.from_component`` (water = 1 − dry matter), else 1 for a stream of the water layer;
    None when nothing says."""
    w = cfg.water
    if s.id in w.fractions:
        return w.fractions[s.id]
    if w.from_component is not None:
        comp = next((c for c in cfg.components if c.id == w.from_component), None)
        if comp is not None and s.id in comp.fractions:
            return 1.0 - comp.fractions[s.id]
    return 1.0 if "water" in s.layers else None


def layer_streams(cfg: Config, layer: str = "material") -> list[Stream]:
    """The flowsheet's streams that belong to ``layer``; the water layer also takes the material
    streams whose water content is declared (``water``: water in raw materials, products, wastes,
    GB/T 12452)."""
    if layer == "water":
        return [s for s in cfg.flowsheet.streams if "water" in s.layers or (
            "material" in s.layers and water_fraction(cfg, s) is not None)]
    return [s for s in cfg.flowsheet.streams if layer in s.layers]


def theoretical_per_hour(s: Stream) -> tuple[float, str]:
    """A theoretical stream's declared amount per hour and its unit: ``value`` in ``unit`` per
    hour, or in a rate unit (kg/h, m3/h …) taken to kg or m3 per hour. NaN for a value declared
    per cycle, per unit of product or per kg of another stream (see :func:`theoretical_amount`)."""
    unit = s.unit or "kg"
    if s.per != "hour" and dimension(unit) not in ("mass_rate", "volume_rate"):
        return float("nan"), unit
    per_h = float(s.value or 0.0)
    dim = dimension(unit)
    if dim in ("mass_rate", "volume_rate"):
        base = "kg" if dim == "mass_rate" else "m3"
        per_h *= factor(unit, base + "/h")
        unit = base
    return per_h, unit


def stream_totals(cfg: Config, frame: pd.DataFrame, window: tuple[int, int],
                  layer: str = "material", only: set[str] | None = None,
                  rates: pd.DataFrame | None = None, cycles: int | None = None
                  ) -> list[StreamTotal]:
    """Totals of every stream of ``layer`` (or of the streams ``only`` names) over ``window`` =
    (start, end) [ns]: from the totalizer, or from the rate tag integrated when there is no
    totalizer; with both, the rate integral is given beside the totalizer's amount and their
    difference. ``rates``: per-minute aggregates of the rate tags (the store's rollup); taken
    from ``frame`` when not given."""
    start, end = window
    rate_tags = [s.rate_tag for s in layer_streams(cfg, layer) if s.rate_tag]
    theoretical: list[Stream] = []
    if rates is None:
        rates = minute_rates(frame, rate_tags)
    by_rate = dict(tuple(rates.groupby("tag", sort=False, observed=True))) if len(rates) else {}
    index = cfg.tag_index()
    interval_ns = int(cfg.collector.interval_s * 1e9)
    out: list[StreamTotal] = []
    hours = (end - start) / 3.6e12
    for s in layer_streams(cfg, layer):
        if only is not None and s.id not in only:
            continue
        if s.provenance == "theoretical" or (s.tag is None and s.value is not None):
            theoretical.append(s)
            out.append(StreamTotal(s.id, None, s.provenance, float("nan"), s.unit or "kg",
                                   float("nan"), "theoretical"))
            continue
        if s.tag is None:
            assert s.rate_tag is not None
            rows = by_rate.get(s.rate_tag, rates.iloc[0:0])
            amount, unit, cov, gaps = rate_integral(rows, start, end, index[s.rate_tag].unit)
            ok = cov > 0
            value, vnote = layer_value(cfg, layer, amount if ok else float("nan"), unit, s)
            note = (f"integrated from the rate tag over {cov:.1%} of the window; "
                    f"{len(gaps)} gap(s) not filled" if gaps else
                    "integrated from the rate tag") if ok else "no good rate readings"
            out.append(StreamTotal(s.id, s.rate_tag, s.provenance, amount if ok else float("nan"),
                                   unit, _kg(amount, unit, s) if ok else float("nan"),
                                   "rate" if ok else "missing", good_samples=int(
                                       rows["good"].sum()) if len(rows) else 0, gaps=gaps,
                                   note=_join(note, vnote), value=value, rate_amount=amount,
                                   rate_coverage=cov))
            continue
        info = index[s.tag]
        ts, vals = good_series(frame, s.tag)
        inside = (ts >= start) & (ts <= end)
        amount, resets, rolls = totalizer_amount(ts, vals, start, end, info.rollover)
        note = ""
        if not np.isfinite(amount):
            note = "totalizer readings do not span the window"
        elif resets:
            note = f"{resets} reset(s) detected; counted from zero after each"
        value, vnote = layer_value(cfg, layer, amount, info.unit, s)
        total = StreamTotal(
            s.id, s.tag, s.provenance, amount, info.unit, _kg(amount, info.unit, s),
            "totalizer" if np.isfinite(amount) else "missing",
            good_samples=int(inside.sum()), resets=resets, rollovers=rolls,
            gaps=_gaps(ts[inside], start, end, interval_ns), note=_join(note, vnote),
            value=value)
        if s.rate_tag is not None and s.rate_tag in by_rate:
            _cross_check(total, by_rate[s.rate_tag], start, end, index[s.rate_tag].unit,
                         info.accuracy_pct, index[s.rate_tag].accuracy_pct, s)
        out.append(total)
    for s in theoretical:
        i = next(k for k, t in enumerate(out) if t.stream == s.id)
        amount, unit, how = theoretical_amount(cfg, frame, window, s, hours, cycles, out, rates)
        value, vnote = layer_value(cfg, layer, amount, unit, s)
        out[i] = StreamTotal(s.id, None, s.provenance, amount, unit, _kg(amount, unit, s),
                             "theoretical", note=_join(f"theoretical: {how}; {s.source}", vnote),
                             value=value)
    return out


def theoretical_amount(cfg: Config, frame: pd.DataFrame, window: tuple[int, int], s: Stream,
                       hours: float, cycles: int | None, known: list[StreamTotal],
                       rates: pd.DataFrame | None) -> tuple[float, str, str]:
    """A theoretical stream's amount over ``window``: its declared value times what it is per —
    hours, complete production cycles, the product's amount (``flowsheet.product`` in its own
    unit) or another stream's mass [kg]. Returns (amount, unit, how it was scaled)."""
    unit = s.unit or "kg"
    v = float(s.value or 0.0)
    if s.per == "hour":
        per_h, unit = theoretical_per_hour(s)
        return per_h * hours, unit, f"{per_h:g} {unit}/h x {hours:.2f} h"
    if s.per == "cycle":
        if not cycles:
            return float("nan"), unit, "per cycle: no complete cycle in the window"
        return v * cycles, unit, f"{v:g} {unit} per cycle x {cycles} cycles"
    ref = cfg.flowsheet.product if s.per == "product" else s.per
    t = next((x for x in known if x.stream == ref), None)
    if t is None and ref is not None:
        found = stream_totals(cfg, frame, window, "material", {ref}, rates, cycles)
        t = found[0] if found else None
    if t is None:
        return float("nan"), unit, f"per {s.per}: no total of {ref}"
    base, base_unit = (t.amount, t.unit) if s.per == "product" else (t.amount_kg, "kg")
    return v * base, unit, f"{v:g} {unit} per {base_unit} of {ref} x {base:.6g} {base_unit}"


def _cross_check(t: StreamTotal, rows: pd.DataFrame, start: int, end: int, rate_unit: str,
                 acc_total: float | None, acc_rate: float | None, s: Stream) -> None:
    """The rate tag's integral beside the totalizer's amount. They disagree when the difference
    is beyond the two meters' accuracy classes added (2 % when neither is declared) with the rate
    covering at least 99 % of the window; said in the note."""
    amount, unit, cov, _ = rate_integral(rows, start, end, rate_unit)
    try:
        amount *= factor(unit, t.unit)
    except ValueError:
        if dimension(unit) == "volume" and dimension(t.unit) == "mass" and s.density_kg_m3:
            amount = amount * factor(unit, "m3") * s.density_kg_m3 * factor("kg", t.unit)
        elif dimension(unit) == "mass" and dimension(t.unit) == "volume" and s.density_kg_m3:
            amount = amount * factor(unit, "kg") / s.density_kg_m3 * factor("m3", t.unit)
        else:
            return
    t.rate_amount, t.rate_coverage = amount, cov
    if not np.isfinite(t.amount) or t.amount == 0:
        return
    t.cross_check_pct = 100.0 * (amount - t.amount) / t.amount
    limit = (acc_total or 1.0) + (acc_rate or 1.0)
    if cov >= 0.99 and abs(t.cross_check_pct) > limit:
        t.note = _join(t.note, f"the rate tag integrates to {t.cross_check_pct:+.1f} % of the "
                       f"totalizer (beyond the meters' {limit:g} %): check both")


def _kg(amount: float, unit: str, stream: Stream) -> float:
    """Mass of a mass or (with density) volume amount; NaN otherwise (an energy carrier)."""
    if not np.isfinite(amount):
        return float("nan")
    try:
        return to_kg(amount, unit, stream)
    except ValueError:
        return float("nan")


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def flowsheet_tags(cfg: Config, layer: str | None = "material") -> list[str]:
    """The totalizer tags of ``layer``'s streams (of every stream when ``layer`` is None)."""
    streams = cfg.flowsheet.streams if layer is None else layer_streams(cfg, layer)
    return [s.tag for s in streams if s.tag is not None]


def balance_tags(cfg: Config, rates: bool = True) -> list[str]:
    """What the balances read: every stream's totalizer, the cycle tag, if any, and (``rates``)
    the streams' rate tags."""
    cyc = cfg.requirements.cycles
    extra = [s.rate_tag for s in cfg.flowsheet.streams if s.rate_tag] if rates else []
    return list(dict.fromkeys(flowsheet_tags(cfg, None) + ([cyc.tag] if cyc and cyc.tag else [])
                              + extra))

