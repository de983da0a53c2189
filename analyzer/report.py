"""The pure parts of the campaign document (what ``cpaudit analyze --json``, the web API and the
exports share): how its balance window, cycles and pollutant scope are said. The document itself
is read from a store by :func:`analyzer.iotools.campaign_report`."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from cpaudit.config import Config


def _pollutant_scope(cfg: Config) -> str | None:
    """Whose loads the pollutant factors are when a point lies in a shared utility: the whole
    utility's (the share of each source in a load is not measured, so nothing is allocated)."""
    util = {n: u for u in cfg.allocation.utilities for n in u.nodes}
    streams = {s.id: s for s in cfg.flowsheet.streams}
    stacks = {st.id: st.node for st in cfg.pollutants.stacks}
    hit = set()
    for f in cfg.pollutants.factors:
        for pt in f.points:
            node = stacks.get(pt.stack) if pt.stack else (
                streams[pt.stream].to if pt.stream in streams else None)
            if node in util:
                hit.add(util[node].name or util[node].id)
    if not hit:
        return None
    return (f"the loads at {', '.join(sorted(hit))} are the whole utility's, other workshops' "
            "share included: a source's share of a measured load is not measured, so nothing is "
            "allocated (the energy and water per unit product are)")


def _iso(ns: int | None, tz: str) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).isoformat(timespec="seconds")


MANUAL_NOTE = "manual."         # store meta: manual.<tag>.<ts> = the note of a hand reading
MANUAL_RETRACTED = "retracted."  # store meta: retracted.<tag>.<ts> = {"at": ns, "note": why}


def _window_doc(cfg: Config, bw: dict[str, Any] | None, how: str, vdoc: dict[str, Any],
                tz: str) -> dict[str, Any]:
    """The balance window as the report names it: rule, span, cycles (hours) used and left out
    with why, and, before there is any, what it will take."""
    out: dict[str, Any] = dict(bw) if bw else {"rule": cfg.requirements.balance_window,
                                               "reason": vdoc["message"]}
    out["chosen"] = how
    out["start"], out["end"] = _iso(out.get("start"), tz), _iso(out.get("end"), tz)
    for key in ("used", "left_out", "included_not_counting"):
        out[key] = [{**r, "start_ns": r["start"], "end_ns": r["end"],
                     "start": _iso(r["start"], tz), "end": _iso(r["end"], tz)}
                    for r in out.get(key, [])]
    for c in vdoc.get("checks", []):
        if c["id"] == "duration" and c["details"].get("first_cycle"):
            out["first_cycle"] = c["details"]["first_cycle"]
    return out


def _say_window(v: dict[str, Any], w: dict[str, Any]) -> None:
    """Each balance names its window; one over fewer cycles (hours) than required says so; one
    not taken yet says what it will take."""
    v["window"] = {k: w.get(k) for k in ("rule", "chosen", "unit", "count", "required", "enough",
                                         "reason")}
    if v.get("start_ns") is None:
        if w.get("first_cycle"):
            v["message"] = f"{v.get('message', '')}; {w['first_cycle']}".lstrip("; ")
        return
    if w.get("enough") is False:
        n, k, u = w.get("count"), w.get("required"), w.get("unit")
        v["message"] = (f"{v.get('message', '')}; over {n:g} {u} that count, fewer than the "
                        f"{k:g} required (DB11/T 1156 7.3.3.3 e): not a valid balance yet"
                        ).lstrip("; ")


def _cycle_rows(bw: dict[str, Any] | None, how: str, start: int | None,
                end: int | None) -> list[dict[str, Any]]:
    """The cycles a per-cycle table shows: those of the accepted window, or (as given) every
    cycle inside [start, end]."""
    if bw is None or bw.get("unit") != "cycles":
        return []
    if how == "best valid window":
        return list(bw.get("used", []))
    rows = [r for r in bw.get("used", []) + bw.get("left_out", [])
            if (start is None or start <= r["start"]) and (end is None or r["end"] <= end)]
    return sorted(rows, key=lambda r: r["start"])


