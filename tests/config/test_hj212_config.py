"""The hj212 device protocol in a campaign file: every mistake names file, line and field path."""
from __future__ import annotations

import pytest

from cpaudit import config
from cpaudit.config import ConfigError
from cpaudit.config.models import Hj212Device
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "examples" / "brewery-hj212.yaml"
NAME = "config/examples/brewery-hj212.yaml"


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        config.load_text(text, NAME)
    return [str(p) for p in e.value.problems]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    return [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln][nth - 1]


def test_example_loads_with_four_loggers_on_one_port() -> None:
    cfg = config.load(EXAMPLE)
    hj = [d for d in cfg.devices if isinstance(d, Hj212Device)]
    assert [d.name for d in hj] == ["cems", "wwq_influent", "wwq_anaerobic", "wwq_effluent"]
    assert len({d.listen_port for d in hj}) == 1 and len({d.mn for d in hj}) == 4
    idx = cfg.tag_index()
    assert idx["stack.so2"].device == "cems" and idx["ww_effluent.cod"].device == "wwq_effluent"


def test_duplicate_mn_on_one_address() -> None:
    text = EXAMPLE.read_text().replace('mn: "010000A8900016F000169DC2"',
                                       'mn: "010000A8900016F000169DC1"')
    line = line_of(text, 'mn: "010000A8900016F000169DC1"', 2)
    errs = errors_of(text)
    assert any(e.startswith(f"{NAME}:{line}: devices[") and ".mn: MN '010000A8900016F000169DC1' "
               "is already devices[" in e for e in errs), errs


def test_bad_fields_named() -> None:
    text = (EXAMPLE.read_text()
            .replace("{code: a21026, field: Rtd, tag: stack.so2", "{code: a21026, field: Rdt, tag: stack.so2")
            .replace("    version: 2017\n    crc: hj212\n", "    version: 2019\n    crc: crc32\n    timezone: Asia/Beijing\n")
            .replace("      min_interval_min: 1\n", "      min_interval_min: 7\n"))
    errs = errors_of(text)
    want = {
        line_of(text, "field: Rdt"): "factors[0].field: ",
        line_of(text, "version: 2019"): ".version: ",
        line_of(text, "crc: crc32"): ".crc: ",
        line_of(text, "timezone: Asia/Beijing"): ".timezone: unknown time zone 'Asia/Beijing'",
        line_of(text, "min_interval_min: 7"): ".simulate.min_interval_min: min_interval_min 7",
    }
    for line, frag in want.items():
        assert any(e.startswith(f"{NAME}:{line}: devices[") and frag in e for e in errs), \
            (line, frag, errs)


def test_duplicate_factor_and_missing_signal() -> None:
    text = EXAMPLE.read_text().replace(
        "      - {code: a21002, field: Rtd, tag: stack.nox, unit: mg/m3}\n",
        "      - {code: a21002, field: Rtd, tag: stack.nox, unit: mg/m3}\n"
        "      - {code: a21002, field: Rtd, tag: stack.nox2, unit: mg/m3}\n"
        "      - {code: a99999, field: Rtd, tag: stack.x, unit: mg/m3}\n")
    errs = errors_of(text)
    assert any(f":{line_of(text, 'tag: stack.nox2')}:" in e and
               "a21002-Rtd of CN 2011 is already factors[1]" in e for e in errs), errs
    assert any("simulate.signals: no signal for factor 'a99999'" in e for e in errs), errs


def test_unknown_key_and_duplicate_tag() -> None:
    text = EXAMPLE.read_text().replace("    clock_tolerance_s", "    clock_tol_s") \
        .replace("    password: \"123456\"\n    version: 2017\n    crc: hj212\n",
                 "    password: \"123456\"\n    version: 2017\n    crc: hj212\n    baud: 9600\n")
    errs = errors_of(text)
    assert any(f":{line_of(text, 'baud: 9600')}: devices[" in e and ".baud: unknown key" in e
               for e in errs), errs
    text = EXAMPLE.read_text().replace("tag: ww_anaerobic.cod", "tag: ww_influent.cod")
    errs = errors_of(text)
    assert any(f":{line_of(text, 'tag: ww_influent.cod', 2)}:" in e and
               "factors[0].tag: duplicate tag 'ww_influent.cod'" in e for e in errs), errs
