"""Parse a hand-typed table of stream totals for :func:`analyzer.reconcile.reconcile`.

CSV with the header ``stream,from,to,value,sigma``; a blank value is an unmeasured stream; a node
named ``ENV`` is the system boundary. Pure: takes the text (or the file's bytes, see
:func:`decode_table`), returns streams or raises :class:`ReconcileError` naming the line and the
reason.

What spreadsheets write is read as it is: UTF-8 with or without a byte-order mark (Excel's
"CSV UTF-8"), UTF-16 with its mark (Excel's "Unicode text"), and, when the bytes are not UTF-8,
GB18030 (the superset of GBK that Chinese Excel writes as "CSV") or Windows-1252 (Latin-1
Excel), told apart as :func:`decode_table` says. Which one was used is returned, so the caller can say so. The delimiter is the
header's: a comma, or a semicolon or a tab (European Excel, "Unicode text").

σ must describe a meter (the rule, :func:`sigma_problem`): for a reading x with the table's
typical magnitude s = the median |x| of its readings, σ must lie within
[SIGMA_REL_MIN · max(|x|, s), SIGMA_REL_MAX · max(|x|, s)]. Below, σ claims a meter better than
1 ppm (the best flow meters are ~0.05 %, 500 ppm): the balance would be solved as if it were
exact and push every error onto the others (σ = 1e-300 made V_r singular). Above, the reading
says nothing the balance could use (σ = 1e308 gave "χ² = 0.000, accepted"): leave its value
blank, as unmeasured. And the largest σ of the table may be at most SIGMA_SPREAD_MAX times the
smallest (their squares, the variances, then stay within a double's precision of each other).
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import statistics

from cpaudit.analyzer.reconcile import SIGMA_MIN, VALUE_MAX, ReconcileError, StreamData

HEADER = ["stream", "from", "to", "value", "sigma"]
MAX_BYTES = 32 * 1024 * 1024     # [B] a table above this is refused (10,000 streams: ~0.5 MB)
MAX_FIELD = 4096                 # [characters] a longer field is refused with its line
SIGMA_REL_MIN = 1e-6             # σ / max(|x|, median |x|) below this: no meter is so precise
SIGMA_REL_MAX = 10.0             # above this: the reading tells the balance nothing
# the largest σ over the smallest: beyond 1e8 the variances differ by more than 1e16, the
# precision of a double, and the small ones vanish from the sums the balance is solved with
SIGMA_SPREAD_MAX = 1e8


def decode_table(raw: bytes, name: str = "<table>") -> tuple[str, str]:
    """The table's text and the encoding it was read with (module docstring)."""
    if len(raw) > MAX_BYTES:
        raise ReconcileError(f"{name}: larger than {MAX_BYTES // 2**20} MiB: not a table of "
                             "stream totals")
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError as e:
                line = raw[:e.start].count(b"\n") + 1
                raise ReconcileError(f"{name}:{line}: not {enc} text although it starts with "
                                     "its byte-order mark") from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    gb: str | None
    try:
        gb = raw.decode("gb18030")
    except UnicodeDecodeError:
        gb = None
    # Latin-1 text often decodes as GB18030 too ("Dépôt": 0xE9 0x70 is a GBK character), but
    # with ASCII bytes inside its characters; the characters Chinese text is made of (GB 2312)
    # have both bytes above 0x80. So GB18030 first when no character borrows an ASCII byte.
    if gb is not None and all(b >= 0x80 for ch in gb if ord(ch) > 0x7F
                              for b in ch.encode("gb18030")):
        return gb, "gb18030"
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        pass
    if gb is not None:
        return gb, "gb18030"
    # cp1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D): Latin-1 reads them all
    return raw.decode("latin-1"), "latin-1"


def sigma_problem(value: float, sigma: float, typical: float) -> str | None:
    """Why ``sigma`` cannot be a meter's standard deviation for ``value`` in a table whose
    readings are typically ``typical`` (module docstring), or None."""
    scale = max(abs(value), typical)
    if sigma < SIGMA_MIN:
        return f"sigma {sigma:g} is below {SIGMA_MIN:g}: its square cannot be computed with"
    if scale == 0:
        return None                       # every reading is 0: σ sets the unit, any will do
    if sigma < SIGMA_REL_MIN * scale:
        return (f"sigma {sigma:g} is below {SIGMA_REL_MIN:g} of {scale:g} (the reading, or the "
                "table's median reading): no meter is that precise, and the balance would "
                "take it as exact")
    if sigma > SIGMA_REL_MAX * scale:
        return (f"sigma {sigma:g} is over {SIGMA_REL_MAX:g} times {scale:g} (the reading, or "
                "the table's median reading): such a reading tells the balance nothing; leave "
                "its value blank (unmeasured)")
    return None


def parse_table(text: str, name: str = "<table>") -> list[StreamData]:
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delim = "," if "," in first else ";" if ";" in first else "\t" if "\t" in first else ","
    reader = csv.reader(io.StringIO(text.replace("\0", "\ufffd")), delimiter=delim)
    rows: list[tuple[int, list[str]]] = []
    while True:
        try:
            r = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise ReconcileError(f"{name}:{reader.line_num}: not a CSV row ({e}): an unclosed "
                                 "quote?") from None
        if any(len(c) > MAX_FIELD for c in r):
            raise ReconcileError(f"{name}:{reader.line_num}: a field of more than {MAX_FIELD:,}"
                                 " characters: an unclosed quote, or not a table of totals?")
        if any(c.strip() for c in r):
            rows.append((reader.line_num, r))
    if not rows:
        raise ReconcileError(f"{name}:1: empty file; expected the header {','.join(HEADER)}")
    hline, hrow = rows[0]
    head = [c.strip().lower() for c in hrow]
    if head != HEADER:
        raise ReconcileError(f"{name}:{hline}: header must be {','.join(HEADER)}, got "
                             f"{delim.join(head)[:200]}")
    out: list[StreamData] = []
    where: list[int] = []
    seen: dict[str, int] = {}
    for lineno, r in rows[1:]:
        if len(r) != 5:
            raise ReconcileError(f"{name}:{lineno}: expected 5 columns, got {len(r)}")
        sid, src, dst, val, sig = (c.strip() for c in r)
        if not sid or not src or not dst:
            raise ReconcileError(f"{name}:{lineno}: stream, from and to are required")
        if sid in seen:
            raise ReconcileError(f"{name}:{lineno}: stream {sid} again (first on line "
                                 f"{seen[sid]})")
        seen[sid] = lineno
        if src == dst:
            raise ReconcileError(f"{name}:{lineno}: stream {sid} starts and ends at {src}")

        def num(text: str, what: str) -> float | None:
            if text == "":
                return None
            try:
                v = float(text)
            except ValueError:
                raise ReconcileError(f"{name}:{lineno}: {what} {text[:40]!r} is not a "
                                     "number") from None
            if not math.isfinite(v):
                raise ReconcileError(f"{name}:{lineno}: {what} must be finite")
            if what == "value" and abs(v) > VALUE_MAX:
                raise ReconcileError(f"{name}:{lineno}: {what} {v:g} is beyond {VALUE_MAX:g}")
            return v
        value, sigma = num(val, "value"), num(sig, "sigma")
        if value is not None and (sigma is None or sigma <= 0):
            raise ReconcileError(f"{name}:{lineno}: stream {sid}: a measured value needs sigma > 0")
        out.append(StreamData(sid, src, dst, value, sigma if value is not None else None))
        where.append(lineno)
    readings = [abs(s.value) for s in out if s.value is not None]
    typical = statistics.median(readings) if readings else 0.0
    for s, lineno in zip(out, where):
        if s.value is not None and s.sigma is not None:
            why = sigma_problem(s.value, s.sigma, typical)
            if why:
                raise ReconcileError(f"{name}:{lineno}: stream {s.id}: {why}")
    sigmas = [(s.sigma, ln, s.id) for s, ln in zip(out, where) if s.sigma is not None]
    if sigmas:
        lo, hi = min(sigmas), max(sigmas)
        if hi[0] > SIGMA_SPREAD_MAX * lo[0]:
            raise ReconcileError(f"{name}:{hi[1]}: stream {hi[2]}: sigma {hi[0]:g} is over "
                                 f"{SIGMA_SPREAD_MAX:g} times the sigma {lo[0]:g} of stream "
                                 f"{lo[2]} (line {lo[1]}): variances so far apart cannot be "
                                 "solved together in double precision")
    return out
