"""``cpaudit hj212 decode FILE [--json]``: one JSON object per input line, in order, with the
contract of issue 17 (line, ok, error, qn, st, cn, pw, mn, flag, data_time, values)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpaudit.cli import main
from cpaudit.simulators.hj212_logger import encode

KEYS = {"line", "ok", "error", "qn", "st", "cn", "pw", "mn", "flag", "data_time", "values"}
APPENDIX_A = ("##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
              "Flag=5;CP=&&RtdInterval=30&&1C80")


def test_decode_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rtd = encode("QN=20260101083000123;ST=31;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
                 "CP=&&DataTime=20260101083000;a21026-Rtd=4.25,a21026-Flag=C;a19001-Rtd=3.5&&")
    swapped = encode("ST=32;CN=2011;PW=123456;MN=88888880000001;CP=&&DataTime=20160824003817000;"
                     "B01-Rtd=36.91&&", crc="modbus_swapped")
    lines = [APPENDIX_A, rtd.decode().strip(), "not a packet", APPENDIX_A[:-4] + "1C08", "",
             APPENDIX_A[:50], swapped.decode().strip()]
    p = tmp_path / "cap.txt"
    p.write_text("\n".join(lines) + "\n")
    assert main(["hj212", "decode", str(p), "--json"]) == 1       # some lines refused
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["line"] for o in out] == list(range(1, len(lines) + 1))
    assert all(set(o) == KEYS for o in out)
    assert [o["ok"] for o in out] == [True, True, False, False, False, False, False]
    assert [o["error"] for o in out] == [None, None, "framing", "crc", "framing", "length",
                                         "crc"]
    a = out[1]
    assert (a["qn"], a["st"], a["cn"], a["pw"], a["mn"], a["flag"]) == (
        "20260101083000123", "31", "2011", "123456", "010000A8900016F000169DC0", 5)
    assert a["data_time"] == "2026-01-01T08:30:00+08:00"
    assert a["values"] == [{"code": "a21026", "field": "Rtd", "value": 4.25, "flag": "C"},
                           {"code": "a19001", "field": "Rtd", "value": 3.5, "flag": None}]
    # the logger's CRC variant and time zone
    assert main(["hj212", "decode", str(p), "--json", "--crc", "auto", "--tz", "UTC"]) == 1
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert out[6]["ok"] and out[6]["values"][0]["value"] == 36.91
    assert out[6]["data_time"] == "2016-08-24T00:38:17+00:00"


def test_decode_text_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "one.txt"
    p.write_text(APPENDIX_A + "\r\n")
    assert main(["hj212", "decode", str(p)]) == 0
    assert "CN=1062" in capsys.readouterr().out
    assert main(["hj212", "decode", str(tmp_path / "nope.txt")]) == 2
