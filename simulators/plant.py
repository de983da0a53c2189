"""The brewhouse model: true flows that balance at every unit operation by construction.

Brewhouse section of a brewery (DB11/T 1156 Appendix B takes a brewing workshop as its example):

- ``mash`` (mashing and lautering): brewing water and malt in; sweet wort to the kettle and wet spent
  grains out. Spent grains carry about 1.2 kg per kg of malt (wet grains at ~80 % moisture).
- ``kettle`` (wort boiling and whirlpool): sweet wort in, heated indirectly by steam through the
  jacket, so the steam leaves as condensate; about 7 % of the wort evaporates (vapour condenser);
  hot wort goes to the fermentation cellar.

All flows scale with one production load ``L(t)`` (1 = nominal), so every node balances at every
instant. ``L(t)`` has a daily swing and a 90-minute ripple; its integral is closed-form, so live
and generated campaigns give identical totals for the same times. A leak at a node takes
``fraction`` of that node's input out of the plant unmeasured; the streams downstream follow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DAY_S = 86400.0
RIPPLE_S = 5400.0

# Nominal flows [kg/h] and densities [kg/m3] of the brewhouse.
NOMINAL_KG_H = {"water_in": 10000.0, "malt_in": 2000.0, "steam_in": 1200.0}
SPENT_PER_MASH = 0.20          # wet spent grains / (water + malt)
EVAPORATION = 700.0 / 9600.0   # evaporated share of the sweet wort during the boil
DENSITY = {"water_in": 1000.0, "sweet_wort": 1040.0, "hot_wort": 1045.0, "condensate": 958.0,
           "vapour": 1000.0}
NODE_OUTPUTS = {"mash": ("spent_grains", "sweet_wort"),
                "kettle": ("hot_wort", "vapour", "condensate")}


@dataclass
class Brewhouse:
    t0: float                       # campaign origin [s since epoch]
    load_amplitude: float = 0.08
    leaks: dict[str, float] = field(default_factory=dict)   # node -> lost fraction of input

    # -- load -----------------------------------------------------------------------------------
    def load(self, t: float | np.ndarray) -> float | np.ndarray:
        """Production load [1 = nominal] at time ``t`` [s since epoch]."""
        x = np.asarray(t, dtype=np.float64) - self.t0
        a = self.load_amplitude
        out = 1.0 + a * np.sin(2 * math.pi * x / DAY_S) + 0.3 * a * np.sin(2 * math.pi * x / RIPPLE_S)
        return float(out) if np.ndim(out) == 0 else out

    def load_integral(self, t: float | np.ndarray) -> float | np.ndarray:
        """∫ L dt from ``t0`` to ``t`` [s]."""
        x = np.asarray(t, dtype=np.float64) - self.t0
        a = self.load_amplitude
        w1, w2 = 2 * math.pi / DAY_S, 2 * math.pi / RIPPLE_S
        out = x + a * (1 - np.cos(w1 * x)) / w1 + 0.3 * a * (1 - np.cos(w2 * x)) / w2
        return float(out) if np.ndim(out) == 0 else out

    # -- stream factors ---------------------------------------------------------------------------
    def factors(self) -> dict[str, float]:
        """Each stream's flow at load 1 [kg/h], leaks included."""
        water, malt, steam = (NOMINAL_KG_H[k] for k in ("water_in", "malt_in", "steam_in"))
        mash_keep = 1.0 - self.leaks.get("mash", 0.0)
        mash_in = water + malt
        spent = SPENT_PER_MASH * mash_in * mash_keep
        sweet = (1 - SPENT_PER_MASH) * mash_in * mash_keep
        kettle_keep = 1.0 - self.leaks.get("kettle", 0.0)
        vapour = EVAPORATION * sweet * kettle_keep
        hot = (sweet - EVAPORATION * sweet) * kettle_keep
        condensate = steam * kettle_keep
        return {"water_in": water, "malt_in": malt, "steam_in": steam, "spent_grains": spent,
                "sweet_wort": sweet, "hot_wort": hot, "vapour": vapour, "condensate": condensate}

    def rate_kg_h(self, stream: str, t: float | np.ndarray) -> float | np.ndarray:
        return self.factors()[stream] * self.load(t)

    def total_kg(self, stream: str, t: float | np.ndarray) -> float | np.ndarray:
        """Amount through ``stream`` since ``t0`` [kg]."""
        return self.factors()[stream] * self.load_integral(t) / 3600.0

    @staticmethod
    def streams() -> tuple[str, ...]:
        return ("water_in", "malt_in", "steam_in", "spent_grains", "sweet_wort", "hot_wort",
                "vapour", "condensate")

    # the interface shared with simulators.site.BrewerySite (native unit: kg)
    def rate(self, stream: str, t: float | np.ndarray) -> np.ndarray:
        return np.asarray(self.rate_kg_h(stream, t), dtype=np.float64)

    def total(self, stream: str, t: float | np.ndarray) -> np.ndarray:
        return np.asarray(self.total_kg(stream, t), dtype=np.float64)

    def signals(self, stream: str, t: float | np.ndarray) -> dict[str, np.ndarray]:
        if stream == "steam_in":
            one = np.ones(np.shape(t))
            return {"pressure": 0.6 * one, "temperature": 165.0 * one, "density": 3.67 * one}
        return {}
