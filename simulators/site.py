"""The brewery site model: brewhouse (batch), boiler house, wastewater station, electricity.

Every stream's rate is a linear combination of a few *basis* signals, so balances hold by
construction and totals are closed-form (live and generated campaigns agree to the last digit):

- ``LOAD``: the continuous production load ``L(t)`` [1 = nominal] (daily swing + 90-min ripple,
  as in :mod:`simulators.plant`); a coefficient is a rate at load 1 [unit/h].
- ``Phase(a, b)``: a step of the brew cycle. Brew *k* starts at ``t0 + k·CYCLE_S``; the stream flows
  at a constant rate from fraction ``a`` to ``b`` of the cycle; a coefficient is an amount per brew
  at size 1 [unit/brew]. A brew's size is the load at its start (0 in a shutdown, so no brew).

A node's outputs are built from its inputs (fractions, yields), so a node balances at every instant
(continuous) or over every complete brew (batch). Faults change the picture on purpose: a leak at a
node scales every stream leaving it, and everything downstream, by ``1 − fraction`` during its
window (``Multiplier``); a load drop multiplies ``L``; an aborted brew stops after a cycle fraction.

Figures (nominal, demo scale) — a 3-hour brew of 37.5 t of mash (8 brews a day):
water 30 t, malt 6 t, rice 1.5 t; spent grains 9 t (wet, ~80 % moisture, about 1.2 kg per kg of
grist); sweet wort 28.5 t; hops 60 kg; evaporation 7 % of the wort in the boil; hot trub 1.2 % of
the wort plus the spent hops; jacket steam 3.6 t per brew returned as condensate; CIP 4 t.
Boiler: 2.8 t/h of steam to other users besides the brewhouse, 5 % blowdown of feed water,
efficiency 92 %, steam enthalpy 2 778 kJ/kg (saturated, 1.0 MPa abs) over feed water at 104 °C
(436 kJ/kg), natural gas lower heating value 35 544 kJ/Nm3 (8 500 kcal/Nm3), 12.4 Nm3 of wet flue
gas per Nm3 of gas at 3.5 % O2 (dry), 17 % moisture. Wastewater: 30 m3/h from the rest of the
brewery (COD 2 000 mg/L, NH3-N 30 mg/L), CIP water at COD 4 000 mg/L; anaerobic (UASB) removes
85 % of COD, the aerobic stage 90 % of what is left and 92 % of NH3-N; sludge is 1 % of the flow.
These are round engineering figures for a demo, not measurements of a real plant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from cpaudit.simulators.plant import DAY_S, RIPPLE_S

CYCLE_S = 10800.0


@dataclass(frozen=True)
class Phase:
    a: float    # start, fraction of the cycle
    b: float    # end


LOAD = "L"
Basis = Union[str, Phase]
Term = tuple[Basis, frozenset[str]]   # (basis, the nodes the amount has passed through)


@dataclass
class Flow:
    """Σ coefficient × basis. Units: per hour for LOAD, per brew for a Phase. Each term remembers
    the nodes it has passed through, so a leak at a node reaches exactly what came through it."""
    terms: dict[Term, float] = field(default_factory=dict)

    def __add__(self, other: "Flow") -> "Flow":
        out = dict(self.terms)
        for k, v in other.terms.items():
            out[k] = out.get(k, 0.0) + v
        return Flow(out)

    def __sub__(self, other: "Flow") -> "Flow":
        return self + other * -1.0

    def __mul__(self, x: float) -> "Flow":
        return Flow({k: v * x for k, v in self.terms.items()})

    __rmul__ = __mul__

    def through(self, node: str) -> "Flow":
        return Flow({(b, p | {node}): v for (b, p), v in self.terms.items()})

    def shifted(self, a: float, b: float) -> "Flow":
        """The same amounts per brew, flowing in another step of the cycle."""
        out: dict[Term, float] = {}
        for (_, p), v in self.terms.items():
            out[(Phase(a, b), p)] = out.get((Phase(a, b), p), 0.0) + v
        return Flow(out)

    def per_brew(self) -> float:
        return sum(v for (b, _), v in self.terms.items() if isinstance(b, Phase))


def cont(rate: float) -> Flow:
    return Flow({(LOAD, frozenset()): rate})


def batch(amount: float, a: float, b: float) -> Flow:
    return Flow({(Phase(a, b), frozenset()): amount})


@dataclass(frozen=True)
class Window:
    """A fault's time span [s since epoch]."""
    start: float
    end: float


@dataclass(frozen=True)
class Multiplier:
    """During ``window`` the stream's rate is multiplied by ``factor``."""
    window: Window
    factor: float


# The brew cycle's steps, as fractions of the cycle: (start, state code, name).
BREW_STEPS = ((0.0, 1, "mashing"), (0.30, 2, "lautering"), (0.55, 3, "boiling"),
              (0.85, 4, "whirlpool"), (0.98, 0, "idle"))

# native unit of each stream: kg (material), Nm3 (gas), kWh (electricity)
NATIVE_UNIT = {"gas": "Nm3", "flue_gas": "Nm3", "el_brewhouse": "kWh", "el_boiler": "kWh",
               "el_wwtp": "kWh", "el_cooling": "kWh"}

# Process conditions and concentrations (signals), fixed or load-following.
H_STEAM_KJ_KG = 2778.0
H_FEED_KJ_KG = 436.0
GAS_LHV_KJ_NM3 = 35544.0
BOILER_EFF = 0.92
FLUE_NM3_PER_NM3_GAS = 12.4
FLUE_MOISTURE = 0.17
FLUE_TEMP_C = 130.0
FLUE_P_KPA = 101.0
STACK_AREA_M2 = math.pi * 0.25 ** 2
O2_DRY_PCT = 3.5
CEMS_MG_M3 = {"so2": 4.0, "nox": 25.0, "dust": 1.5}   # dry, at the measured O2
COD_MG_L = {"brewery_ww": 2000.0, "cip_waste": 4000.0}
NH3N_MG_L = {"brewery_ww": 30.0, "cip_waste": 10.0}
COD_REMOVAL = {"anaerobic": 0.85, "aerobic": 0.90}
NH3N_REMOVAL = {"anaerobic": 0.0, "aerobic": 0.92}


def build_flows() -> dict[str, Flow]:
    """Every stream of the site as a Flow."""
    f: dict[str, Flow] = {}
    # brewhouse, per brew
    f["water_in"] = batch(30000, 0.00, 0.15)
    f["malt_in"] = batch(6000, 0.02, 0.12)
    f["adjunct_in"] = batch(1500, 0.02, 0.08)
    mash_in = f["water_in"] + f["malt_in"] + f["adjunct_in"]
    f["spent_grains"] = (mash_in * (9000 / 37500)).shifted(0.55, 0.65).through("mash")
    f["sweet_wort"] = (mash_in * (28500 / 37500)).shifted(0.30, 0.55).through("mash")
    f["hops_in"] = batch(60, 0.56, 0.57)
    sweet = f["sweet_wort"]
    f["vapour"] = (sweet * 0.07).shifted(0.55, 0.85).through("kettle")
    f["trub"] = (sweet * 0.012 + f["hops_in"]).shifted(0.95, 0.98).through("kettle")
    f["hot_wort"] = (sweet * (1 - 0.07 - 0.012)).shifted(0.87, 0.97).through("kettle")
    f["steam_kettle"] = batch(3600, 0.50, 0.85)
    # the jacket: steam in, condensate out, through the kettle node
    f["condensate"] = f["steam_kettle"].through("kettle")
    f["cip_water"] = batch(4000, 0.90, 0.99)
    f["cip_waste"] = f["cip_water"].shifted(0.91, 1.00).through("cip")
    # steam header and boiler house (the boiler follows the steam demand)
    f["steam_other"] = cont(2800)
    f["steam_main"] = (f["steam_kettle"] + f["steam_other"]).through("header")
    steam = f["steam_main"]
    feed = steam * (1 / 0.95)
    f["blowdown"] = (feed - steam).through("boiler")
    f["makeup_water"] = feed - f["condensate"]
    f["gas"] = steam * ((H_STEAM_KJ_KG - H_FEED_KJ_KG) / (BOILER_EFF * GAS_LHV_KJ_NM3))
    f["flue_gas"] = (f["gas"] * FLUE_NM3_PER_NM3_GAS).through("boiler")
    # wastewater station
    f["brewery_ww"] = cont(30000)
    f["ww_influent"] = (f["cip_waste"] + f["brewery_ww"]).through("equalization")
    f["ww_anaerobic"] = f["ww_influent"].through("anaerobic")
    f["sludge"] = (f["ww_anaerobic"] * 0.01).through("aerobic")
    f["ww_effluent"] = (f["ww_anaerobic"] * 0.99).through("aerobic")
    # electricity [kW]
    f["el_brewhouse"] = cont(40) + batch(80 * 0.65 * CYCLE_S / 3600, 0.00, 0.65)
    f["el_boiler"] = steam * (30 / 4000)
    f["el_wwtp"] = cont(60) + f["ww_influent"] * (20 / 30000)
    f["el_cooling"] = cont(150)
    # pollutant loads [kg]: concentration [mg/L] x water mass [kg] / 1e6 (1 kg of water = 1 L)
    cip_cod = f["cip_waste"] * (COD_MG_L["cip_waste"] / 1e6)
    ww_cod = f["brewery_ww"] * (COD_MG_L["brewery_ww"] / 1e6)
    f["cod_influent"] = (cip_cod + ww_cod).through("equalization")
    cip_n = f["cip_waste"] * (NH3N_MG_L["cip_waste"] / 1e6)
    ww_n = f["brewery_ww"] * (NH3N_MG_L["brewery_ww"] / 1e6)
    f["nh3n_influent"] = (cip_n + ww_n).through("equalization")
    f["cod_anaerobic"] = (f["cod_influent"] * (1 - COD_REMOVAL["anaerobic"])).through("anaerobic")
    f["nh3n_anaerobic"] = (f["nh3n_influent"] * (1 - NH3N_REMOVAL["anaerobic"])).through("anaerobic")
    f["cod_effluent"] = (f["cod_anaerobic"] * (1 - COD_REMOVAL["aerobic"]) * 0.99).through("aerobic")
    f["nh3n_effluent"] = (f["nh3n_anaerobic"] * (1 - NH3N_REMOVAL["aerobic"]) * 0.99).through("aerobic")
    # stack: mass = concentration [mg/Nm3 dry] x dry standard flue gas [Nm3] / 1e6
    dry = f["flue_gas"] * (1 - FLUE_MOISTURE)
    for p, c in CEMS_MG_M3.items():
        f[f"{p}_stack"] = dry * (c / 1e6)
    return f


NODES = ("mash", "kettle", "cip", "header", "boiler", "equalization", "anaerobic", "aerobic")


class BrewerySite:
    """The site's true flows and signals. ``t0``: campaign origin [s since epoch]."""

    def __init__(self, t0: float, load_amplitude: float = 0.08,
                 leaks: dict[str, float] | None = None) -> None:
        self.t0 = t0
        self.load_amplitude = load_amplitude
        self.flows = build_flows()
        self.load_factors: list[Multiplier] = []        # load drops, shutdowns
        self.leaks: list[tuple[str, Multiplier]] = []
        self.aborted: dict[int, float] = {}             # brew index -> cycle fraction it stops at
        self._sizes: np.ndarray | None = None
        for node, fraction in (leaks or {}).items():
            self.add_leak(node, fraction, Window(-math.inf, math.inf))

    # -- faults --------------------------------------------------------------------------------
    def add_leak(self, node: str, fraction: float, window: Window) -> None:
        if node not in NODES:
            raise ValueError(f"no node {node!r} in the brewery site; nodes: {', '.join(NODES)}")
        self.leaks.append((node, Multiplier(window, 1 - fraction)))

    def add_load_drop(self, factor: float, window: Window) -> None:
        self.load_factors.append(Multiplier(window, factor))
        self._sizes = None

    def abort_brew_at(self, t: float) -> int:
        """Abort the brew running at ``t``: nothing of it flows after that moment."""
        k = int((t - self.t0) // CYCLE_S)
        self.aborted[k] = ((t - self.t0) - k * CYCLE_S) / CYCLE_S
        self._sizes = None
        return k

    # -- load ----------------------------------------------------------------------------------
    def _base_load(self, t: np.ndarray) -> np.ndarray:
        x = t - self.t0
        a = self.load_amplitude
        return 1.0 + a * np.sin(2 * math.pi * x / DAY_S) + 0.3 * a * np.sin(2 * math.pi * x / RIPPLE_S)

    def _base_load_integral(self, t: np.ndarray) -> np.ndarray:
        x = t - self.t0
        a = self.load_amplitude
        w1, w2 = 2 * math.pi / DAY_S, 2 * math.pi / RIPPLE_S
        return x + a * (1 - np.cos(w1 * x)) / w1 + 0.3 * a * (1 - np.cos(w2 * x)) / w2

    def load(self, t: float | np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        out = self._base_load(t)
        for m in self.load_factors:
            out = np.where((t >= m.window.start) & (t < m.window.end), out * m.factor, out)
        return out

    def load_integral(self, t: float | np.ndarray) -> np.ndarray:
        """∫ L dt from t0 to t [s], load drops included."""
        t = np.asarray(t, dtype=np.float64)
        out = self._base_load_integral(t)
        for m in self.load_factors:
            s, e = m.window.start, m.window.end
            lo = np.clip(t, s, e)
            out = out + (m.factor - 1) * (self._base_load_integral(lo)
                                          - self._base_load_integral(np.asarray(s)))
        return out

    # -- brews ---------------------------------------------------------------------------------
    def brew_index(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(t, dtype=np.float64) - self.t0
        k = np.floor(x / CYCLE_S).astype(np.int64)
        return k, x / CYCLE_S - k

    def _brew_sizes(self, kmax: int) -> np.ndarray:
        if self._sizes is None or len(self._sizes) <= kmax + 1:
            n = max(kmax + 2, 64)
            starts = self.t0 + np.arange(n) * CYCLE_S
            self._sizes = self.load(starts)
        return self._sizes

    def brew_size(self, k: int) -> float:
        return float(self._brew_sizes(max(k, 0))[max(k, 0)]) if k >= 0 else 0.0

    def _phase_cum(self, ph: Phase, t: np.ndarray) -> np.ndarray:
        """Amount of a Phase basis (size-1 coefficient) done from t0 to t [brews]."""
        k, frac = self.brew_index(t)
        kc = np.maximum(k, 0)
        sizes = self._brew_sizes(int(kc.max()) if kc.size else 0)
        done = np.clip((frac - ph.a) / (ph.b - ph.a), 0.0, 1.0)
        if self.aborted:
            sz = sizes.copy()
            stop = np.ones_like(sz)
            for kb, at in self.aborted.items():
                if kb < len(sz):
                    stop[kb] = np.clip((at - ph.a) / (ph.b - ph.a), 0.0, 1.0)
            eff = sz * stop
            cum = np.concatenate([[0.0], np.cumsum(eff)])
            done = np.minimum(done, stop[kc])
        else:
            cum = np.concatenate([[0.0], np.cumsum(sizes)])
        out = cum[kc] + sizes[kc] * done
        return np.where(k < 0, 0.0, out)

    def _phase_rate(self, ph: Phase, t: np.ndarray) -> np.ndarray:
        """Rate of a Phase basis [brews/h]."""
        k, frac = self.brew_index(t)
        kc = np.maximum(k, 0)
        sizes = self._brew_sizes(int(kc.max()) if kc.size else 0)
        on = (frac >= ph.a) & (frac < ph.b) & (k >= 0)
        if self.aborted:
            for kb, at in self.aborted.items():
                on &= ~((k == kb) & (frac >= at))
        return np.where(on, sizes[kc] * 3600.0 / ((ph.b - ph.a) * CYCLE_S), 0.0)

    def state(self, t: float | np.ndarray) -> np.ndarray:
        """Brewhouse step code: 1 mashing, 2 lautering, 3 boiling, 4 whirlpool, 0 idle."""
        k, frac = self.brew_index(t)
        code = np.zeros(np.shape(frac), dtype=np.float64)
        for start, c, _ in BREW_STEPS:
            code = np.where(frac >= start, c, code)
        sizes = self._brew_sizes(int(np.max(np.maximum(k, 0))) if np.size(k) else 0)
        idle = (k < 0) | (sizes[np.maximum(k, 0)] <= 0.05)
        for kb, at in self.aborted.items():
            idle |= (k == kb) & (frac >= at)
        return np.where(idle, 0.0, code)

    def brew_count(self, t: float | np.ndarray) -> np.ndarray:
        """Brews started since t0 (the brewhouse controller's batch counter)."""
        k, _ = self.brew_index(t)
        return np.maximum(k + 1, 0).astype(np.float64)

    # -- streams -------------------------------------------------------------------------------
    def streams(self) -> tuple[str, ...]:
        return tuple(self.flows)

    def _basis_cum(self, b: Basis, t: np.ndarray) -> np.ndarray:
        if b == LOAD:
            return self.load_integral(t) / 3600.0
        assert isinstance(b, Phase)
        return self._phase_cum(b, t)

    def _basis_rate(self, b: Basis, t: np.ndarray) -> np.ndarray:
        if b == LOAD:
            return self.load(t)
        assert isinstance(b, Phase)
        return self._phase_rate(b, t)

    def rate(self, stream: str, t: float | np.ndarray) -> np.ndarray:
        """Rate [native unit per hour] at ``t``."""
        t = np.asarray(t, dtype=np.float64)
        out = np.zeros(t.shape)
        for (b, path), c in self.flows[stream].terms.items():
            r = c * self._basis_rate(b, t)
            for node, m in self.leaks:
                if node in path:
                    r = np.where((t >= m.window.start) & (t < m.window.end), r * m.factor, r)
            out = out + r
        return out

    def total(self, stream: str, t: float | np.ndarray) -> np.ndarray:
        """Amount since t0 [native unit]. Overlapping leaks on one path add their effects."""
        t = np.asarray(t, dtype=np.float64)
        out = np.zeros(t.shape)
        for (b, path), c in self.flows[stream].terms.items():
            cum = self._basis_cum(b, t)
            for node, m in self.leaks:
                if node in path:
                    s = max(m.window.start, self.t0)
                    e = max(m.window.end, s)
                    lo = self._basis_cum(b, np.asarray(s)) if math.isfinite(s) else 0.0
                    cum = cum + (m.factor - 1) * (self._basis_cum(b, np.clip(t, s, e)) - lo)
            out = out + c * cum
        return out

    # the interface shared with simulators.plant.Brewhouse
    def rate_kg_h(self, stream: str, t: float | np.ndarray) -> np.ndarray:
        return self.rate(stream, t)

    def total_kg(self, stream: str, t: float | np.ndarray) -> np.ndarray:
        return self.total(stream, t)

    # -- signals -------------------------------------------------------------------------------
    def signals(self, stream: str, t: float | np.ndarray) -> dict[str, np.ndarray]:
        """Conditions and concentrations carried by ``stream`` at ``t``."""
        t = np.asarray(t, dtype=np.float64)
        if stream == "flue_gas":
            nm3_h = self.rate("flue_gas", t)      # wet, standard conditions
            actual = nm3_h * (273.15 + FLUE_TEMP_C) / 273.15 * 101.325 / FLUE_P_KPA
            one = np.ones(t.shape)
            out = {"velocity": actual / 3600.0 / STACK_AREA_M2, "temperature": FLUE_TEMP_C * one,
                   "pressure": FLUE_P_KPA * one, "moisture": FLUE_MOISTURE * 100 * one,
                   "o2": O2_DRY_PCT * one, "flow_actual": actual}
            running = nm3_h > 1.0
            for p, c in CEMS_MG_M3.items():
                out[p] = np.where(running, c, 0.0)
            return out
        if stream in ("ww_influent", "ww_anaerobic", "ww_effluent"):
            part = {"ww_influent": "influent", "ww_anaerobic": "anaerobic",
                    "ww_effluent": "effluent"}[stream]
            q = self.rate(stream, t)
            safe = np.where(q > 0, q, 1.0)
            return {"cod": np.where(q > 0, self.rate(f"cod_{part}", t) / safe * 1e6, 0.0),
                    "nh3n": np.where(q > 0, self.rate(f"nh3n_{part}", t) / safe * 1e6, 0.0)}
        if stream == "steam_kettle" or stream == "steam_main" or stream == "steam_other":
            one = np.ones(t.shape)
            return {"pressure": 0.9 * one, "temperature": 180.0 * one, "density": 5.15 * one}
        if stream == "brewhouse":
            return {"state": self.state(t), "brews": self.brew_count(t)}
        if stream.startswith("el_"):
            kw = self.rate(stream, t)
            return {"power_kw": kw}
        return {}

    def mean_signals(self, stream: str, t_from: float | np.ndarray, t_to: float | np.ndarray
                     ) -> dict[str, np.ndarray]:
        """Flow-weighted mean concentrations over (t_from, t_to] [mg/L]: what a flow-proportional
        composite sample of the period holds (load over the period / water over the period);
        0 when nothing flowed. For the wastewater streams only."""
        if stream not in ("ww_influent", "ww_anaerobic", "ww_effluent"):
            raise ValueError(f"no composite sample of {stream!r}: wastewater streams only")
        part = stream.split("_", 1)[1]
        a = np.asarray(t_from, dtype=np.float64)
        b = np.asarray(t_to, dtype=np.float64)
        q = self.total(stream, b) - self.total(stream, a)
        safe = np.where(q > 0, q, 1.0)
        return {f: np.where(q > 0, (self.total(f"{f}_{part}", b) - self.total(f"{f}_{part}", a))
                            / safe * 1e6, 0.0) for f in ("cod", "nh3n")}
