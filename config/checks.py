"""What a change to a campaign's record must satisfy by its configuration alone: a hand reading
of a declared tag, a finite value within the tag's declared ``valid_range`` (else within a
physical bound: a totalizer is not negative nor above its rollover, no magnitude above
:data:`PHYSICAL_BOUND`), a cycle mark only for a campaign that counts its cycles from marks.

One place for the edge box's web (the change made there), the central web (the change asked for
there, before it travels) and the collector (the change applied when it arrives), so that the
three never judge one reading differently. Each check returns the problem as a sentence, or None.
"""
from __future__ import annotations

import math
from typing import Any

from cpaudit.config.models import Config

# the largest magnitude a hand-entered reading may have where its tag declares no range: above
# any meter's full scale in the units used here (kg, m3, kWh, MPa, degC ...)
PHYSICAL_BOUND = 1e12


def declared_range(cfg: Config, tag: str) -> tuple[float, float] | None:
    """The ``valid_range`` the configuration declares for ``tag``, if any."""
    for d in cfg.devices:
        for r in [*getattr(d, "registers", []), *getattr(d, "tags", [])]:
            if getattr(r, "tag", None) == tag:
                return getattr(r, "valid_range", None)
    return None


def tag_problem(cfg: Config, tag: object) -> str | None:
    if not isinstance(tag, str):
        return "tag: expected the name of a tag (a string)"
    if tag not in cfg.tag_index():
        return f"tag: unknown tag {tag[:80]!r}"
    return None


def value_problem(cfg: Config, tag: str, value: float) -> str | None:
    """Why ``value`` cannot be a hand reading of ``tag`` (a declared tag), or None."""
    if not math.isfinite(value):
        return "value: expected a finite number"
    info = cfg.tag_index()[tag]
    declared = declared_range(cfg, tag)
    if declared is not None:
        lo, hi = declared
        if not lo <= value <= hi:
            return (f"value: {value:g} {info.unit} is outside the range declared for {tag} "
                    f"({lo:g} .. {hi:g} {info.unit})")
        return None
    if abs(value) > PHYSICAL_BOUND:
        return f"value: {value:g} {info.unit} is beyond any meter (|value| <= {PHYSICAL_BOUND:g})"
    if info.kind.value == "total" and value < 0:
        return f"value: a totalizer ({tag}) does not read negative"
    if info.rollover is not None and value > info.rollover:
        return f"value: {value:g} is above the rollover of {tag} ({info.rollover:g} {info.unit})"
    return None


def cycle_mark_problem(cfg: Config) -> str | None:
    spec = cfg.requirements.cycles
    if spec is None or spec.source != "marked":
        how = "no production cycles" if spec is None else f"cycles from its {spec.source}"
        return (f"this campaign has {how}; boundaries are marked by hand only with "
                "requirements.cycles.source: marked")
    return None


def change_problem(cfg: Config, kind: str, body: dict[str, Any]) -> str | None:
    """What the configuration says against a change of ``kind`` whose body is whole
    (``store.changes.normalized``), or None: the checks above, as the edge box applies a
    change from the office."""
    if kind == "cycle_mark":
        return cycle_mark_problem(cfg)
    if kind in ("manual", "retract"):
        why = tag_problem(cfg, body["tag"])
        if why or kind == "retract":
            return why
        return value_problem(cfg, body["tag"], body["value"])
    return None
