"""MQTT topics and payloads to readings. Pure functions; every refusal is a :class:`PayloadError`
with a ``kind`` so the source can count and log it once per kind.

Kinds: ``too_large``, ``not_json``, ``wrong_type``, ``no_value``, ``nan``, ``bad_timestamp``,
``bad_line``, ``unknown_topic``, ``undeclared_tag``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from cpaudit.config.models import Subscription


class PayloadError(ValueError):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Parsed:
    tag: str
    value: float
    ts_ns: int | None      # the sender's timestamp, when the payload carries one


def match(pattern: str, topic: str) -> list[str] | None:
    """Match an MQTT topic filter; return the captures of + (in order) and # (last), or None."""
    p, t = pattern.split("/"), topic.split("/")
    caps: list[str] = []
    for i, seg in enumerate(p):
        if seg == "#":
            caps.append("/".join(t[i:]))
            return caps
        if i >= len(t):
            return None
        if seg == "+":
            caps.append(t[i])
        elif seg != t[i]:
            return None
    return caps if len(p) == len(t) else None


def render(template: str, caps: list[str], pattern: str, **extra: str) -> str:
    plus = [c for c, seg in zip(caps, [s for s in pattern.split("/") if s in ("+", "#")])
            if seg == "+"]
    hash_ = caps[-1] if pattern.endswith("#") else ""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key.isdigit():
            i = int(key) - 1
            if not 0 <= i < len(plus):
                raise PayloadError("unknown_topic", f"template {template!r} needs +{key}")
            return plus[i]
        if key == "#":
            return hash_
        if key in extra:
            return extra[key]
        raise PayloadError("unknown_topic", f"template {template!r}: no {{{key}}}")
    return re.sub(r"\{([^}]+)\}", sub, template)


def _path(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise PayloadError("no_value", f"no {path!r} in payload")
    return cur


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise PayloadError("wrong_type", f"{what} is {type(v).__name__}, not a number")
    try:
        x = float(v)
    except (ValueError, OverflowError):     # a 400-digit integer overflows a float
        raise PayloadError("wrong_type", f"{what} {str(v)[:40]!r} is not a number") from None
    if not math.isfinite(x):
        raise PayloadError("nan", f"{what} is {v!r}")
    return x


def _ts(v: Any, unit: str) -> int:
    if unit == "iso":
        if not isinstance(v, str):
            raise PayloadError("bad_timestamp", f"timestamp {v!r} is not ISO 8601 text")
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError("bad_timestamp", f"timestamp {v!r} is not ISO 8601") from None
        if t.tzinfo is None:
            raise PayloadError("bad_timestamp", f"timestamp {v!r} has no time zone")
        return int(t.timestamp() * 1e9)
    mult = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        ns = v * mult                       # exact: no float rounding of ns timestamps
    else:
        try:
            x = _number(v, "timestamp")
        except PayloadError as e:
            raise PayloadError("bad_timestamp", str(e)) from None
        ns = int(round(x * mult))
    if not NS_MIN <= ns <= NS_MAX:
        raise PayloadError("bad_timestamp", f"timestamp {v!r} ({unit}) is not between 2000 and 2100")
    return ns


NS_MIN, NS_MAX = 946_684_800_000_000_000, 4_102_444_800_000_000_000    # 2000 .. 2100 [ns]


def parse(sub: Subscription, topic: str, payload: bytes, max_payload: int,
          caps: list[str] | None = None) -> list[Parsed]:
    """Readings of one message. ``caps``: the topic's wildcard captures, if already matched.

    The boundary of outside input: whatever the payload holds, this returns readings or raises
    :class:`PayloadError` — never anything else. A payload that makes the decoder itself fail
    (JSON nested deeper than the interpreter's recursion limit, an integer of thousands of
    digits) is a ``malformed`` rejection, counted like the others."""
    try:
        return _parse(sub, topic, payload, max_payload, caps)
    except PayloadError:
        raise
    except (RecursionError, OverflowError, ValueError, TypeError, MemoryError) as e:
        raise PayloadError("malformed", f"{type(e).__name__}: {str(e)[:60]}") from None


def _parse(sub: Subscription, topic: str, payload: bytes, max_payload: int,
           caps: list[str] | None = None) -> list[Parsed]:
    if len(payload) > max_payload:
        raise PayloadError("too_large", f"{len(payload)} bytes > {max_payload}")
    if caps is None:
        caps = match(sub.topic, topic)
    if caps is None:
        raise PayloadError("unknown_topic", f"{topic!r} does not match {sub.topic!r}")
    if sub.format == "number":
        try:
            text = payload.decode("ascii").strip()
        except UnicodeDecodeError:
            raise PayloadError("wrong_type", "payload is not ASCII text") from None
        return [Parsed(render(sub.tag, caps, sub.topic), _number(text, "payload"), None)]
    if sub.format == "influx":
        return _parse_lines(sub, caps, payload)
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PayloadError("not_json", str(e)[:80]) from None
    items = _path(doc, sub.readings_path) if sub.readings_path else doc
    if not isinstance(items, list):
        items = [items]
    out: list[Parsed] = []
    for item in items:
        if not isinstance(item, dict):
            if sub.fields or sub.value_path != "value" or isinstance(item, (dict, list)):
                raise PayloadError("wrong_type", f"reading is {type(item).__name__}, not an object")
            out.append(Parsed(render(sub.tag, caps, sub.topic), _number(item, "value"), None))
            continue
        ts = _ts(_path(item, sub.ts_path), sub.ts_unit) if sub.ts_path else None
        if sub.fields:
            for f in sub.fields:
                if f in item:
                    out.append(Parsed(render(sub.tag, caps, sub.topic, field=f),
                                      _number(item[f], f), ts))
            if not out:
                raise PayloadError("no_value", f"none of {sub.fields} in payload")
        else:
            out.append(Parsed(render(sub.tag, caps, sub.topic),
                              _number(_path(item, sub.value_path), sub.value_path), ts))
    return out


_LINE = re.compile(r"^((?:[^ ,\\]|\\.)+)((?:,(?:[^ ,=\\]|\\.)+=(?:[^ ,\\]|\\.)+)*) "
                   r"((?:[^ =\\]|\\.)+=(?:\"(?:[^\"\\]|\\.)*\"|[^ ,]+)"
                   r"(?:,(?:[^ =\\]|\\.)+=(?:\"(?:[^\"\\]|\\.)*\"|[^ ,]+))*)(?: (-?\d+))?$")


def _parse_lines(sub: Subscription, caps: list[str], payload: bytes) -> list[Parsed]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("bad_line", "not UTF-8") from None
    out: list[Parsed] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise PayloadError("bad_line", f"not line protocol: {line[:60]!r}")
        meas = re.sub(r"\\(.)", r"\1", m.group(1))
        ts = int(m.group(4)) if m.group(4) else None
        if ts is not None and not NS_MIN <= ts <= NS_MAX:   # ns; beyond int64 would not store
            raise PayloadError("bad_timestamp", f"line protocol time {m.group(4)[:25]} ns is not "
                               "between 2000 and 2100")
        for pair in re.findall(r"((?:[^ =,\\]|\\.)+)=(\"(?:[^\"\\]|\\.)*\"|[^ ,]+)", m.group(3)):
            key, raw = re.sub(r"\\(.)", r"\1", pair[0]), pair[1]
            if raw.startswith('"'):
                continue            # string fields are not readings
            raw = raw[:-1] if raw[-1] in "iu" and raw[:-1].lstrip("-").isdigit() else raw
            if raw in ("t", "T", "true", "True", "f", "F", "false", "False"):
                value = 1.0 if raw[0] in "tT" else 0.0
            else:
                value = _number(raw, key)
            out.append(Parsed(render(sub.tag, caps, sub.topic, measurement=meas, field=key),
                              value, ts))
    if not out:
        raise PayloadError("no_value", "no numeric field in line protocol payload")
    return out
