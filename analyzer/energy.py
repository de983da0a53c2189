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

from cpaudit.config import Config


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
                               "table's range 1.1000-1.3300 is unverified: give your gas's LHV; "
                               "per m3 at energy.gas_reference", "unverified"),
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
        spec = e.coefficients[carrier]
        if isinstance(spec, float | int):
            return Coefficient(float(spec), base.unit, "campaign file (energy.coefficients)",
                               "configured")
        return Coefficient(spec.kgce, spec.unit or base.unit,
                           f"campaign file (energy.coefficients): {spec.source}", "configured")
    if carrier == "electricity" and e.electricity == "equal_value":
        assert e.equal_value_kgce_kwh is not None
        return Coefficient(e.equal_value_kgce_kwh, "kWh",
                           "campaign file: equal value (等价值), the year's power-supply coal rate",
                           "configured")
    return base


GASES = ("natural_gas",)
T0_K = 273.15


def gas_state_factor(cfg: Config, carrier: str, from_unit: str, to_unit: str) -> tuple[float, str]:
    """Volume of a gas in ``from_unit`` expressed in ``to_unit`` where one of them is ``Nm3``
    (0 °C, 101.325 kPa) and the other ``m3`` at ``energy.gas_reference`` (ideal gas:
    V_ref = V_N × T_ref/T_0 × p_0/p_ref). Returns (factor, note); 1 when no conversion applies."""
    if carrier not in GASES or {from_unit, to_unit} != {"Nm3", "m3"}:
        return 1.0, ""
    g = cfg.energy.gas_reference
    f = (T0_K + g.temperature_c) / T0_K * 101.325 / g.pressure_kpa
    note = (f"Nm3 (0 °C, 101.325 kPa) taken to m3 at {g.temperature_c:g} °C, "
            f"{g.pressure_kpa:g} kPa (x{f:.4f}; {g.source})")
    return (f, note) if from_unit == "Nm3" else (1.0 / f, note)


def saturated_steam_kj_kg(p_mpa_abs: float) -> float:
    """Specific enthalpy of saturated steam [kJ/kg] at ``p_mpa_abs`` [MPa absolute] (IAPWS-IF97,
    the ``iapws`` package; Wagner et al. 2000, doi:10.1115/1.483186)."""
    from iapws import IAPWS97
    return float(IAPWS97(P=p_mpa_abs, x=1.0).h)
