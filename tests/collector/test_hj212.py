"""HJ 212 framing, CRC and parsing (collector.hj212) on the standard's own examples and real
packets from public parsers; the vectors are those re-computed in shared/reference/devices.md 1.8."""
from __future__ import annotations

import datetime as dt
import math

import pytest

from cpaudit.collector.hj212 import (Framer, Hj212Error, answer_9011, answer_9014, crc_hex, decode_line,
                             flag_quality, frame, parse_frame, parse_line)
from cpaudit.store import Quality, Reason

# HJ 212-2017 Appendix A, the standard's worked example (its prose says 1C08; the algorithm and
# the printed packet give 1C80, devices.md 1.8)
APPENDIX_A = (b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
              b"Flag=5;CP=&&RtdInterval=30&&1C80\r\n")
# a 2005-style real-time packet (no QN, no Flag, old codes B01/011/060, 17-digit DataTime) from
# xiaoyao9184/hj-t212-parser's tests (T212ParserTest, sample S10): its CRC 4980 verifies
S10 = (b"##0139ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817000;"
       b"B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4980\r\n")
# the same project's README example after PR #8: length fixed to 0136 for the 14-digit DataTime,
# but the CRC 4980 of the 17-digit packet kept (the right one is 3C00): a CRC error
README = (b"##0136ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817;"
          b"B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4980\r\n")


@pytest.mark.parametrize("data, hj, modbus", [
    (b"", "FFFF", "FFFF"), (b"A", "7080", "707F"), (b"123456789", "2F80", "4B37"),
    (APPENDIX_A[6:-6], "1C80", "0759"),
    (b"QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&",
     "3240", "44BC"),
])
def test_crc_vectors(data: bytes, hj: str, modbus: str) -> None:
    assert crc_hex(data) == hj
    assert crc_hex(data, "modbus") == modbus
    assert crc_hex(data, "modbus_swapped") == modbus[2:] + modbus[:2]


def test_appendix_a_example_parses() -> None:
    p = parse_frame(APPENDIX_A)
    assert (p.qn, p.st, p.cn, p.pw, p.mn, p.flag) == (
        "20160801085857223", "32", "1062", "100000", "010000A8900016F000169DC0", 5)
    assert p.version == 2017 and p.wants_answer and p.cp == {"RtdInterval": "30"}
    assert frame(p.segment) == APPENDIX_A          # the answer builder frames the same way


def test_answers_echo_qn_and_clear_the_ack_bit() -> None:
    p = parse_frame(APPENDIX_A)
    a = parse_frame(frame(answer_9014(p)))
    assert (a.qn, a.st, a.cn, a.flag, a.cp) == (p.qn, "91", "9014", 4, {})
    r = parse_frame(frame(answer_9011(p, 3)))
    assert r.cn == "9011" and r.cp == {"QnRtn": "3"}


def test_2005_style_packet() -> None:
    with pytest.raises(Hj212Error) as e:
        parse_frame(README)
    assert e.value.kind == "crc" and "3C00" in e.value.detail
    p = parse_frame(S10)
    assert p.qn is None and p.flag is None and p.version == 2005 and not p.wants_answer
    assert p.data_time == dt.datetime(2016, 8, 24, 0, 38, 17)       # 17 digits (P10)
    got = [(v.code, v.field, v.value, v.flag) for v in p.values]
    assert got == [("B01", "Rtd", 36.91, None), ("011", "Rtd", 231.0, "N"),
                   ("060", "Rtd", 1.803, "N")]


def test_codes_compared_whole() -> None:
    """P13: ``01`` (dust) is not ``S01`` (O2)."""
    seg = "ST=31;CN=2011;PW=123456;MN=X1;CP=&&DataTime=20200101000000;S01-Rtd=17.08;01-Rtd=2.5,01-Flag=D&&"
    p = parse_frame(frame(seg))
    assert [(v.code, v.value, v.flag) for v in p.values] == [("S01", 17.08, None),
                                                              ("01", 2.5, "D")]


def test_standard_typos_tolerated() -> None:
    """P14: ``,ST=`` and ``Flag=5CP=&&``; a space before a key."""
    seg = ("QN=20160801085857534,ST=32;CN=2011;PW=123456;MN=A1;Flag=5CP=&&DataTime=20160801085857;"
           " w01018-Rtd=50.1,w01018-Flag=N&&")
    p = parse_frame(frame(seg))
    assert (p.qn, p.st, p.flag) == ("20160801085857534", "32", 5)
    assert [(v.code, v.value) for v in p.values] == [("w01018", 50.1)]


def test_crc_variants_and_hex_case() -> None:
    seg = "QN=1;ST=32;CN=2011;PW=1;MN=A;Flag=4;CP=&&DataTime=20250101000000;w01018-Rtd=1&&"
    swapped = frame(seg, "modbus_swapped")
    with pytest.raises(Hj212Error):
        parse_frame(swapped)
    assert parse_frame(swapped, "modbus_swapped").cn == "2011"
    assert parse_frame(swapped, "auto").cn == "2011"
    assert parse_frame(frame(seg).lower().replace(seg.lower().encode(), seg.encode())).cn == "2011"


def test_2025_flag_resent_and_encrypted() -> None:
    p = parse_frame(frame("QN=1;ST=44;CN=2011;PW=1;MN=A;Flag=9;RF=1;CP=&&DataTime=20260101000000;"
                          "d20001-Rtd=12.5,d20001-Flag=N&&"))
    assert p.version == 2025 and p.wants_answer and p.resent and p.st == "44"
    with pytest.raises(Hj212Error) as e:
        parse_frame(frame("QN=1;ST=31;CN=2011;PW=1;MN=A;Flag=9;CP=9F2C1A0B77E1D4C3"))
    assert e.value.kind == "encrypted_unsupported"
    with pytest.raises(Hj212Error) as e:
        parse_frame(frame("QN=1;ST=31;CN=2011;PW=1;MN=A;Flag=5;CP=9F2C1A0B77E1D4C3"))
    assert e.value.kind == "cp"


def test_utf8_length_in_bytes() -> None:
    seg = "QN=1;ST=32;CN=3020;PW=1;MN=A;Flag=8;CP=&&i11001-Info=//仪器维护//&&"
    f = frame(seg)
    assert int(f[2:6]) == len(seg.encode()) > len(seg)
    assert parse_frame(f).cp["i11001-Info"] == "//仪器维护//"
    # a logger that counts characters (caoyiliang/HJ212 GB.cs) is accepted too (P7)
    chars = b"##%04d" % len(seg) + f[6:]
    assert Framer().feed(chars) == [chars]


def test_framer_fragmentation_coalescing_and_poison() -> None:
    f = Framer()
    good = APPENDIX_A
    stream = b"\r\n" + good + b"junk##00x1abc\r\n" + good + good[:3]
    out: list[object] = []
    for i in range(0, len(stream), 7):                  # 7-byte reads
        out += f.feed(stream[i:i + 7])
    out += f.feed(good[3:])
    kinds = [x.kind if isinstance(x, Hj212Error) else "ok" for x in out]
    assert kinds == ["ok", "framing", "framing", "ok", "ok"]
    assert [x for x in out if not isinstance(x, Hj212Error)] == [good, good, good]


def test_wrong_length_is_cut_at_its_line_end() -> None:
    f = Framer()
    bad = b"##0150" + APPENDIX_A[6:]           # declares more than it holds
    out = f.feed(bad + APPENDIX_A)
    assert [x.kind if isinstance(x, Hj212Error) else "ok" for x in out] == ["length", "ok"]
    short = b"##0050" + APPENDIX_A[6:]          # declares less
    out = Framer().feed(short + APPENDIX_A)
    assert [x.kind if isinstance(x, Hj212Error) else "ok" for x in out] == ["length", "ok"]


def test_lf_only_tail_accepted() -> None:
    assert parse_line(APPENDIX_A[:-2] + b"\n").cn == "1062"


def test_flags_to_quality() -> None:
    assert flag_quality("N") == (Quality.GOOD, Reason.NONE)
    assert flag_quality(None) == (Quality.GOOD, Reason.NONE)
    assert flag_quality("C") == (Quality.BAD, Reason.CALIBRATION)
    assert flag_quality("M") == (Quality.BAD, Reason.MAINTENANCE)
    assert flag_quality("D") == (Quality.BAD, Reason.FAULT)
    assert flag_quality("F") == (Quality.BAD, Reason.STOPPED)
    assert flag_quality("B") == (Quality.BAD, Reason.INSTRUMENT_COMM)
    assert flag_quality("T") == (Quality.UNCERTAIN, Reason.OVER_RANGE)
    assert flag_quality("S") == (Quality.UNCERTAIN, Reason.MANUAL)
    assert flag_quality("Z") == (Quality.UNCERTAIN, Reason.HJ212_FLAG)


def test_non_numeric_value_is_nan() -> None:
    p = parse_frame(frame("ST=32;CN=2011;PW=1;MN=A;CP=&&DataTime=20200101000000;w01018-Rtd=--&&"))
    assert math.isnan(p.values[0].value)


def test_decode_line_contract() -> None:
    d = decode_line(3, APPENDIX_A.strip(), tz="Asia/Shanghai")
    assert d["line"] == 3 and d["ok"] is True and d["error"] is None and d["flag"] == 5
    seg = "QN=1;ST=32;CN=2011;PW=1;MN=A;Flag=4;CP=&&DataTime=20250101083000;w01018-Rtd=12.5,w01018-Flag=C&&"
    d = decode_line(1, frame(seg))
    assert d["data_time"] == "2025-01-01T08:30:00+08:00"
    assert d["values"] == [{"code": "w01018", "field": "Rtd", "value": 12.5, "flag": "C"}]
    bad = decode_line(2, b"")
    assert bad["ok"] is False and bad["error"] == "framing"


def test_split_packets_table_c49() -> None:
    """Flag=7 (2017, split, answer) with PNUM/PNO (Table C.49); Flag D without them is refused."""
    seg = ("QN=20160801085857223;ST=32;CN=2061;PW=123456;MN=A1;Flag=7;PNUM=2;PNO=1;CP=&&"
           "DataTime=20160801080000;w01018-Avg=50.2,w01018-Flag=N&&")
    p = parse_frame(frame(seg))
    assert (p.pnum, p.pno, p.wants_answer, p.cn) == (2, 1, True, "2061")
    with pytest.raises(Hj212Error) as e:
        parse_frame(frame(seg.replace("PNUM=2;PNO=1;", "")))
    assert e.value.kind == "header"


def test_line_end_inside_info_text_is_not_a_tail() -> None:
    """A bare line end in an -Info log text, the packet arriving in two reads: still one packet."""
    seg = "QN=1;ST=32;CN=3020;PW=1;MN=A;Flag=4;CP=&&i11001-Info=//line one\nline two//&&"
    pkt = frame(seg)
    f = Framer()
    cut = pkt.index(b"line two")
    assert f.feed(pkt[:cut]) == []
    assert f.feed(pkt[cut:]) == [pkt]
    assert parse_frame(pkt).cp["i11001-Info"] == "//line one\nline two//"


def test_noise_upload_example_as_quoted() -> None:
    """The standard's real-time noise upload as public implementations quote it in comments
    ("标准格式", e.g. the LA-Rtd example with a space after ';'): parsed whole."""
    seg = ("QN=20160801085857223;ST=23;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
           "CP=&&DataTime=20160801085857; LA-Rtd=50.1&&")
    p = parse_frame(frame(seg))
    assert p.data_time == dt.datetime(2016, 8, 1, 8, 58, 57)
    assert [(v.code, v.field, v.value, v.flag) for v in p.values] == [("LA", "Rtd", 50.1, None)]


def test_table_crc_equals_the_standards_routine() -> None:
    """The two-bytes-a-lookup CRC against Appendix A's routine, bit by bit, on every length."""
    import random
    from cpaudit.collector.hj212 import _crc_hj212_reference, crc_hj212
    rnd = random.Random(212)
    for n in range(0, 300):
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert crc_hj212(data) == _crc_hj212_reference(data), n
