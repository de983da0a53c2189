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
    return value.translate(_TAG_ESC)


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
