"""Analyzer behaviour in the simulation: CEMS calibration and maintenance windows, and a cycle
analyzer's composite sample, the same live and generated."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cpaudit import config
from cpaudit.config.scenario import Scenario, parse_fault
from cpaudit.simulators.cems import apply_cems_faults
from cpaudit.simulators.live import composite_s, encode_payload, mqtt_values
from cpaudit.simulators.meters import build_meters, build_plant
from cpaudit.simulators.site import CYCLE_S, BrewerySite
from tests.conftest import site_text

T0 = 1_790_006_400.0          # a multiple of 7200 s


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    p = tmp_path / "s.yaml"
    p.write_text(site_text())
    return config.load(p)


def test_calibration_and_maintenance_windows(cfg: config.Config) -> None:
    sc = Scenario(faults=[parse_fault("calibration device=cems start=1h duration=30m"),
                          parse_fault("maintenance device=cems start=3h duration=1h status=1")])
    plant = build_plant(cfg, T0, None, sc)
    meters = build_meters(cfg, plant, sc)
    apply_cems_faults(meters, sc)
    cems, plc = meters["cems"], meters["cems_plc"]
    before = cems.state(T0 + 1800)
    assert before.extra["status"] == 0 and before.extra["so2"] == pytest.approx(4.0)
    during = cems.state(T0 + 3600 + 60)
    # SCS-900UV: calibration mode 3 in the low byte of 0x000A; span gas 100 / 200 mg/m3, O2 0
    assert during.extra["status"] == 3 and during.extra["so2"] == 100.0
    assert during.extra["nox"] == 200.0 and during.extra["o2"] == 0.0
    assert cems.state(T0 + 5400).extra["status"] == 0       # the window's end is excluded
    m = cems.state(np.array([T0 + 3 * 3600 + 10.0, T0 + 3 * 3600 + 1800.0]))
    assert list(m.extra["maintenance"]) == [1.0, 1.0]
    frozen = BrewerySite(T0, cfg.simulation.load_amplitude).signals("flue_gas", T0 + 3 * 3600)
    assert list(m.extra["so2"]) == pytest.approx([float(frozen["so2"])] * 2)
    # the flue gas itself, and the PLC's channels, are untouched
    assert "status" not in plc.state(T0 + 3660).extra
    assert cems.plant.rate("flue_gas", T0 + 3660) == pytest.approx(
        plant.rate("flue_gas", T0 + 3660))


def test_composite_sample_is_the_cycles_flow_weighted_mean(cfg: config.Config) -> None:
    """By hand over one 3 h brew cycle with load amplitude 0: 90 m3 from the rest of the
    brewery at 2 000 mg/L and 4 m3 of CIP waste at 4 000 mg/L: (90 x 2000 + 4 x 4000)/94
    = 2 085.106 mg/L, what a composite sample of the cycle holds."""
    site = BrewerySite(T0, load_amplitude=0.0)
    c = site.mean_signals("ww_influent", T0, T0 + CYCLE_S)
    assert float(c["cod"]) == pytest.approx((90 * 2000 + 4 * 4000) / 94, rel=1e-9)
    plant = build_plant(cfg, T0)
    m = build_meters(cfg, plant)["iot_wwq_influent"]
    t = T0 + 7200.0
    arr = mqtt_values({"cod": "cod"}, m, np.array([t]), composite_s("cycle_composite", 7200))
    live = json.loads(encode_payload({"cod": "cod"}, m, t, t, 7200.0))
    mean = plant.mean_signals("ww_influent", t - 7200, t)      # type: ignore[attr-defined]
    assert live["cod"] == pytest.approx(float(mean["cod"]), abs=1e-6)
    assert float(np.asarray(arr["cod"])[0]) == pytest.approx(live["cod"], abs=1e-6)
    assert composite_s("instant", 7200) is None
    with pytest.raises(ValueError, match="wastewater streams only"):
        site.mean_signals("flue_gas", T0, T0 + 60)
