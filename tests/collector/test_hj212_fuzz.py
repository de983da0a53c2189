"""The HJ 212 parser is the boundary of outside input: whatever bytes arrive, in whatever reads,
the framer and the parser give packets or a counted Hj212Error — never another exception — and
the framer loses no good packet around poison. Hypothesis generates the bytes."""
from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpaudit.collector.hj212 import Framer, Hj212Error, decode_line, frame, parse_frame, parse_line

GOOD = frame("QN=20160801085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
             "CP=&&DataTime=20160801085857;w01018-Rtd=50.1,w01018-Flag=N&&")

alphabet = st.sampled_from(list(b"##0123456789;,=&-CPQNSTMFWlagRtd\r\n\xe4\xb8\xad\x00\xff"))
noise = st.lists(alphabet, max_size=300).map(bytes) | st.binary(max_size=300)


def check_packet(data: bytes, variant: str = "hj212") -> None:
    try:
        p = parse_frame(data, variant)
    except Hj212Error as e:
        assert e.kind and str(e)
        return
    for v in p.values:
        assert isinstance(v.value, float) and (math.isnan(v.value) or math.isfinite(v.value))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(noise, st.sampled_from(["hj212", "modbus", "modbus_swapped", "auto"]))
def test_parse_frame_never_raises_foreign(data: bytes, variant: str) -> None:
    check_packet(data, variant)
    check_packet(b"##%04d" % max(0, len(data) - 4) + data + b"\r\n", variant)
    try:
        parse_line(data)
    except Hj212Error:
        pass
    d = decode_line(1, data)
    assert set(d) >= {"line", "ok", "error", "qn", "st", "cn", "pw", "mn", "flag", "data_time",
                      "values"}


segments = st.text(alphabet=st.sampled_from(list("QNSTCPMWFlag=;,&-0123456789.aRtdwE中 ")),
                   max_size=200)


@settings(max_examples=400)
@given(segments)
def test_framed_text_parses_or_refuses(seg: str) -> None:
    """A well-framed packet with any data segment (its CRC right) is parsed or refused."""
    check_packet(frame(seg))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(noise, max_size=4), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_framer_keeps_good_packets_between_poison(poison: list[bytes], cuts: list[int]) -> None:
    """Good packets separated from the poison by a line end all come out, whatever the reads
    (poison without a header or line end of its own: those would be packets' starts and ends)."""
    poison = [p.replace(b"#", b"").replace(b"\n", b"") for p in poison]
    stream = b"".join(GOOD + p + b"\r\n" for p in poison) + GOOD
    f = Framer()
    out: list[bytes | Hj212Error] = []
    i, k = 0, 0
    while i < len(stream):
        n = cuts[k % len(cuts)]
        out += f.feed(stream[i:i + n])
        i, k = i + n, k + 1
    good = [x for x in out if isinstance(x, bytes)]
    assert good == [GOOD] * (len(poison) + 1)
    assert not f.buf
    for x in out:
        if isinstance(x, bytes):
            check_packet(x)
