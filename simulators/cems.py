"""CEMS analyzer modes in the simulation: calibration and maintenance windows (config.scenario
``calibration`` / ``maintenance`` faults) seen through the analyzer's status words and readings.

During a calibration the Xuedilong SCS-900UV's status word (0x000A) carries the calibration mode
in its low byte (2-7, shared/reference/devices.md 3.7) and the gas channels read the span gas
(SO2 and NOx at the fault's span values; O2 0 %: span gases are usually balanced in nitrogen
[simulation convention]); during maintenance the maintenance word (0x000B) is set and the
readings stay frozen at their value when it began. The plant is untouched: the flue gas flows
and carries its true pollutants, which the analyzer does not see meanwhile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cpaudit.config.scenario import CemsFault, Scenario
from cpaudit.simulators.meters import Plant, SimMeter


@dataclass
class AnalyzerModes:
    """A plant as one analyzer sees it: the true plant, with its modes' windows overlaid on the
    signals of the analyzer's stream."""
    plant: Plant
    stream: str
    windows: list[tuple[float, float, CemsFault]] = field(default_factory=list)
    t0: float = 0.0

    def __post_init__(self) -> None:
        self.t0 = self.plant.t0

    def rate(self, stream: str, t: Any) -> np.ndarray:
        return self.plant.rate(stream, t)

    def total(self, stream: str, t: Any) -> np.ndarray:
        return self.plant.total(stream, t)

    def streams(self) -> tuple[str, ...]:
        return self.plant.streams()

    def load(self, t: Any) -> Any:
        return self.plant.load(t)

    def __getattr__(self, name: str) -> Any:      # other plant methods (mean_signals …)
        return getattr(self.plant, name)

    def signals(self, stream: str, t: Any) -> dict[str, np.ndarray]:
        out = self.plant.signals(stream, t)
        if stream != self.stream or not self.windows:
            return out
        tt = np.asarray(t, dtype=np.float64)
        out = dict(out)
        out.setdefault("status", np.zeros(tt.shape))
        out.setdefault("maintenance", np.zeros(tt.shape))
        for s, e, f in self.windows:
            on = (tt >= s) & (tt < e)
            if not np.any(on):
                continue
            if f.kind == "calibration":
                out["status"] = np.where(on, f.status & 0xFF, out["status"])
                for k, v in (("so2", f.span_so2), ("nox", f.span_nox), ("o2", 0.0)):
                    if k in out:
                        out[k] = np.where(on, v, out[k])
            else:
                frozen = self.plant.signals(stream, np.asarray([s]))
                out["maintenance"] = np.where(on, f.status, out["maintenance"])
                for k in ("so2", "nox", "o2"):
                    if k in out:
                        out[k] = np.where(on, frozen[k][0], out[k])
        return out


def apply_cems_faults(meters: dict[str, SimMeter], scenario: Scenario | None,
                      skip: set[str] | frozenset[str] = frozenset()) -> None:
    """Overlay each calibration/maintenance fault on its analyzer's meter (in place); faults on
    the devices in ``skip`` (HJ 212 loggers, which flag them themselves) are left alone."""
    for f in scenario.faults if scenario else []:
        if not isinstance(f, CemsFault) or f.device in skip:
            continue
        m = meters.get(f.device)
        if m is None or m.profile.name != "cems_scs900":
            raise ValueError(f"fault {f.kind}: device {f.device!r} is not a simulated CEMS "
                             "analyzer (profile cems_scs900)")
        modes = m.plant if isinstance(m.plant, AnalyzerModes) else AnalyzerModes(m.plant, m.stream)
        modes.windows.append((*f.window(modes.t0), f))
        m.plant = modes
