"""The pollutant balance on data from HJ 212 loggers (config/examples/brewery-hj212.yaml): the
data flags are the samples' quality, so a calibration hour is no emission hour — excluded, named
and substituted as a CEMS status word's would be (tests/analyzer/test_pollutant.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cpaudit import config
from cpaudit.analyzer.iotools import pollutant_from_store
from cpaudit.store import Quality, Reason
from cpaudit.store.sqlite import SQLiteStore
from tests.conftest import ROOT, campaign_text

T0 = 1_795_000_000_000_000_000 // 3_600_000_000_000 * 3_600_000_000_000   # on the hour
S = 1_000_000_000
STEP = 30 * S                                                              # RtdInterval 30 s
VALUES = {
    "stack.flow": 10000.0 / 3600,   # m3/s, actual (a00000)
    "stack.temperature": 130.0, "stack.pressure": 101.0, "stack.moisture": 17.0,
    "stack.o2": 6.0, "stack.so2": 40.0, "stack.nox": 50.0, "stack.dust": 2.0,
}


@pytest.fixture
def site(tmp_path: Path) -> config.Config:
    p = tmp_path / "site.yaml"
    p.write_text(campaign_text(ROOT / "config" / "examples" / "brewery-hj212.yaml"))
    return config.load(p)


def write(st: SQLiteStore, so2: np.ndarray, q: np.ndarray, r: np.ndarray, ts: np.ndarray) -> None:
    series = []
    for tag, v in VALUES.items():
        n = len(ts)
        if tag == "stack.so2":
            series.append((tag, ts, so2, q, r))
        else:
            series.append((tag, ts, np.full(n, v), np.zeros(n, np.int8), np.zeros(n, np.int8)))
    st.write_series(series)


def test_calibration_flagged_hour_is_no_emission(site: config.Config, tmp_path: Path) -> None:
    """Four hours at 30 s. SO2 40 mg/m3 in hour 0, 60 in hours 2-3; the logger flags C (span gas
    100 mg/m3) for all of hour 1 and the first 10 minutes of hour 0 (50 minutes left >= 45: the
    hour counts on its normal minutes). By hand, q = 10000 x 273.15/403.15 x 101/101.325 x 0.83
    m3/h: valid hours (40 + 60 + 60) q; hour 1 substituted (HJ 75: mean of the valid hours
    around it) (40 + 60)/2 q; headline 210 q [mg/m3 x m3/h x 1e-6 = kg]."""
    q_sn = 10000 * 273.15 / 403.15 * 101 / 101.325 * 0.83
    ts = T0 + np.arange(4 * 120, dtype=np.int64) * STEP
    h = (ts - T0) // (3600 * S)
    m = (ts - T0) // (60 * S)
    cal = (h == 1) | (m < 10)
    so2 = np.where(cal, 100.0, np.where(h == 0, 40.0, 60.0))
    q = np.where(cal, int(Quality.BAD), int(Quality.GOOD)).astype(np.int8)
    r = np.where(cal, int(Reason.CALIBRATION), int(Reason.NONE)).astype(np.int8)
    st = SQLiteStore(tmp_path / "s.db")
    write(st, so2, q, r, ts)
    res = pollutant_from_store(site, st, T0, T0 + 4 * 3600 * S)
    p = next(f for f in res.factors if f.factor == "SO2").points[0]
    assert p.excluded_minutes == {"calibration": 70}
    assert p.valid_hours == pytest.approx(3.0) and len(p.invalid) == 1
    assert p.invalid[0]["start_ns"] == T0 + 3600 * S
    assert "calibration 60 min" in p.invalid[0]["why"]
    assert p.load_kg_valid_hours == pytest.approx(160 * q_sn * 1e-6, rel=1e-9)
    assert p.load_kg == pytest.approx(210 * q_sn * 1e-6, rel=1e-9)
    # the same readings without their flags would count the span gas as emission
    st2 = SQLiteStore(tmp_path / "s2.db")
    write(st2, so2, np.zeros(len(ts), np.int8), np.zeros(len(ts), np.int8), ts)
    p2 = next(f for f in pollutant_from_store(site, st2, T0, T0 + 4 * 3600 * S).factors
              if f.factor == "SO2").points[0]
    assert p2.excluded_minutes == {} and not p2.invalid
    assert p2.load_kg == pytest.approx((40 * 50 / 60 + 100 * 10 / 60 + 100 + 120) * q_sn * 1e-6,
                                       rel=1e-9)


def test_maintenance_and_fault_flags_named(site: config.Config, tmp_path: Path) -> None:
    ts = T0 + np.arange(2 * 120, dtype=np.int64) * STEP
    m = (ts - T0) // (60 * S)
    r = np.where(m < 10, int(Reason.MAINTENANCE), np.where((m >= 60) & (m < 90),
                 int(Reason.FAULT), 0)).astype(np.int8)
    q = np.where(r > 0, int(Quality.BAD), 0).astype(np.int8)
    st = SQLiteStore(tmp_path / "s.db")
    write(st, np.full(len(ts), 40.0), q, r, ts)
    p = next(f for f in pollutant_from_store(site, st, T0, T0 + 2 * 3600 * S).factors
             if f.factor == "SO2").points[0]
    assert p.excluded_minutes == {"maintenance": 10, "fault": 30}
    # hour 0: 50 normal minutes >= 45, valid; hour 1: 30 < 45, invalid and named
    assert p.valid_hours == pytest.approx(1.0) and len(p.invalid) == 1
    assert p.invalid[0]["start_ns"] == T0 + 3600 * S and "fault 30 min" in p.invalid[0]["why"]
