"""InfluxDB line protocol for samples, with a plain formatter.

influxdb-client's ``Point`` encodes ~8x slower than a plain formatter for the same bytes
(shared/reference/limits.md), so samples are formatted here and sent as text to both APIs.

One measurement (default ``cpaudit``), the sample's tag as the tag key ``tag``, fields ``value``
(float, omitted when NaN: line protocol has no NaN), ``quality`` and ``reason`` (integers),
timestamp in ns. Series + timestamp identify a sample, so writing it again is idempotent.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cpaudit.store.sample import Batch

if TYPE_CHECKING:
    import pandas as pd

    from cpaudit.store.changes import Change

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


def scope_tags(scope: dict[str, str] | None) -> str:
    """``,campaign=…,site=…``: the tags that let many edge boxes share one database (sorted by
    key, as line protocol writes fastest)."""
    if not scope:
        return ""
    return "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(scope.items()) if v)


def field_string(value: str) -> str:
    """A string field value: double quotes and backslashes take a backslash."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_lines(batch: Batch, measurement: str = "cpaudit",
                 scope: dict[str, str] | None = None) -> str:
    m = escape_tag(measurement) + scope_tags(scope)
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


def rollup_lines(frame: "pd.DataFrame", measurement: str = "cpaudit",
                 scope: dict[str, str] | None = None) -> list[str]:
    """The edge's per-minute rollup rows (``SQLiteStore.rollup`` columns) as points of
    ``<measurement>_rollup`` at the bucket's start. Rewriting a minute replaces it (same series
    and time), so a minute forwarded while it filled is made whole later. The good samples'
    first/last time and min/max are left out without good samples (line protocol has no NaN);
    a reader takes them as NaN whenever ``good`` is 0."""
    if frame.empty:
        return []
    key = escape_tag(measurement + "_rollup") + scope_tags(scope)
    out = []
    cols = [frame[c].tolist() for c in ("tag", "bucket", "rows", "good", "manual", "first_ts",
                                        "last_ts", "vsum", "vmin", "vmax")]
    for tag, b, rows, good, manual, f, la, vs, vmin, vmax in zip(*cols):
        fields = f"rows={int(rows)}i,good={int(good)}i,manual={int(manual)}i,vsum={float(vs)!r}"
        if good and f == f:
            fields += (f",first_ts={int(f)}i,last_ts={int(la)}i,vmin={float(vmin)!r},"
                       f"vmax={float(vmax)!r}")
        out.append(f"{key},tag={escape_tag(tag)} {fields} {int(b)}")
    return out


def meta_lines(items: dict[str, str], measurement: str = "cpaudit",
               scope: dict[str, str] | None = None) -> list[str]:
    """The campaign's own records (start, end, name, its configuration …) as points of
    ``<measurement>_meta``: one series per key, the text in parts of 16 k characters at times
    0, 1, 2 … (a field holds at most 64 KiB), ``parts`` on the first; rewriting replaces."""
    key = escape_tag(measurement + "_meta") + scope_tags(scope)
    out = []
    for k, v in items.items():
        parts = [v[i:i + 16_384] for i in range(0, len(v), 16_384)] or [""]
        for i, part in enumerate(parts):
            extra = f",parts={len(parts)}i" if i == 0 else ""
            out.append(f"{key},key={escape_tag(k)} value={field_string(part)}{extra} {i}")
    return out


def status_lines(status: dict[str, float], ts: int, measurement: str = "cpaudit",
                 scope: dict[str, str] | None = None) -> list[str]:
    """The edge box's forwarding status (backlog, forwarded, the newest sample's time …) as one
    point of ``<measurement>_edge``: the central view says how far behind each box is."""
    fields = ",".join(f"{escape_tag(k)}={float(v)!r}" for k, v in sorted(status.items())
                      if math.isfinite(float(v)))
    if not fields:
        return []
    return [f"{escape_tag(measurement + '_edge')}{scope_tags(scope)} {fields} {int(ts)}"]


def change_line(change: "Change", measurement: str = "cpaudit",
                scope: dict[str, str] | None = None) -> str:
    """A change asked for centrally (:mod:`store.changes`) as one point of
    ``<measurement>_changes``: its id a tag (one series per change), the rest fields, at the
    time it was asked for."""
    import json
    body = json.dumps(change.body, sort_keys=True, ensure_ascii=False)
    seen = json.dumps(change.seen, sort_keys=True)
    return (f"{escape_tag(measurement + '_changes')}{scope_tags(scope)},id={escape_tag(change.id)} "
            f"kind={field_string(change.kind)},body={field_string(body)},"
            f"by={field_string(change.by)},record={field_string(change.record)},"
            f"seen={field_string(seen)},sig={field_string(change.sig)} {int(change.at)}")
