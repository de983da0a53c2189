"""Standard-coal coefficients for the energy layer (GB/T 2589-2020 综合能耗计算通则).

E = Σ Eᵢ·kᵢ: each carrier's physical amount times its coefficient [kgce per unit]. The defaults are
those quoted in shared/reference/balance-math.md §4.4 — all of them **secondary** (quoted by public
code citing GB/T 2589-2020, not read in the standard itself) and some marked unverified there; each
carries that status into the output. The standard prefers measured low calorific values: override a
coefficient in the campaign file (``energy.coefficients``). Electricity is taken at its equivalent
value (当量值) unless ``energy.electricity: equal_value`` with the year's published coal rate.
"""
from __future__ import annotations

from dataclasses import dataclass

from config import Config


@dataclass(frozen=True)
class Coefficient:
    kgce: float          # per ``unit``
    unit: str
    source: str
    status: str          # secondary | unverified | configured


_SRC = "GB/T 2589-2020 as quoted in balance-math.md 4.4 (secondary)"
COEFFICIENTS: dict[str, Coefficient] = {
    "electricity": Coefficient(0.1229, "kWh", _SRC + "; 860 kcal/kWh, equivalent value",
                               "secondary"),
    "natural_gas": Coefficient(1.2143, "m3", _SRC + "; repositories quote 1.2143 and 1.3300, the "
                               "table's range 1.1000-1.3300 is unverified: give your gas's LHV",
                               "unverified"),
    "steam": Coefficient(128.6, "t", _SRC + "; the low-pressure qualifier is unverified",
                         "unverified"),
    "heat": Coefficient(0.03412, "MJ", _SRC, "secondary"),
    "fresh_water": Coefficient(0.2571, "t", _SRC + " (energy-consuming working medium)",
                               "secondary"),
    "diesel": Coefficient(1.4571, "kg", _SRC, "secondary"),
    "gasoline": Coefficient(1.4714, "kg", _SRC, "secondary"),
    "raw_coal": Coefficient(0.7143, "kg", _SRC, "unverified"),
    "coke": Coefficient(0.9714, "kg", _SRC, "unverified"),
    "fuel_oil": Coefficient(1.4286, "kg", _SRC, "unverified"),
}


def coefficient(cfg: Config, carrier: str) -> Coefficient:
    """The coefficient the campaign uses for ``carrier``: configured, else the default."""
    base = COEFFICIENTS[carrier]
    e = cfg.energy
    if carrier in e.coefficients:
        return Coefficient(e.coefficients[carrier], base.unit,
                           "campaign file (energy.coefficients)", "configured")
    if carrier == "electricity" and e.electricity == "equal_value":
        assert e.equal_value_kgce_kwh is not None
        return Coefficient(e.equal_value_kgce_kwh, "kWh",
                           "campaign file: equal value (等价值), the year's power-supply coal rate",
                           "configured")
    return base
