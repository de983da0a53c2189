"""What the audit focus is charged with: shared utilities and exports (DB11/T 1156 7.3.5-7.3.6).

A campaign's flowsheet often holds utilities that serve the audit focus *and* other workshops (a
boiler house, a wastewater station). The focus is charged with what it uses, not with what it
passes on (GB/T 2589-2020: comprehensive energy consumption is the energy consumed less the energy
output to others). Each shared utility declares how it is charged:

- ``deduct_exports``: the utility is charged whole, less what leaves it for others through the
  named ``exports`` streams — GB/T 2589's principle for energy delivered to others — water at its
  mass, energy at the energy spent making it (``export_basis: fuel_equivalent``: the export's
  share of the utility's effective output, ``energy.effective``, times the utility's supply, so
  that its losses are shared) or at its heat content alone (``heat_content``: the focus bears all
  of the utility's losses). How GB/T 2589 values a secondary energy supplied to others was not
  retrieved [unverified]: both are conventions, printed with the figure.
- ``measured_share``: the utility's consumption times the measured share of the focus's streams
  in all of the utility's streams of the same kind (``focus_streams`` over ``basis_streams``:
  steam to the kettle over all steam, wastewater from the focus over all wastewater treated). A
  cost-accounting convention, not the standard's text: its source is printed beside the figure.
- ``fixed``: a declared share with its source (a meter that is missing, a design split).

The water layer's water content of material streams is declared here too (``water``): the
complement of a dry-matter component (water = 1 − dry matter), or a fraction per stream.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Utility(_Strict):
    id: str = Field(min_length=1)
    name: str = ""
    name_zh: str = ""
    nodes: list[str] = Field(min_length=1)     # the flowsheet nodes that make up the utility
    rule: Literal["deduct_exports", "measured_share", "fixed"]
    exports: list[str] = []                    # deduct_exports: streams leaving for others
    # what an export's energy is deducted at: the energy the utility spent making it (its share
    # of the utility's effective output times the utility's supply: its losses shared), or its
    # heat content alone (the focus then bears all of the utility's losses)
    export_basis: Literal["fuel_equivalent", "heat_content"] = "fuel_equivalent"
    focus_streams: list[str] = []              # measured_share: the focus's part ...
    basis_streams: list[str] = []              # ... of all of these
    share: float | None = Field(default=None, ge=0, le=1)   # fixed
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _rule_fields(self) -> "Utility":
        if self.rule == "deduct_exports" and not self.exports:
            raise ValueError("rule deduct_exports needs exports (the streams leaving for others)")
        if self.rule == "measured_share" and (not self.focus_streams or not self.basis_streams):
            raise ValueError("rule measured_share needs focus_streams and basis_streams")
        if self.rule == "fixed" and self.share is None:
            raise ValueError("rule fixed needs share (0..1)")
        return self


class WaterContent(_Strict):
    """Water carried by material streams (GB/T 12452: water entering with raw materials and
    leaving in products, by-products and wastes). ``from_component``: a component whose mass
    fraction is dry matter, water = 1 − fraction; ``fractions``: stream id -> water fraction,
    which override it. ``source``: where the figures come from."""
    from_component: str | None = None
    fractions: dict[str, float] = {}
    source: str = ""

    @model_validator(mode="after")
    def _range(self) -> "WaterContent":
        bad = [k for k, x in self.fractions.items() if not 0 <= x <= 1]
        if bad:
            raise ValueError(f"water fractions must be within 0..1: {', '.join(bad)}")
        if (self.from_component or self.fractions) and not self.source:
            raise ValueError("water content needs its source")
        return self


class Allocation(_Strict):
    utilities: list[Utility] = []


def check_allocation(cfg: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-field checks of ``allocation`` and ``water`` (names exist, nodes not shared by two
    utilities, exports leave the utility for the boundary)."""
    p: list[tuple[tuple[Any, ...], str]] = []
    nodes = {n.id for n in cfg.flowsheet.nodes}
    streams = {s.id: s for s in cfg.flowsheet.streams}
    owner: dict[str, str] = {}
    for i, u in enumerate(cfg.allocation.utilities):
        base = ("allocation", "utilities", i)
        for j, n in enumerate(u.nodes):
            if n not in nodes:
                p.append((base + ("nodes", j), f"unknown node {n!r}"))
            elif n in owner:
                p.append((base + ("nodes", j), f"node {n!r} is already in utility {owner[n]!r}"))
            owner.setdefault(n, u.id)
        for key in ("exports", "focus_streams", "basis_streams"):
            for j, sid in enumerate(getattr(u, key)):
                s = streams.get(sid)
                if s is None:
                    p.append((base + (key, j), f"unknown stream {sid!r}"))
                elif key == "exports" and (s.from_ not in u.nodes or s.to != "ENV"):
                    p.append((base + (key, j), f"export {sid!r} must leave one of the utility's "
                              f"nodes ({', '.join(u.nodes)}) for the boundary"))
    w = cfg.water
    comps = {c.id for c in cfg.components}
    if w.from_component is not None and w.from_component not in comps:
        p.append((("water", "from_component"), f"unknown component {w.from_component!r}"))
    for sid in w.fractions:
        if sid not in streams:
            p.append((("water", "fractions", sid), f"unknown stream {sid!r}"))
    return p
