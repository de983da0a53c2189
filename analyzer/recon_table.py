"""Parse a hand-typed table of stream totals for :func:`analyzer.reconcile.reconcile`.

CSV with the header ``stream,from,to,value,sigma``; a blank value is an unmeasured stream; a node
named ``ENV`` is the system boundary. Pure: takes the text, returns streams or raises with the line.
"""
from __future__ import annotations

import csv
import io
import math

from analyzer.reconcile import ReconcileError, StreamData

HEADER = ["stream", "from", "to", "value", "sigma"]


def parse_table(text: str, name: str = "<table>") -> list[StreamData]:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ReconcileError(f"{name}: empty file; expected the header {','.join(HEADER)}")
    head = [c.strip().lower() for c in rows[0]]
    if head != HEADER:
        raise ReconcileError(f"{name}:1: header must be {','.join(HEADER)}, got {','.join(head)}")
    out = []
    for lineno, r in enumerate(rows[1:], start=2):
        if len(r) != 5:
            raise ReconcileError(f"{name}:{lineno}: expected 5 columns, got {len(r)}")
        sid, src, dst, val, sig = (c.strip() for c in r)
        if not sid or not src or not dst:
            raise ReconcileError(f"{name}:{lineno}: stream, from and to are required")

        def num(text: str, what: str) -> float | None:
            if text == "":
                return None
            try:
                v = float(text)
            except ValueError:
                raise ReconcileError(f"{name}:{lineno}: {what} {text!r} is not a number") from None
            if not math.isfinite(v):
                raise ReconcileError(f"{name}:{lineno}: {what} must be finite")
            return v
        value, sigma = num(val, "value"), num(sig, "sigma")
        if value is not None and (sigma is None or sigma <= 0):
            raise ReconcileError(f"{name}:{lineno}: stream {sid}: a measured value needs sigma > 0")
        out.append(StreamData(sid, src, dst, value, sigma if value is not None else None))
    return out
