"""One unit registry for the project (pint), with the units Chinese audit data use.

``m3`` (cubic metre as written on meter nameplates), ``Nm3`` (normal cubic metre, 0 °C and
101.325 kPa; dimensionally a volume, the reference state is the analyzer's business) and ``kgce``
(kilogram of coal equivalent, 29 307.6 kJ; GB/T 2589-2020, 3.7).
"""
from __future__ import annotations

import tokenize
from functools import lru_cache

import pint


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    ureg: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.define("m3 = meter ** 3")
    ureg.define("Nm3 = meter ** 3")
    ureg.define("kgce = 29307.6 * kilojoule")
    ureg.define("tce = 1000 * kgce")
    return ureg


def parse_unit(text: str) -> pint.Unit:
    """Parse a unit string; raise ValueError with a readable message."""
    try:
        return registry().Unit(text)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError,
            TypeError, ValueError, AssertionError, tokenize.TokenError, SyntaxError,
            IndexError, KeyError) as e:
        # pint parses a unit with Python's tokenizer: an unclosed bracket ("kg(") is a
        # tokenize.TokenError (found by the config fuzz)
        raise ValueError(f"unknown unit {text!r}") from e


@lru_cache(maxsize=4096)
def factor(from_unit: str, to_unit: str) -> float:
    """Multiplier converting a value in ``from_unit`` to ``to_unit`` (same dimension)."""
    ureg = registry()
    try:
        return float(ureg.Quantity(1.0, from_unit).to(to_unit).magnitude)
    except pint.errors.DimensionalityError as e:
        raise ValueError(f"cannot convert {from_unit!r} to {to_unit!r}") from e


@lru_cache(maxsize=4096)
def dimension(text: str) -> str:
    """'mass', 'volume', 'energy', 'mass_rate', 'volume_rate', 'power', or the pint dimensionality."""
    u = parse_unit(text)
    d = registry().Quantity(1.0, u).dimensionality
    ureg = registry()
    named = {
        "mass": ureg.kg, "volume": ureg.m3, "energy": ureg.kWh, "mass_rate": ureg.kg / ureg.s,
        "volume_rate": ureg.m3 / ureg.s, "power": ureg.W, "temperature": ureg.kelvin,
        "pressure": ureg.Pa, "dimensionless": ureg.dimensionless,
    }
    for name, ref in named.items():
        if registry().Quantity(1.0, ref).dimensionality == d:
            return name
    return str(d)
