"""Every function code, data type and word order, decoded end to end over each transport:
Modbus TCP, RTU frames over TCP (serial gateway), and RTU on a real serial line — a pseudo-
terminal pair made by socat, so the frames carry real RTU framing and CRC."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from cpaudit import config
from cpaudit.collector.service import Collector
from cpaudit.simulators.live import Site
from cpaudit.simulators.profiles import PATTERN
from cpaudit.store import Quality, SQLiteStore
from tests.conftest import run_collector
from tests.servers import free_port

REGISTERS = """
      - {tag: P.i16, function: holding, address: 0, type: int16}
      - {tag: P.u16, function: holding, address: 1, type: uint16}
      - {tag: P.i32, function: holding, address: 2, type: int32, word_order: ABCD}
      - {tag: P.u32, function: holding, address: 4, type: uint32, word_order: CDAB}
      - {tag: P.i64, function: holding, address: 6, type: int64, word_order: BADC}
      - {tag: P.u64, function: holding, address: 10, type: uint64, word_order: DCBA}
      - {tag: P.f32, function: holding, address: 14, type: float32}
      - {tag: P.f64, function: holding, address: 16, type: float64, word_order: CDAB}
      - {tag: P.serial, function: holding, address: 20, type: string, count: 6}
      - {tag: P.bit2, function: holding, address: 26, type: bit, bit: 2}
      - {tag: P.bit1, function: holding, address: 26, type: uint16, bit: 1}
      - {tag: P.scaled, function: input, address: 1, type: uint16, scale: 0.01, offset: -100}
      - {tag: P.coil3, function: coil, address: 3, type: bit}
      - {tag: P.coil4, function: coil, address: 4, type: bit}
      - {tag: P.di1, function: discrete, address: 1, type: bit}
"""


def device(name: str, transport: str, unit: int, base: int = 0) -> str:
    regs = REGISTERS.replace("P.", f"{name}.")
    if base:
        regs = "\n".join(ln.replace("address: ", "address: 1+") for ln in regs.splitlines())
        import re
        regs = re.sub(r"address: 1\+(\d+)", lambda m: f"address: {int(m.group(1)) + 1}", regs)
    return f"""
  - name: {name}
    {transport}
    unit_id: {unit}
    address_base: {base}
    profile: pattern
    timeout_s: 1.0
    registers:{regs}"""


def config_for(tmp: Path, devices: str, sim_serial: str | None = None) -> config.Config:
    text = f"""
campaign: {{name: transports}}
collector: {{interval_s: 0.5, flush_ms: 100}}
devices:{devices}
flowsheet:
  nodes: [{{id: n}}]
  streams: [{{id: s, from: ENV, to: n, provenance: theoretical, value: 1, unit: kg, source: t}}]
"""
    p = tmp / "t.yaml"
    p.write_text(text)
    return config.load(p)


def run(cfg: config.Config, st: SQLiteStore, seconds: float = 1.8) -> Collector:
    return run_collector(cfg, st, seconds)


EXPECTED = {
    "i16": PATTERN["i16"], "u16": PATTERN["u16"], "i32": PATTERN["i32"], "u32": PATTERN["u32"],
    "i64": PATTERN["i64"], "u64": PATTERN["u64"], "f64": PATTERN["f64"],
    "bit2": 1.0, "bit1": 0.0, "scaled": 12345 * 0.01 - 100, "coil3": 1.0, "coil4": 0.0,
    "di1": 1.0,
}


def check(st: SQLiteStore, name: str) -> None:
    last = st.read([f"{name}.{k}" for k in [*EXPECTED, "f32"]])
    good = last[last["quality"] == Quality.GOOD]
    assert len(good) >= 2 * (len(EXPECTED) + 1), last.to_string()
    values = good.groupby("tag")["value"].last()
    for k, v in EXPECTED.items():
        assert values[f"{name}.{k}"] == pytest.approx(v, rel=0, abs=1e-9), k
    assert values[f"{name}.f32"] == pytest.approx(PATTERN["f32"], rel=1e-7)
    assert f"{name}.serial" not in set(st.tags())      # strings identify; they are no samples


@pytest.mark.parametrize("pipeline", [1, 8], ids=["pymodbus", "pipelined"])
def test_tcp_two_unit_ids_share_one_connection_and_address_base(tmp_path: Path,
                                                                pipeline: int) -> None:
    """Two unit ids behind one gateway, every type, through pymodbus's client (pipeline 1) and
    cpaudit's own pipelined Modbus TCP client (pipeline 8): the same values, one connection."""
    port = free_port()
    tcp = (f"protocol: modbus_tcp\n    port: {port}\n    pipeline: {pipeline}\n"
           "    simulate: {stream: s}")
    cfg = config_for(tmp_path, device("A", tcp, 1) + device("B", tcp, 2, base=1))
    st = SQLiteStore(tmp_path / "s.db")
    col = run(cfg, st)
    check(st, "A")
    check(st, "B")
    assert len(col.links) == 1                        # one TCP connection for both unit ids
    assert next(iter(col.links.values())).pipelined == (pipeline > 1)
    sent = {d.cfg.name: d.sent_ns for d in col.devices}
    if pipeline > 1:     # both unit ids' requests of a tick left in one socket write
        assert sent["A"] == sent["B"] > 0
    else:                # one request in flight: B's goes after A's answer
        assert sent["A"] != sent["B"]
    st.close()


def test_rtu_over_tcp(tmp_path: Path) -> None:
    tcp = f"protocol: modbus_tcp\n    port: {free_port()}\n    framer: rtu\n    simulate: {{stream: s}}"
    cfg = config_for(tmp_path, device("R", tcp, 7))
    st = SQLiteStore(tmp_path / "s.db")
    run(cfg, st)
    check(st, "R")
    st.close()


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    assert shutil.which("socat"), "socat missing: scripts/install-system-deps.sh installs it"
    a, b = str(tmp_path / "ttyA"), str(tmp_path / "ttyB")
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (Path(a).exists() and Path(b).exists()):
        assert time.monotonic() < deadline, "socat made no pty pair"
        time.sleep(0.05)
    yield a, b
    proc.terminate()
    proc.wait(5)


def test_rtu_on_a_serial_line_two_devices_on_one_bus(tmp_path: Path,
                                                     pty_pair: tuple[str, str]) -> None:
    sim_end, collector_end = pty_pair
    rtu = (f"protocol: modbus_rtu\n    serial_port: {collector_end}\n    baudrate: 19200\n"
           f"    simulate: {{stream: s, serial_port: {sim_end}}}")
    cfg = config_for(tmp_path, device("S1", rtu, 1) + device("S2", rtu, 2))
    st = SQLiteStore(tmp_path / "s.db")
    col = run(cfg, st, 2.5)
    check(st, "S1")
    check(st, "S2")
    assert len(col.links) == 1                        # one bus, taken in turn
    st.close()


def test_pipelined_exception_and_missing_unit(tmp_path: Path) -> None:
    from pymodbus.constants import ExcCodes
    port = free_port()
    tcp = f"protocol: modbus_tcp\n    port: {port}\n    pipeline: 4\n    simulate: {{stream: s}}"
    cfg = config_for(tmp_path, device("A", tcp, 1) + device("B", tcp, 2))
    st = SQLiteStore(tmp_path / "s.db")

    def fault(site: Site) -> None:
        site.contexts["B"].exception = ExcCodes.ILLEGAL_ADDRESS
    run_collector(cfg, st, 1.8, fault)
    check(st, "A")
    b = st.read(["B.i16"])
    from cpaudit.store import Reason
    assert (b[b["reason"] != Reason.DOWN]["reason"] == Reason.EXCEPTION).all() and len(b) >= 3
    st.close()
