"""InfluxDB line protocol for samples, with a plain formatter.

influxdb-client's ``Point`` encodes ~8x slower than a plain formatter for the same bytes
(shared/reference/limits.md), so samples are formatted here and sent as text to both APIs.

One measurement (default ``cpaudit``), the sample's tag as the tag key ``tag``, fields ``value``
(float, omitted when NaN: line protocol has no NaN), ``quality`` and ``reason`` (integers),
timestamp in ns. Series + timestamp identify a sample, so writing it again is idempotent.
"""
from __future__ import annotations

import math

from store.sample import Batch

_TAG_ESC = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})


def escape_tag(value: str) -> str:
    """Comma, equals sign and space take a backslash (InfluxDB line protocol reference, "Special
    characters"). A backslash elsewhere is literal: influxd 1.6.7 stores ``a\\b`` as sent, so it
    is not doubled (tried against the real server here)."""
    return value.translate(_TAG_ESC)


def unrepresentable(tag: str) -> str | None:
    """Why a tag cannot be a line-protocol tag value, or None. A value ending in a backslash
    escapes the separator after it (influxd 1.6.7 answers ``invalid tag format`` however it is
    written), a newline ends the line, an empty tag value is not allowed."""
    if not tag:
        return "empty tag"
    if "\n" in tag or "\r" in tag:
        return "newline in tag"
    if tag.endswith("\\"):
        return "tag ends with a backslash"
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError:
        return "tag is not UTF-8"
    return None


def format_lines(batch: Batch, measurement: str = "cpaudit") -> str:
    m = escape_tag(measurement)
    keys: dict[str, str] = {}
    out = []
    for tag, ts, v, q, r in zip(batch.tags, batch.ts.tolist(), batch.value.tolist(),
                                batch.quality.tolist(), batch.reason.tolist()):
        key = keys.get(tag)
        if key is None:
            key = keys[tag] = f"{m},tag={escape_tag(tag)}"
        if math.isfinite(v):
            out.append(f"{key} value={v!r},quality={q}i,reason={r}i {ts}")
        else:
            out.append(f"{key} quality={q}i,reason={r}i {ts}")
    return "\n".join(out)
