"""Topic matching and payload parsing, including every malformed kind."""
from __future__ import annotations

import pytest

from cpaudit.collector.payloads import PayloadError, match, parse
from cpaudit.config.models import Subscription


def sub(**kw: object) -> Subscription:
    return Subscription(**{"topic": "site/+/+/data", "tag": "{1}.{2}", **kw})


def test_match_wildcards() -> None:
    assert match("a/+/c", "a/b/c") == ["b"]
    assert match("a/#", "a/b/c") == ["b/c"]
    assert match("a/+/#", "a/x/y/z") == ["x", "y/z"]
    assert match("a/+/c", "a/b/d") is None and match("a/+", "a/b/c") is None


def test_json_value_and_timestamp() -> None:
    s = sub(value_path="d.v", ts_path="ts", ts_unit="ms")
    r = parse(s, "site/ww/influent/data", b'{"d": {"v": 12.5}, "ts": 1795000000123}', 1000)
    assert [(p.tag, p.value, p.ts_ns) for p in r] == [("ww.influent", 12.5, 1795000000123000000)]


def test_json_array_of_readings_and_fields() -> None:
    s = sub(fields=["cod", "nh3n"], ts_path="t", ts_unit="iso", tag="{1}.{field}")
    body = b'[{"t": "2026-11-24T08:00:00+08:00", "cod": 310, "nh3n": "28.5"},' \
           b' {"t": "2026-11-24T08:00:01+08:00", "cod": 311}]'
    r = parse(s, "site/ww/in/data", body, 1000)
    assert [(p.tag, p.value) for p in r] == [("ww.cod", 310.0), ("ww.nh3n", 28.5), ("ww.cod", 311.0)]
    assert r[2].ts_ns - r[0].ts_ns == 1_000_000_000


def test_number_and_line_protocol() -> None:
    assert parse(sub(format="number"), "site/a/b/data", b" 42.25\n", 100)[0].value == 42.25
    s = Subscription(topic="lp/#", format="influx", tag="{measurement}.{field}")
    r = parse(s, "lp/x", b'boiler,unit=1 gas=12.5,on=t,cnt=7i,name="b1" 1795000000000000000\n', 1000)
    assert [(p.tag, p.value, p.ts_ns) for p in r] == [
        ("boiler.gas", 12.5, 1795000000000000000), ("boiler.on", 1.0, 1795000000000000000),
        ("boiler.cnt", 7.0, 1795000000000000000)]


@pytest.mark.parametrize("payload,kind", [
    (b"{not json", "not_json"),
    (b'{"value": "abc"}', "wrong_type"),
    (b'{"value": true}', "wrong_type"),
    (b'{"value": NaN}', "nan"),
    (b'{"value": "inf"}', "nan"),
    (b'{"other": 1}', "no_value"),
    (b'{"value": 1, "ts": "yesterday"}', "bad_timestamp"),
    (b'{"value": 1, "ts": 12}', "bad_timestamp"),
    (b"x" * 2000, "too_large"),
    (b"\xff\xfe", "not_json"),
])
def test_malformed_kinds(payload: bytes, kind: str) -> None:
    s = sub(ts_path="ts") if b"ts" in payload else sub()
    with pytest.raises(PayloadError) as e:
        parse(s, "site/a/b/data", payload, 1000)
    assert e.value.kind == kind


def test_unknown_topic_and_bad_line() -> None:
    with pytest.raises(PayloadError) as e:
        parse(sub(), "other/a/b/data", b"1", 100)
    assert e.value.kind == "unknown_topic"
    with pytest.raises(PayloadError) as e:
        parse(Subscription(topic="lp", format="influx"), "lp", b"garbage", 100)
    assert e.value.kind == "bad_line"


def test_topic_filter_validated() -> None:
    with pytest.raises(ValueError, match="bad topic filter"):
        Subscription(topic="a/b+/c")
    with pytest.raises(ValueError, match="bad topic filter"):
        Subscription(topic="a/#/c")
