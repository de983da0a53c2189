"""Configs that `cpaudit check` used to accept and the collector then lost or corrupted data
with, and files that crashed it (issue 14): each is refused by the real `cpaudit check` with
exit 2 and ``file:line: field: message``, within a stated time and memory."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import ROOT

REFERENCE = ROOT / "config" / "examples" / "collector-reference.yaml"
MAX_S = 15.0          # [s] wall time of one `cpaudit check`, interpreter start included
MAX_RSS_MB = 400.0    # [MB] its peak resident memory (a clean check takes ~60 MB)


def check(path: str | Path) -> tuple[int, str, float, float]:
    """Run the real `cpaudit check`; (exit code, stderr, seconds, the child's peak RSS in MB).
    The peak is the child's own VmHWM, which it writes as it exits: its rusage's ru_maxrss
    carries the RSS of the process it was spawned from over exec (Linux keeps the old mm's
    high-water mark), which in a long test run is pytest's few hundred MB."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", _OWN_PEAK, "check", str(path)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        timer = threading.Timer(60.0, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    secs = time.perf_counter() - t0
    if proc.returncode < 0:
        pytest.fail(f"cpaudit check {path} was killed (signal {-proc.returncode}) after "
                    f"{secs:.0f} s: {text[-2000:]}")
    peak = [ln for ln in text.splitlines() if ln.startswith("VMHWM_KB ")]
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("VMHWM_KB ")) + "\n"
    kb = float(peak[-1].split()[1]) if peak else usage.ru_maxrss    # ru_maxrss: KB on Linux
    return proc.returncode, text, secs, kb / 1024.0


# `cpaudit <args>` that writes its own peak RSS (VmHWM, KB) to stderr as it exits
_OWN_PEAK = ("import atexit, sys\n"
             "def _peak():\n"
             "    for ln in open('/proc/self/status'):\n"
             "        if ln.startswith('VmHWM'):\n"
             "            sys.stderr.write('\\nVMHWM_KB ' + ln.split()[1] + '\\n')\n"
             "atexit.register(_peak)\n"
             "from cpaudit.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")


def sub(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln]
    return hits[nth - 1]


SECOND_MQTT = """  - name: iot_second
    protocol: mqtt
    host: 192.0.2.20
    port: 1883
    client_id: cpaudit-site-01
    subscriptions: [{topic: "other/+/x", format: number, tag: "two.{1}"}]
    tags: [{tag: two.a}]

# Samples are forwarded"""


def _lol(levels: int = 9, fan: int = 9) -> str:
    """A 'billion laughs' file: each anchor lists the previous one ``fan`` times."""
    text = "a0: &a0 [" + ",".join(['"lol"'] * fan) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * fan) + "]\n"
    return text


# (id, text from the reference file, the field path, a part of the message, the line's needle)
Case = tuple[str, Callable[[str], str], str, str, str]
CASES: list[Case] = [
    ("duplicate sink name", lambda t: sub(t, "{name: cloud, kind", "{name: central, kind"),
     "sinks[1].name", "duplicate sink name 'central' (first at sinks[0])", "{name: central, kind: influxdb_v2"),
    ("duplicate MQTT client_id", lambda t: sub(t, "\n# Samples are forwarded", "\n" + SECOND_MQTT),
     "devices[4].client_id", "client_id 'cpaudit-site-01' is already used on 192.0.2.20:1883 "
     "by devices[3]", "client_id: cpaudit-site-01\n2"),
    ("collector interval 1 us", lambda t: sub(t, "interval_s: 1.0 ", "interval_s: 0.000001 "),
     "collector.interval_s", "greater than or equal to 0.01", "interval_s: 0.000001"),
    ("device interval 1 ms", lambda t: sub(t, "    timeout_s: 1.0\n", "    timeout_s: 1.0\n    interval_s: 0.001\n"),
     "devices[0].interval_s", "greater than or equal to 0.01", "interval_s: 0.001"),
    ("scale .nan", lambda t: sub(t, "scale: 0.01", "scale: .nan"),
     "devices[2].registers[0].scale", "finite number", "scale: .nan"),
    ("scale 1e400", lambda t: sub(t, "scale: 0.01", "scale: 1e400"),
     "devices[2].registers[0].scale", "finite number", "scale: 1e400"),
    ("rollover .inf", lambda t: sub(t, "rollover: 42949672.95", "rollover: .inf"),
     "devices[2].registers[0].rollover", "finite number", "rollover: .inf"),
    ("scale 0", lambda t: sub(t, "scale: 0.01", "scale: 0"),
     "devices[2].registers[0].scale", "scale 0 makes every reading 0", "scale: 0,"),
    ("valid_range [10, 1]", lambda t: sub(t, "valid_range: [0, 500]", "valid_range: [10, 1]"),
     "devices[2].registers[1].valid_range", "valid_range [10, 1] is empty", "valid_range: [10, 1]"),
    ("overlapping registers", lambda t: sub(t, "address: 10, type: float32", "address: 9, type: float32"),
     "devices[1].registers[2].address", "holding registers 9-10 of 'feedwater.total_frac' overlap "
     "9-9 of registers[1] ('feedwater.total_int')", "address: 9, type: float32"),
    ("float32 at 65535", lambda t: sub(t, "address: 0x0048", "address: 65535"),
     "devices[0].registers[1].address", "a float32 at 65535 needs registers 65535-65536 on the "
     "wire; the last register is 65535", "address: 65535"),
    ("port: true", lambda t: sub(t, "port: 4001", "port: true"),
     "devices[1].port", "got the boolean True", "port: true"),
    ("valid_range [yes, 5]", lambda t: sub(t, "valid_range: [0, 500]", "valid_range: [yes, 500]"),
     "devices[2].registers[1].valid_range", "got the boolean", "valid_range: [yes, 500]"),
    ("bit on a float32", lambda t: sub(t, "type: float32, word_order: CDAB, unit: m3/h",
                                       "type: float32, bit: 3, word_order: CDAB, unit: m3/h"),
     "devices[1].registers[0].bit", "a float32 has no bits to select", "bit: 3"),
    ("bit type without bit", lambda t: sub(t, "type: bit, bit: 0}", "type: bit}"),
     "devices[1].registers[4].bit", "needs bit (0-15)", "type: bit}"),
    ("two tags on one bit", lambda t: sub(t, "address: 71, type: uint16}", "address: 71, type: uint16, bit: 0}"),
     "devices[1].registers[4].bit", "bit 0 of holding register 71 is already read by registers[3]",
     "feedwater.no_signal"),
    ("impossible date", lambda t: sub(t, "valid_until: 2027-12-31", "valid_until: 2027-02-29"),
     "devices[0].calibration.valid_until", "'2027-02-29' is not a valid date or time: day is "
     "out of range for month", "2027-02-29"),
    ("anchor that merges itself", lambda t: sub(t, 'calibration: {certificate: "CERT-001",',
                                                'calibration: &cal {<<: *cal, certificate: "CERT-001",'),
     "devices[0].calibration", "an alias refers to a node that contains it", "&cal"),
    ("5,000-digit number", lambda t: sub(t, "port: 502", "port: " + "7" * 5000),
     "devices[0].port", "an integer of 5000 digits (at most 64)", "port: 777"),
    # a6 is the first anchor that expands beyond the limit (9^7 = 4.8 M values)
    ("billion laughs", lambda t: _lol(), "a6", "aliases expand the file beyond 4,000,000 values",
     "a6: &a6"),
    ("100,000 open brackets", lambda t: sub(t, "  seed: 7", "  seed: " + "[" * 100_000) if "seed" in t
     else t.replace("campaign:\n", "deep: " + "[" * 100_000 + "\ncampaign:\n", 1),
     # our depth check ("nested deeper than 64 levels"), or libyaml's own limit first where the
     # installed PyYAML/libyaml has one ("exceeded maximum nesting depth": 6.0.4 here)
     "", "nest", "deep: "),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_check_refuses(case: Case, tmp_path: Path) -> None:
    name, mutate, path, message, needle = case
    text = mutate(REFERENCE.read_text())
    f = tmp_path / "campaign.yaml"
    f.write_text(text)
    nth = 1
    if needle.endswith("\n2"):
        needle, nth = needle[:-2], 2
    line = line_of(text, needle, nth)
    rc, err, secs, rss = check(f)
    assert rc == 2, err
    assert "Traceback" not in err
    want = f"{f}:{line}: {path}: " if path else f"{f}:{line}: "
    lines = err.splitlines()
    assert any(ln.startswith(want) and message in ln for ln in lines), (want, message, err)
    assert secs < MAX_S and rss < MAX_RSS_MB, (secs, rss)


def test_billion_laughs_is_small_and_refused_fast(tmp_path: Path) -> None:
    text = _lol(10, 10)    # 10^10 values from ~620 bytes
    assert len(text) < 700
    f = tmp_path / "lol.yaml"
    f.write_text(text + "campaign: {name: x}\n")
    rc, err, secs, rss = check(f)
    assert rc == 2 and f"{f}:7: a6: aliases expand the file beyond" in err, err
    assert secs < MAX_S and rss < MAX_RSS_MB, (secs, rss)


def test_dev_zero_is_refused_in_bounded_memory() -> None:
    from cpaudit.config.loader import MAX_BYTES
    rc, err, secs, rss = check("/dev/zero")
    assert rc == 2 and f"/dev/zero: larger than {MAX_BYTES // 2**20} MiB: not a campaign file" \
        in err, err
    assert secs < MAX_S and rss < MAX_RSS_MB, (secs, rss)


def test_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    from cpaudit.config.loader import MAX_BYTES
    f = tmp_path / "big.yaml"
    body = REFERENCE.read_bytes()
    f.write_bytes(body + b"#" * (MAX_BYTES + 1 - len(body)))
    rc, err, _, _ = check(f)
    assert rc == 2 and f"larger than {MAX_BYTES // 2**20} MiB" in err, err
    f.write_bytes(body + b"#" * (MAX_BYTES - len(body)))     # at the limit: read and checked
    rc, err, _, _ = check(f)
    assert rc == 0, err


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    text = REFERENCE.read_text()
    # one Latin-1 byte (é as 0xE9) in a file that is otherwise UTF-8
    raw = text.encode("utf-8").replace(b"site: Example site", b"site: Caf\xe9 site")
    f = tmp_path / "latin1.yaml"
    f.write_bytes(raw)
    rc, err, _, _ = check(f)
    assert rc == 2 and f"{f}:{line_of(text, 'site: Example site')}: not UTF-8 text: byte 0xe9" \
        in err, err
    f.write_bytes(text.encode("utf-16"))
    rc, err, _, _ = check(f)
    assert rc == 2 and f"{f}:1: UTF-16 text; save the file as UTF-8" in err, err


def test_utf8_bom_is_read(tmp_path: Path) -> None:
    f = tmp_path / "bom.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + REFERENCE.read_bytes())
    rc, err, _, _ = check(f)
    assert rc == 0, err


def test_the_reference_file_itself_passes() -> None:
    """The mutations above start from a file that passes, so each refusal is the mutation's."""
    rc, err, _, _ = check(REFERENCE)
    assert rc == 0, err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_fifo_like_device_does_not_hang() -> None:
    rc, err, secs, _ = check("/dev/null")     # empty: refused as not a mapping
    assert rc == 2 and "/dev/null:1: a campaign file is a mapping at the top level" in err, err
