"""Config loading is a boundary of outside input: whatever a campaign file holds, loading it
gives a Config or a ConfigError whose every problem names the file (and, when it has one, a
line of the file) — never another exception (issue 14). Hypothesis generates the files: YAML
built from the grammar's own pieces, arbitrary bytes, and the reference campaign mutated."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpaudit import config
from cpaudit.config import ConfigError
from tests.conftest import ROOT

REFERENCE = (ROOT / "config" / "examples" / "collector-reference.yaml").read_text()
NAME = "fuzz.yaml"

# the pieces YAML is made of, and the values the models trip over
TOKENS = ["\n", "  ", "- ", ": ", "{", "}", "[", "]", ", ", "&a ", "*a", "&b ", "*b", "<<: ",
          "? ", "!!int ", "!!float ", "!!timestamp ", "!!bool ", "!!binary ", "!!python/name:x ",
          "!!set ", "!!omap ", "'", '"', "#", "|", ">", "---\n", "...\n", "%YAML 1.1\n",
          "true", "no", "null", "~", ".nan", ".inf", "-.inf", "1e400", "0x1F", "0o17", "0b101",
          "1_000", "190:20:30", "2027-02-29", "2026-13-01T25:61:00Z", "9" * 5000, "-0",
          "campaign", "devices", "registers", "protocol", "modbus_tcp", "mqtt", "name", "tag",
          "address", "type", "float32", "bit", "scale", "valid_range", "interval_s", "port",
          "sinks", "flowsheet", "nodes", "streams", "from", "to", "ENV", "\t", "\x00", "\ufeff",
          "\u2028", "é", "\ud7ff"]

yamlish = st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=60).map("".join)


def assert_config_error(e: ConfigError) -> None:
    assert e.problems
    for p in e.problems:
        text = str(p)
        assert text.startswith(NAME) or text.startswith(str(p.file)), text
        assert p.line is None or p.line >= 1
        assert p.message


def load_or_error(text: str) -> None:
    try:
        config.load_text(text, NAME)
    except ConfigError as e:
        assert_config_error(e)


FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(yamlish)
def test_yamlish_text_never_raises_anything_else(text: str) -> None:
    load_or_error(text)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_else(tmp_path: Path, raw: bytes) -> None:
    f = tmp_path / NAME
    f.write_bytes(raw)
    try:
        config.load(f)
    except ConfigError as e:
        assert e.problems and all(p.file == str(f) and p.message for p in e.problems)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(REFERENCE)), st.integers(0, 12),
                          st.sampled_from(TOKENS) | st.text(max_size=6)), min_size=1, max_size=4))
def test_the_reference_file_mutated(edits: list[tuple[int, int, str]]) -> None:
    """Splice pieces into a valid campaign (replacing up to 12 characters each)."""
    text = REFERENCE
    for at, cut, piece in edits:
        text = text[:at] + piece + text[at + cut:]
    load_or_error(text)


@FUZZ
@given(st.sampled_from(sorted(set(re.findall(r"(?<=: )[^,}\n\[\]{]+", REFERENCE)))),
       st.sampled_from(["true", "no", ".nan", "-.inf", "1e400", "9" * 70, "2027-02-29", "-1",
                        "0", "65535", "[]", "{}", "*x", "&x {<<: *x}", "[10, 1]", "0.000001"]))
def test_each_value_replaced_by_a_poison(value: str, poison: str) -> None:
    """Every scalar value of the reference file, in turn, replaced by a known poison."""
    load_or_error(REFERENCE.replace(": " + value, ": " + poison, 1))


@pytest.mark.parametrize("text", ["!!int ", "!!timestamp ", "!!float ", "!!bool x", "!!int x",
                                  "a: !!timestamp 2026-02-30", "a: !!float 1e99999",
                                  "a: !!binary x", "a: !!set [1]", "a: !!omap 1",
                                  "a: &a [*a]", "- &a {<<: *a}", "? [1]\n: 2"])
def test_poison_found_by_fuzzing(text: str) -> None:
    """Inputs Hypothesis found (a bare '!!int ' raised IndexError, '!!timestamp '
    AttributeError) and their neighbours, pinned."""
    with pytest.raises(ConfigError) as e:
        config.load_text(text, NAME)
    assert_config_error(e.value)


def test_an_unclosed_bracket_in_a_unit_is_a_config_error() -> None:
    """pint tokenizes a unit as Python: an unclosed bracket raised tokenize.TokenError through
    the loader (found by :func:`test_the_reference_file_mutated` in a CI run)."""
    for unit in ("kg(", "m3/(h", "kg)"):
        text = re.sub(r"unit: [^,}\n]+", f"unit: '{unit}'", REFERENCE, count=1)
        assert text != REFERENCE
        with pytest.raises(ConfigError) as e:
            config.load_text(text, NAME)
        assert any("unknown unit" in p.message and unit in p.message for p in e.value.problems)
