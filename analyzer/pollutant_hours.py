"""The pollutant balance's minute grid (analyzer.pollutant): each tag's minute means and hour
validity (readings, or a cycle analyzer's covered minutes; CEMS status minutes left out), the
stack's standard dry flow, a point's concentration at standard dry state, and the substitution
of invalid hours (the rules: analyzer.emission_rules)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cpaudit.analyzer.emission_rules import cycle_minutes, fill_hours, flag_minutes, status_minutes
from cpaudit.analyzer.validity import MINUTE, _interval_ns, _series
from cpaudit.config import Config
from cpaudit.config.models import PollutantPoint, Stack
from cpaudit.config.units import registry

HOUR = 60 * MINUTE
T0_K = 273.15
P0_KPA = 101.325


def convert(values: np.ndarray, unit: str, to: str) -> np.ndarray:
    """Arrays through pint (offset units such as degC included)."""
    q = registry().Quantity(values, unit)
    return np.asarray(q.to(to).magnitude, dtype=np.float64)

class Hours:
    """The window's hour grid and each tag's hourly mean and validity on it."""

    def __init__(self, cfg: Config, rollup: pd.DataFrame, start: int, end: int,
                 flags: pd.DataFrame | None = None) -> None:
        self.start, self.end = start, end
        # samples an online monitor's logger flagged (HJ 212 data flags: ts, tag, reason)
        self.flags = dict(tuple(flags.groupby("tag", sort=False))) \
            if flags is not None and len(flags) else {}
        self.frac = cfg.pollutants.valid_hour_fraction
        self.holds = cfg.pollutants.cycle_value_holds
        self.grid = np.arange(start // MINUTE * MINUTE, end, MINUTE, dtype=np.int64)
        # hour of each minute, counted from the hour holding ``start``
        self.h0 = start // HOUR * HOUR
        self.hour_of = ((self.grid - self.h0) // HOUR).astype(np.int64)
        self.n = int(self.hour_of[-1]) + 1 if len(self.grid) else 0
        lo = np.maximum(self.h0 + np.arange(self.n) * HOUR, start)
        hi = np.minimum(self.h0 + (np.arange(self.n) + 1) * HOUR, end)
        self.lo, self.hi = lo, hi
        self.span_h = (hi - lo) / HOUR                      # hours of each hour inside the window
        self.by_tag = dict(tuple(rollup.groupby("tag", sort=False))) if len(rollup) else {}
        self.interval = _interval_ns(cfg)
        self.base = int(cfg.collector.interval_s * 1e9)
        self.index = cfg.tag_index()
        self._cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._states: dict[tuple[str, str], np.ndarray] = {}

    def interval_of(self, tag: str) -> int:
        return self.interval.get(tag, self.base)

    def states(self, st: Stack, tag: str) -> np.ndarray:
        """Per minute: "" (normal or no status reading) or the CEMS state that excludes the
        minute for ``tag`` (the status words that apply to it)."""
        key = (st.id, tag)
        if key not in self._states:
            out = np.full(len(self.grid), "", dtype=object)
            for w in st.status:
                if w.applies_to and tag not in w.applies_to:
                    continue
                s = status_minutes(w, self.by_tag.get(w.tag), self.grid)
                take = (out == "") & (s != "") & (s != "normal")
                out[take] = s[take]
            fl = flag_minutes(self.flags.get(tag), self.grid)
            take = (out == "") & (fl != "")
            out[take] = fl[take]
            self._states[key] = out
        return self._states[key]

    def tag(self, tag: str, st: Stack | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(minute means in the tag's unit — NaN without a good reading or in a minute the
        stack's CEMS status excludes, validity of the hour each minute belongs to)."""
        key = (tag, st.id if st is not None and (tag in self.flags or any(
            not w.applies_to or tag in w.applies_to for w in st.status)) else "")
        if key not in self._cache:
            rows = self.by_tag.get(tag)
            iv = self.interval_of(tag)
            if iv > MINUTE:        # a cycle analyzer: each result holds for its cycle
                mean, good = cycle_minutes(rows, self.grid, iv, self.holds)
                expected = np.ones(len(self.grid))
            else:
                if rows is None:
                    rows = pd.DataFrame({c: [] for c in ("bucket", "good", "vsum", "vmax",
                                                         "last_ts", "first_ts", "manual")})
                s = _series(tag, rows, self.grid, self.start, self.end, iv)
                good, expected = s.good.astype(np.float64), s.expected
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(s.good > 0, s.vsum / np.maximum(s.good, 1), np.nan)
            if key[1]:
                out = self.states(st, tag) != ""      # type: ignore[arg-type]
                good = np.where(out, 0.0, good)
                mean = np.where(out, np.nan, mean)
            g = np.bincount(self.hour_of, good, self.n)
            e = np.bincount(self.hour_of, expected, self.n)
            valid = (e > 0) & (g >= self.frac * e)
            self._cache[key] = (mean, valid[self.hour_of])
        return self._cache[key]

    def hourly(self, per_minute: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Hourly amounts from a per-minute rate [x/h]: the mean over the minutes of the hour
        that have a value, times the hour's span in the window (NaN for an hour without one)."""
        have = ok & np.isfinite(per_minute)
        s = np.bincount(self.hour_of, np.where(have, per_minute, 0.0), self.n)
        n = np.bincount(self.hour_of, have.astype(np.float64), self.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, s / np.maximum(n, 1) * self.span_h, np.nan)

    def hour_valid(self, minute_ok: np.ndarray) -> np.ndarray:
        """An hour is valid when all its minutes' hour flags are (they are the same flag)."""
        bad = np.bincount(self.hour_of, (~minute_ok).astype(np.float64), self.n)
        return bad == 0


def _stack_tp(h: Hours, st: Stack) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The stack's temperature [K] and absolute pressure [kPa] per minute, their validity and
    their tags."""
    assert st.temperature_tag is not None and st.pressure_tag is not None
    t, okt = h.tag(st.temperature_tag)
    p, okp = h.tag(st.pressure_tag)
    return (convert(t, h.index[st.temperature_tag].unit, "kelvin"),
            convert(p, h.index[st.pressure_tag].unit, "kPa"), okt & okp,
            [st.temperature_tag, st.pressure_tag])


def stack_flow(h: Hours, st: Stack) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(standard dry flow [m3/h], water share X_sw, hour valid, tags used) per minute."""
    q, ok = h.tag(st.flow_tag)
    q = convert(q, h.index[st.flow_tag].unit, "m3/h")
    used = [st.flow_tag]
    x = np.zeros(len(h.grid))
    if st.moisture_tag is not None:
        m, okm = h.tag(st.moisture_tag)
        x = convert(m, h.index[st.moisture_tag].unit, "dimensionless")
        ok = ok & okm
        used.append(st.moisture_tag)
    if st.flow_basis == "actual":
        t_k, p_kpa, oktp, tp = _stack_tp(h, st)
        q = q * T0_K / t_k * p_kpa / P0_KPA
        ok = ok & oktp
        used += tp
    if st.flow_basis != "standard_dry":
        q = q * (1.0 - x)
    return q, x, ok, used


def to_standard_dry(h: Hours, st: Stack, pt: PollutantPoint, c: np.ndarray, x: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """A stack point's concentration at standard dry state [as given: kg/m3], the validity of
    the tags the conversion needs, those tags, and the basis in words. Actual to standard:
    × (273.15 + t)/273.15 × 101.325/p; wet to dry: / (1 − X_sw)."""
    basis = pt.concentration_basis or st.concentration_basis
    ok = np.ones(len(h.grid), bool)
    used: list[str] = []
    if pt.concentration_state == "actual":
        t_k, p_kpa, oktp, tp = _stack_tp(h, st)
        c = c * t_k / T0_K * P0_KPA / p_kpa
        ok = ok & oktp
        used += tp
    if basis == "wet":
        c = c / (1.0 - x)
    return c, ok, used, f"{basis}, {pt.concentration_state}"


def substitute(h: Hours, cfg: Config, load_h: np.ndarray, flow_h: np.ndarray,
                ok_h: np.ndarray, q: np.ndarray, okq: np.ndarray
                ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Hourly loads [kg] with the invalid hours filled by the configured rule (0 where nothing
    can fill them), and the runs filled. Concentration and flow are filled apart: the hour's
    flow is measured where the flow's own tags are valid (analyzer.emission_rules)."""
    rule = cfg.pollutants.substitution
    out = np.where(ok_h, load_h, 0.0)
    if rule.rule == "none" or ok_h.all() or not ok_h.any():
        return out, []
    span = np.where(h.span_h > 0, h.span_h, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        conc = np.where(ok_h & (flow_h > 0), load_h / np.where(flow_h > 0, flow_h, 1.0), 0.0)
    qh = h.hourly(q, okq)                                  # m3 in each hour, where measured
    q_ok = h.hour_valid(okq) & np.isfinite(qh)
    c_fill, runs = fill_hours(conc, ok_h, h.span_h, h.lo, h.hi, rule,
                              np.where(ok_h, flow_h, 0.0))
    f_fill, _ = fill_hours(np.where(q_ok, qh / span, np.nan), q_ok, h.span_h, h.lo, h.hi, rule)
    flow_sub = np.where(q_ok, qh, f_fill * h.span_h)       # m3 of each hour
    load_sub = np.where(np.isfinite(c_fill * flow_sub), c_fill * flow_sub, 0.0)
    out = np.where(ok_h, out, load_sub)
    for r in runs:
        sel = (h.lo >= r["start_ns"]) & (h.hi <= r["end_ns"])
        r["concentration_kg_m3"] = r.pop("value")
        r["flow_measured_h"] = float(h.span_h[sel & q_ok].sum())
        r["kg"] = float(out[sel].sum())
    return out, runs
