"""Simulated meters: a plant stream seen through an instrument (profile, error, faults).

``SimMeter.state(t)`` gives what the meter shows at ``t`` [s since epoch] — a scalar for the live
servers, arrays for the generator — so both read the same numbers.

Error model (so that a campaign's totals err as the meters' classes say; the reconciliation
reads the same classes, analyzer/recon_layer.py):

- A meter of class ±a % carries a fixed calibration offset δ, drawn once from its seed
  (``device_seed``: the campaign's seed and the device's name), by the campaign's
  ``reconciliation.sigma_rule``: uniform over ±a (``rectangular``, σ_δ = a/√3) or normal with
  σ_δ = a/2 (``tolerance_2sigma``). Rate and totalizer both carry it: rate = true·(1 + δ + ε_t),
  total = true total·(1 + δ), so the rate integral and the totalizer agree.
- ε_t is a reading noise of σ = a/3 % on the rate per whole second (counter-based on (seed,
  second), so live and generated campaigns agree); the totalizer does not carry it. It averages
  out: over 72 h (259,200 s) its share of the rate's integral is about a/3/√259200 ≈ 0.0007·a %,
  nothing beside δ. The error of a 72 h total is δ, of
  σ_δ consistent with the class — which is what makes an intact plant's χ² come out near its
  degrees of freedom instead of far below (an offset within ±a/2, as before, gave σ = a/(2√3),
  a quarter of the variance the reconciliation expects).
- With ``simulation.density_error`` a volume meter sees the stream's true density, which
  differs from the declared ``density_kg_m3`` by a fixed fraction drawn per stream within
  ±``density_uncertainty_pct`` (the stream's, else the reconciliation default) by the same
  rule; converting its volume with the declared density errs by that fraction, as the
  reconciliation's σ allows. Off by default: the plant model's pollutant masses take 1 kg of
  water as 1 L, which a true density other than the declared one would contradict; the
  reconciliation's σ then holds a density share the data do not show, so the intact demo's
  expected χ² is 5.8 for 8 degrees of freedom instead of 8 (computed from its V_r).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cpaudit.config import Config
from cpaudit.config.models import Hj212Device, MqttDevice
from cpaudit.config.scenario import (BiasFault, DriftFault, LeakFault, LoadDropFault,
                             AbortCycleFault, Scenario, StuckFault, TotalizerFault)
from cpaudit.simulators.plant import DENSITY as BREWHOUSE_DENSITY
from cpaudit.simulators.plant import Brewhouse
from cpaudit.simulators.profiles import PROFILES, MeterError, MeterState, Profile, display
from cpaudit.simulators.site import BrewerySite, Window

DEFAULT_ACCURACY = {"tuf2000": 1.0, "ifc050": 0.5, "vfm60": 1.5, "vfm60_gas": 1.5,
                    "weigher": 0.5, "dtsu666": 1.0}
SITE_DENSITY = {"makeup_water": 1000.0, "blowdown": 1000.0, "cip_water": 1000.0,
                "cip_waste": 1000.0, "brewery_ww": 1000.0, "ww_influent": 1000.0,
                "ww_anaerobic": 1000.0, "ww_effluent": 1000.0, "sludge": 1010.0}


class Plant(Protocol):
    t0: float

    def rate(self, stream: str, t: Any) -> np.ndarray: ...

    def total(self, stream: str, t: Any) -> np.ndarray: ...

    def signals(self, stream: str, t: Any) -> dict[str, np.ndarray]: ...

    def streams(self) -> tuple[str, ...]: ...

    def load(self, t: Any) -> Any: ...


def build_plant(cfg: Config, t0: float, leak: tuple[str, float] | None = None,
                scenario: Scenario | None = None) -> Plant:
    leaks: dict[str, float] = {}
    if cfg.simulation.leak is not None:
        leaks[cfg.simulation.leak.node] = cfg.simulation.leak.fraction
    if leak is not None:
        leaks[leak[0]] = leak[1]
    if cfg.simulation.plant == "brewhouse":
        plant: Plant = Brewhouse(t0=t0, load_amplitude=cfg.simulation.load_amplitude, leaks=leaks)
        for f in scenario.faults if scenario else []:
            if isinstance(f, (LeakFault, LoadDropFault, AbortCycleFault)):
                raise ValueError(f"fault {f.kind}: the brewhouse model takes leaks from the "
                                 "config only; use plant: brewery for timed plant faults")
        return plant
    site = BrewerySite(t0=t0, load_amplitude=cfg.simulation.load_amplitude, leaks=leaks)
    for f in scenario.faults if scenario else []:
        s, e = f.window(t0)
        if isinstance(f, LeakFault):
            site.add_leak(f.node, f.fraction, Window(s, e))
        elif isinstance(f, LoadDropFault):
            site.add_load_drop(f.factor, Window(s, e))
        elif isinstance(f, AbortCycleFault):
            site.abort_brew_at(s)
    return site


def density(cfg: Config, stream: str) -> float | None:
    for s in cfg.flowsheet.streams:
        if s.id == stream and s.density_kg_m3:
            return s.density_kg_m3
    return BREWHOUSE_DENSITY.get(stream) or SITE_DENSITY.get(stream)


def true_density(cfg: Config, stream: str) -> float | None:
    """The density the plant's stream really has [kg/m3]: the declared one times (1 + δ_ρ),
    δ_ρ fixed per stream from the campaign's seed within ±density_uncertainty_pct by the σ rule
    (module docstring); the simulator's own figure when the flowsheet declares none."""
    rs = cfg.reconciliation
    for s in cfg.flowsheet.streams if cfg.simulation.density_error else []:
        if s.id == stream and s.density_kg_m3:
            u = (s.density_uncertainty_pct if s.density_uncertainty_pct is not None
                 else rs.density_uncertainty_pct)
            # a seed apart from the devices' (seed·1000 + …): no two draws share a stream
            seed = (cfg.simulation.seed << 32) | zlib.crc32(b"density:" + stream.encode())
            return s.density_kg_m3 * (1 + MeterError.draw(u, seed, rs.sigma_rule).bias)
    return density(cfg, stream)


@dataclass
class MeterFaults:
    bias: list[tuple[float, float, float]] = field(default_factory=list)    # (s, e, fraction)
    drift: list[tuple[float, float, float]] = field(default_factory=list)   # (s, e, frac/day)
    stuck: list[tuple[float, float]] = field(default_factory=list)
    rollover_at: float | None = None
    reset_at: float | None = None


@dataclass
class SimMeter:
    device: str
    profile: Profile
    stream: str
    plant: Plant
    err: MeterError
    initial_total: float
    density: float | None
    faults: MeterFaults = field(default_factory=MeterFaults)

    def _display(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True rate and total in the meter's units, before the instrument error."""
        if self.profile.measures == "signals":
            z = np.zeros(t.shape)
            return z, z
        return display(self.profile, self.plant.rate(self.stream, t),
                       self.plant.total(self.stream, t), self.density)

    def _state(self, t: np.ndarray) -> MeterState:
        rate_d, total_d = self._display(t)
        rate = self.err.rate(rate_d, t)
        total = self.err.total(total_d)
        f = self.faults
        for s, e, x in f.bias:
            on = (t >= s) & (t < e)
            rate = np.where(on, rate * (1 + x), rate)
            ts = np.clip(t, s, e)
            total = total + x * (self._display(ts)[1] - self._display(np.asarray([s]))[1])
        for s, e, x in f.drift:
            on = (t >= s) & (t < e)
            rate = np.where(on, rate * (1 + x * (t - s) / 86400.0), rate)
            ts = np.clip(t, s, e)
            total = total + x * (ts - s) / 2 / 86400.0 * (
                self._display(ts)[1] - self._display(np.asarray([s]))[1])
        shown = self.initial_total + total
        if f.reset_at is not None:
            at = self.err.total(self._display(np.asarray([f.reset_at]))[1])
            shown = np.where(t >= f.reset_at, total - at, shown)
        if f.rollover_at is not None and self.profile.total_max:
            at = self.err.total(self._display(np.asarray([f.rollover_at]))[1])
            shown = self.profile.total_max - 0.05 - at + total
        if self.profile.total_max:
            shown = np.mod(shown, self.profile.total_max)
        extra = {k: np.asarray(v, dtype=np.float64)
                 for k, v in self.plant.signals(self.stream, t).items()}
        return MeterState(rate, shown, extra)

    def state(self, t: float | np.ndarray) -> MeterState:
        arr = np.atleast_1d(np.asarray(t, dtype=np.float64))
        st = self._state(arr)
        for s, e in self.faults.stuck:      # frozen at the value shown when it stuck
            on = (arr >= s) & (arr < e)
            if on.any():
                frozen = self._state(np.asarray([s]))
                st.rate = np.where(on, frozen.rate[0], st.rate)
                st.total = np.where(on, frozen.total[0], st.total)
                for k in st.extra:
                    st.extra[k] = np.where(on, frozen.extra[k][0], st.extra[k])
        if np.ndim(t) == 0:
            return MeterState(float(st.rate[0]), float(st.total[0]),
                              {k: float(v[0]) for k, v in st.extra.items()})
        return st


def device_seed(cfg: Config, name: str) -> int:
    return cfg.simulation.seed * 1000 + zlib.crc32(name.encode()) % 1000


def build_meters(cfg: Config, plant: Plant, scenario: Scenario | None = None
                 ) -> dict[str, SimMeter]:
    """One SimMeter per simulated Modbus device and per MQTT device that publishes a stream."""
    meters: dict[str, SimMeter] = {}
    for d in cfg.devices:
        if isinstance(d, Hj212Device):
            continue                # simulators.hj212_logger reads the plant itself
        if isinstance(d, MqttDevice):
            if d.simulate is None:
                continue
            stream, prof_name = d.simulate.stream, "iot_json"
            profile = Profile("iot_json", [], "m3/h", "m3", "volume")
            acc = d.accuracy_pct or 1.0
        else:
            if d.simulate is None or d.profile is None:
                continue
            if d.profile == "pattern":
                continue
            if d.profile not in PROFILES:
                raise ValueError(f"device {d.name}: no simulator profile {d.profile!r}; "
                                 f"known: pattern, {', '.join(PROFILES)}")
            stream, prof_name = d.simulate.stream, d.profile
            profile = PROFILES[prof_name]
            acc = d.accuracy_pct or DEFAULT_ACCURACY.get(prof_name, 0.5)
        if stream not in plant.streams() and not (profile.measures == "signals"):
            raise ValueError(f"device {d.name}: the {cfg.simulation.plant} model has no stream "
                             f"{stream!r}; it has {', '.join(plant.streams())}")
        seed = device_seed(cfg, d.name)
        initial = 1000.0 + zlib.crc32(d.name.encode()) % 5000
        dens = true_density(cfg, stream)
        meters[d.name] = SimMeter(d.name, profile, stream, plant,
                                  MeterError.draw(acc, seed, cfg.reconciliation.sigma_rule),
                                  initial, dens)
    for f in scenario.faults if scenario else []:
        dev = getattr(f, "device", None)
        if dev is None:
            continue
        if dev not in {d.name for d in cfg.devices}:
            raise ValueError(f"fault {f.kind}: no device {dev!r} in the campaign")
        m = meters.get(dev)
        s, e = f.window(plant.t0)
        if isinstance(f, (BiasFault, DriftFault, StuckFault, TotalizerFault)) and m is None:
            raise ValueError(f"fault {f.kind}: device {dev!r} is not simulated")
        if isinstance(f, BiasFault) and m:
            m.faults.bias.append((s, e, f.pct / 100))
        elif isinstance(f, DriftFault) and m:
            m.faults.drift.append((s, e, f.pct_per_day / 100))
        elif isinstance(f, StuckFault) and m:
            m.faults.stuck.append((s, e))
        elif isinstance(f, TotalizerFault) and m:
            if f.kind == "rollover":
                if not m.profile.total_max:
                    raise ValueError(f"fault rollover: {dev}'s {m.profile.name} totalizer has "
                                     "no maximum count to roll over")
                m.faults.rollover_at = s
            else:
                m.faults.reset_at = s
    return meters
