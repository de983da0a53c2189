"""The MQTT payload parser is the boundary of outside input: whatever a message holds, it gives
readings with finite values and plausible times, or a counted PayloadError — never another
exception (issue 14: a 400-digit integer or deeply nested brackets used to end a connection's
ingestion). Hypothesis generates the payloads; the named poison cases are pinned beside it."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpaudit.collector.payloads import NS_MAX, NS_MIN, PayloadError, parse
from cpaudit.config.models import Subscription

SUBS = [
    Subscription(topic="s/+/flow", format="json", value_path="v", ts_path="ts", ts_unit="ms",
                 tag="x.{1}.flow"),
    Subscription(topic="s/+/q", format="json", fields=["cod", "nh3n"], tag="x.{1}.{field}",
                 readings_path="r"),
    Subscription(topic="s/+/n", format="number", tag="x.{1}.n"),
    Subscription(topic="s/+/lp", format="influx", tag="{measurement}.{field}"),
]
TOPIC = {"json": "s/a/flow", "number": "s/a/n", "influx": "s/a/lp"}


def check(sub: Subscription, topic: str, payload: bytes) -> None:
    try:
        out = parse(sub, topic, payload, 65536)
    except PayloadError as e:
        assert e.kind and str(e)
        return
    for p in out:
        assert math.isfinite(p.value)
        assert p.ts_ns is None or NS_MIN <= p.ts_ns <= NS_MAX


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["v", "ts", "cod", "nh3n", "r", "x"]), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(range(len(SUBS))))
def test_any_json_document_is_readings_or_a_counted_rejection(doc: object, i: int) -> None:
    sub = SUBS[i]
    topic = "s/a/q" if sub.fields else TOPIC[sub.format]
    check(sub, topic, json.dumps(doc, allow_nan=True).encode())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(range(len(SUBS))))
def test_any_bytes_are_readings_or_a_counted_rejection(raw: bytes, i: int) -> None:
    sub = SUBS[i]
    check(sub, "s/a/q" if sub.fields else TOPIC[sub.format], raw)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="m,=vt \\\"0123456789.-eEiu#\n", max_size=80))
def test_any_line_protocol_text_is_readings_or_a_counted_rejection(text: str) -> None:
    check(SUBS[3], "s/a/lp", text.encode())


@pytest.mark.parametrize("payload, kind", [
    (b'{"v": ' + b"9" * 400 + b', "ts": 1795000000000}', "wrong_type"),     # float overflow
    (b'{"v": ' + b"9" * 5000 + b"}", "malformed"),       # beyond Python's int-string limit
    (b"[" * 6000 + b"]" * 6000, "malformed"),            # RecursionError in json.loads
    (b'{"v": 1, "ts": ' + b"9" * 30 + b"}", "bad_timestamp"),
])
def test_the_poison_payloads_of_issue_14(payload: bytes, kind: str) -> None:
    with pytest.raises(PayloadError) as e:
        parse(SUBS[0], "s/a/flow", payload, 65536)
    assert e.value.kind == kind


def test_a_line_protocol_time_beyond_int64_is_refused() -> None:
    with pytest.raises(PayloadError) as e:
        parse(SUBS[3], "s/a/lp", b"m v=1 " + b"9" * 25, 65536)
    assert e.value.kind == "bad_timestamp"
    with pytest.raises(PayloadError):                   # 1970: no plausible campaign time
        parse(SUBS[3], "s/a/lp", b"m v=1 1000", 65536)
    assert parse(SUBS[3], "s/a/lp", b"m v=1.5 1795000000000000000", 65536)[0].value == 1.5
