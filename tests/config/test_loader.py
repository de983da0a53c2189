"""Every example config loads; every mistake names file, line and field path."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cpaudit import config
from cpaudit.config import ConfigError
from tests.conftest import BREWERY, ROOT

EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    cfg = config.load(path)
    assert cfg.devices and cfg.flowsheet.streams


def errors_of(text: str, name: str = "bad.yaml") -> list[str]:
    with pytest.raises(ConfigError) as e:
        config.load_text(text, name)
    return [str(p) for p in e.value.problems]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = text.splitlines()
    hits = [i + 1 for i, ln in enumerate(lines) if needle in ln]
    return hits[nth - 1]


def test_unknown_type_names_file_line_and_path() -> None:
    text = BREWERY.read_text().replace(
        "{tag: sweet_wort.total, function: input, address: 0x7538, type: float64",
        "{tag: sweet_wort.total, function: input, address: 0x7538, type: flaot32")
    line = line_of(text, "type: flaot32")
    assert errors_of(text, "config/examples/brewery.yaml") == [
        f"config/examples/brewery.yaml:{line}: devices[3].registers[1].type: unknown type "
        "'flaot32'; expected one of int16, uint16, int32, uint32, int64, uint64, float32, "
        "float64, bit, string"]


def test_unknown_key_is_an_error() -> None:
    text = BREWERY.read_text().replace("    port: 15022\n", "    port: 15022\n    baud: 9600\n")
    assert errors_of(text) == [f"bad.yaml:{line_of(text, 'baud: 9600')}: devices[1].baud: unknown key"]


def test_duplicate_yaml_key_is_an_error() -> None:
    text = BREWERY.read_text().replace("    port: 15022\n", "    port: 15022\n    port: 15099\n")
    errs = errors_of(text)
    assert f"bad.yaml:{line_of(text, 'port: 15099')}: devices[1].port: duplicate key" in errs


def test_all_problems_reported_at_once() -> None:
    text = (BREWERY.read_text()
            .replace("timezone: Asia/Shanghai", "timezone: Asia/Beijing")
            .replace("to: kettle, tag: sweet_wort.total", "to: ketle, tag: sweet_wort.total")
            .replace("tag: hot_wort.total, rate_tag", "tag: hot_wort.totl, rate_tag"))
    errs = errors_of(text)
    assert len(errs) == 1 and "campaign.timezone: unknown time zone 'Asia/Beijing'" in errs[0]
    text = text.replace("timezone: Asia/Beijing", "timezone: Asia/Shanghai")
    errs = errors_of(text)
    assert any(e.endswith("flowsheet.streams[3].to: unknown node 'ketle'; nodes are kettle, mash "
                          "and ENV (the boundary)") for e in errs)
    assert any(e.endswith("flowsheet.streams[7].tag: unknown tag 'hot_wort.totl'") for e in errs)
    assert all(e.startswith(f"bad.yaml:{line_of(text, 'id: sweet_wort, from: mash')}:")
               for e in errs if "ketle" in e)


def test_volume_stream_without_density_and_wrong_unit() -> None:
    text = BREWERY.read_text().replace("density_kg_m3: 1040, name: Sweet wort", "name: Sweet wort")
    errs = errors_of(text)
    assert len(errs) == 1 and "flowsheet.streams[3].density_kg_m3: tag 'sweet_wort.total' " \
        "measures volume (m3); the material balance needs density_kg_m3" in errs[0]
    text = BREWERY.read_text().replace("{id: steam_in, from: ENV, to: kettle, tag: steam_in.total",
                                       "{id: steam_in, from: ENV, to: kettle, tag: steam_in.pressure")
    errs = errors_of(text)
    assert any("streams[4].tag: tag 'steam_in.pressure' has unit 'MPa' (pressure)" in e for e in errs)


def test_theoretical_stream_needs_source_and_unknown_unit() -> None:
    text = BREWERY.read_text().replace(
        "{id: vapour, from: kettle, to: ENV, tag: vapour.total, rate_tag: vapour.flow, density_kg_m3: 1000,",
        "{id: vapour, from: kettle, to: ENV, provenance: theoretical, value: 700, unit: kg,")
    errs = errors_of(text)
    assert len(errs) == 1 and errs[0].endswith("flowsheet.streams[6].source: a theoretical stream "
                                               "needs its source")
    text = BREWERY.read_text().replace("unit: m3/h, kind: rate}", "unit: m3/hx, kind: rate}", 1)
    errs = errors_of(text)
    assert len(errs) == 1 and "devices[0].registers[0].unit: unknown unit 'm3/hx'" in errs[0]


def test_yaml_syntax_error_has_line() -> None:
    text = BREWERY.read_text().replace("  seed: 7", "  seed: [7")
    errs = errors_of(text)
    assert len(errs) == 1 and errs[0].startswith("bad.yaml:") and "YAML syntax" in errs[0]


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="nope.yaml: cannot read"):
        config.load("nope.yaml")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cpaudit", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("check", str(BREWERY))
    assert ok.returncode == 0, ok.stderr
    assert "8 devices" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(BREWERY.read_text().replace("type: uint32, scale: 0.1", "type: unit32, scale: 0.1", 1))
    res = run_cli("check", str(bad))
    assert res.returncode == 2
    assert f"{bad}:{line_of(bad.read_text(), 'unit32')}: devices[1].registers[0].type: unknown " \
        "type 'unit32'" in res.stderr
    assert "Traceback" not in res.stderr
