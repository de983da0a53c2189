"""HJ 212 packets: framing, CRC, parsing and answers. Pure (no I/O, no clock); every refusal is an
:class:`Hj212Error` with a ``kind`` so the server can count and log it once per kind, and nothing
else ever leaves :func:`parse_frame`, :func:`parse_line` or :meth:`Framer.feed`.

    Hj212Error (kind)
    ├── framing                no ``##dddd`` header where a packet must start, no CR LF tail
    ├── length                 the 4-digit length does not reach the tail
    ├── crc                    the CRC does not match the device's variant (collector.hj212_crc)
    ├── encoding               the data segment is not UTF-8
    ├── header                 QN/ST/CN/PW/MN/Flag/CP missing or malformed
    ├── cp                     the CP area is not ``&&...&&``
    └── encrypted_unsupported  an HJ 212-2025 packet whose CP is encrypted (SM4, see below)

Sources (shared/reference/devices.md cites the clauses and the repositories):
- Framing ``##`` + 4-digit length + data segment + 4 hex CRC + CR LF: HJ 212-2017 6.3.1, Table 2.
  The length is counted in bytes of the UTF-8 data segment (HJ 212-2025 as third-party notes
  report it, devices.md 2.5; srdgame/lua-HJ212 packet.lua does the same); a 2017 logger counting
  characters (caoyiliang/HJ212 GB.cs) is accepted when its count matches the decoded characters.
  Segments over the 1024 limit are accepted (real loggers send 1025 and 1623 bytes, P7); a LF-only
  tail is accepted (P8).
- CRC: HJ 212-2017 Appendix A (the register is shifted right by 8 before each byte is XORed in;
  checked vectors in devices.md 1.8); per device, the CRC-16/MODBUS with its two bytes swapped that
  some loggers send (P1, srdgame/lua-HJ212 crc_serial_le.lua) or plain CRC-16/MODBUS. Hex case is
  ignored (P2).
- Fields: Table 3; ``Flag`` bits ``V5..V0 D A`` (1.5): version 0 = HJ/T 212-2005, 1 = 2017,
  2 = 2025 (caoyiliang/HJ212 Enum.cs ``Version``: 0, 4, 8). A = 1 asks for an answer, D = 1 means
  PNUM/PNO follow. Typos of the standard's own examples are tolerated (P14): ``,`` between header
  fields, ``Flag=5CP=&&`` without its ``;``.
- 2005-style packets (2.3): no QN, no Flag, old factor codes (``B01``, ``011``, ``S01``); keys are
  compared whole (``01`` is not ``S01``, P13). ``DataTime`` of 14 or 17 digits (P10).
- HJ 212-2025 re-sent data: ``RF=1`` (devices.md 2.5, from third-party notes, not the text) is read
  in the header or at the top of the CP area and marks the packet ``resent``.
- HJ 212-2025 SM4 encryption of the CP segment for data commands (CN 2000-2999, 1014, 3020; ECB, no
  padding, devices.md 2.5): the key comes from a key exchange (CN 1014, "SK") whose procedure and
  key derivation no public source we could read establishes (caoyiliang/HJ212 @c31e466 sends the
  1014 request but implements no SM4). An encrypted CP is refused as ``encrypted_unsupported``
  rather than guessed at.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from cpaudit.collector.hj212_crc import (CRC_VARIANTS, _crc_hj212_reference, crc_hex,  # noqa: F401
                                 crc_hj212, crc_modbus)
from cpaudit.store import Quality, Reason

HEADER = b"##"
MAX_SEGMENT = 9999              # what 4 digits can say; over 1024 is tolerated (P7)
TAIL = b"\r\n"

VERSION_2005, VERSION_2017, VERSION_2025 = 2005, 2017, 2025
_VERSION_BITS = {0: VERSION_2005, 1: VERSION_2017, 2: VERSION_2025}     # Flag >> 2
VERSION_FLAG = {v: b << 2 for b, v in _VERSION_BITS.items()}            # 0, 4, 8

FLAG_ACK = 0x01                 # A: the command must be answered
FLAG_SPLIT = 0x02               # D: PNUM/PNO follow

# command codes the server meets (Table 9; 9015 heartbeat from HJ 212-2025, caoyiliang Enum.cs)
DATA_CNS = frozenset({"2011", "2051", "2061", "2031"})
UPLOAD_CNS = DATA_CNS | frozenset({"2021", "2041", "2081", "1011", "1061", "1063", "3015",
                                   "3017", "3018", "3019", "3020", "2013", "2062", "2111"})
NOTIFY_CNS = frozenset({"1013", "2012", "2022"})
HEARTBEAT_CNS = frozenset({"9015", "8013"})       # 8013: the 2005 heartbeat seen in captures (2.5)
ANSWER_CNS = frozenset({"9011", "9012", "9013", "9014"})
KEY_EXCHANGE_CN = "1014"

# System codes ST (HJ 212-2017 Table 5, devices.md 1.9); 44 and 45 from HJ 212-2025 as third-party
# notes report it (devices.md 2.5, not verified against the text). Any ST is accepted: the tag
# map goes by MN and factor code; this table is for people reading captures.
SYSTEM_CODES = {
    "21": "surface water quality", "22": "air quality", "23": "acoustic environment quality",
    "24": "groundwater quality", "25": "soil quality", "26": "seawater quality",
    "27": "VOC monitoring", "31": "flue-gas pollution source", "32": "surface-water pollution "
    "source", "33": "groundwater pollution source", "34": "marine pollution source",
    "35": "soil pollution source", "36": "noise source", "37": "vibration source",
    "38": "radioactive source", "39": "construction-site dust", "41": "electromagnetic source",
    "44": "electricity monitoring of production and treatment facilities (分表计电, 2025) "
    "[unverified]", "45": "key production conditions (2025) [unverified]",
    "51": "flue-gas process monitoring", "52": "wastewater process monitoring",
    "91": "system interaction",
}

# QnRtn (Table 7) and ExeRtn (Table 6)
QNRTN_READY, QNRTN_REJECTED, QNRTN_PW, QNRTN_MN, QNRTN_CRC, QNRTN_CN = 1, 2, 3, 4, 9, 8
EXERTN_OK = 1

# Data flags (HJ 212-2017 Table 8, devices.md 1.7) -> sample quality; the reason keeps the flag
# (store.Reason.from_hj212 maps it back). No further letters are established for 2017 or 2025
# from public sources: any other letter is stored uncertain with reason ``hj212_flag`` and stays
# readable in the raw packet.
FLAG_QUALITY: dict[str, tuple[Quality, Reason]] = {
    "N": (Quality.GOOD, Reason.NONE),
    "F": (Quality.BAD, Reason.STOPPED),            # instrument stopped (停运)
    "M": (Quality.BAD, Reason.MAINTENANCE),        # maintenance
    "S": (Quality.UNCERTAIN, Reason.MANUAL),       # manually entered set value
    "D": (Quality.BAD, Reason.FAULT),              # instrument fault
    "C": (Quality.BAD, Reason.CALIBRATION),        # calibrating
    "T": (Quality.UNCERTAIN, Reason.OVER_RANGE),   # above the measuring upper limit
    "B": (Quality.BAD, Reason.INSTRUMENT_COMM),    # instrument-to-logger communication fault
}
OTHER_FLAG = (Quality.UNCERTAIN, Reason.HJ212_FLAG)

VALUE_FIELDS = ("Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax")


class Hj212Error(ValueError):
    def __init__(self, kind: str, detail: str, raw: bytes = b"") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.raw = kind, detail, raw


# -- framing --------------------------------------------------------------------------------------
class Framer:
    """Cuts a TCP byte stream into packets, whatever the reads' boundaries (P9): by the declared
    length, not by reads and not by CR LF alone. :meth:`feed` returns, in order, each complete
    packet's bytes or the :class:`Hj212Error` of the bytes it had to drop (with them as ``raw``)."""

    def __init__(self, max_buffer: int = 6 + MAX_SEGMENT + 6) -> None:
        self.buf = bytearray()
        self.max_buffer = max_buffer

    def feed(self, data: bytes) -> list[bytes | Hj212Error]:
        self.buf += data
        out: list[bytes | Hj212Error] = []
        while True:
            item = self._next()
            if item is None:
                break
            out.append(item)
        if len(self.buf) > self.max_buffer:       # no packet can be this long: drop it all
            raw = bytes(self.buf)
            self.buf.clear()
            out.append(Hj212Error("framing", f"{len(raw)} bytes without a packet end", raw))
        return out

    def _drop(self, n: int, kind: str, detail: str) -> Hj212Error:
        raw = bytes(self.buf[:n])
        del self.buf[:n]
        return Hj212Error(kind, detail, raw)

    def _next(self) -> bytes | Hj212Error | None:
        buf = self.buf
        if not buf:
            return None
        start = buf.find(HEADER)
        if start != 0:
            if start < 0:
                # bytes outside a packet: dropped as one piece through their line end (or when
                # the next header comes), whatever the reads' boundaries
                if buf.strip(b"\r\n") == b"":      # stray line ends between packets
                    buf.clear()
                    return None
                nl = buf.find(b"\n")
                if nl < 0:
                    return None
                return self._drop(nl + 1, "framing", "bytes outside a packet")
            if buf[:start].strip(b"\r\n") == b"":
                del buf[:start]
            else:
                return self._drop(start, "framing", "bytes before ##")
        if len(buf) < 6:
            return None
        digits = bytes(buf[2:6])
        nl = buf.find(b"\n", 2)
        nxt = buf.find(HEADER, 2)
        if not digits.isdigit():
            if nl < 0 and nxt < 0:
                return None                 # drop it whole once its end is seen
            end = _first_end(nl, nxt, len(buf))
            return self._drop(end, "framing", f"length field {digits!r} is not 4 digits")
        n = int(digits)
        end = 6 + n + 4
        if len(buf) >= end + 2 and buf[end:end + 2] == TAIL:
            return self._take(end + 2)
        if len(buf) >= end + 1 and buf[end:end + 1] == b"\n":     # LF only (P8)
            return self._take(end + 1)
        # the declared length does not meet the tail: a line end or the next header before it
        # (or where the tail should be) marks a packet with a wrong length
        # (a line end inside the declared length counts only where it looks like a packet's
        # tail, CRC + CR LF: text of an -Info field may hold a bare line end)
        while 0 <= nl < end and not _looks_like_tail(buf, nl):
            nl = buf.find(b"\n", nl + 1)
        if (0 <= nl < end) or (0 <= nl and len(buf) >= end + 2) or (0 <= nxt < end + 1):
            stop = _first_end(nl, nxt, len(buf))
            pkt = bytes(buf[:stop])
            if _chars_match(pkt, n):
                del buf[:stop]
                return pkt
            held = max(0, len(pkt.rstrip(TAIL)) - 10)
            return self._drop(stop, "length", f"declared {n} bytes, the line holds {held}")
        if len(buf) >= end + 2:
            return self._drop(end + 2, "framing", "no CR LF after the CRC")
        return None

    def _take(self, n: int) -> bytes:
        pkt = bytes(self.buf[:n])
        del self.buf[:n]
        return pkt


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _looks_like_tail(buf: bytearray, nl: int) -> bool:
    r"""``XXXX\r\n`` (or ``XXXX\n``) ends at ``nl``."""
    j = nl - 1 if nl >= 1 and buf[nl - 1] == 0x0D else nl
    return j >= 10 and all(c in _HEX for c in buf[j - 4:j])


def _first_end(nl: int, nxt: int, size: int) -> int:
    """Where a bad packet ends: after its line end, or before the next header, else all."""
    cands = [x + 1 for x in (nl,) if x >= 0] + [x for x in (nxt,) if x >= 0]
    return min(cands) if cands else size


def _chars_match(pkt: bytes, n: int) -> bool:
    """A logger that counts characters instead of bytes (non-ASCII text): accept when the
    decoded segment has ``n`` characters (P7)."""
    body = pkt.rstrip(b"\r\n")
    if len(body) < 10 or body[:2] != HEADER:
        return False
    try:
        return len(body[6:-4].decode("utf-8")) == n and len(body[6:-4]) != n
    except UnicodeDecodeError:
        return False


# -- packets --------------------------------------------------------------------------------------
class Value(NamedTuple):
    code: str                   # factor code: a21026, w01018, B01, 011 ...
    field: str                  # Rtd, Avg, Min, Max, Cou, ZsRtd ...
    value: float                # NaN when the text is not a number
    flag: str | None            # the factor's -Flag, None when the packet carries none


@dataclass
class Packet:
    segment: str
    crc: str
    qn: str | None
    st: str | None
    cn: str | None
    pw: str | None
    mn: str | None
    flag: int | None
    pnum: int | None = None
    pno: int | None = None
    cp: dict[str, str] = field(default_factory=dict)
    values: list[Value] = field(default_factory=list)
    data_time: dt.datetime | None = None      # naive, the logger's local time
    resent: bool = False

    @property
    def version(self) -> int:
        if self.flag is None:
            return VERSION_2005
        return _VERSION_BITS.get(self.flag >> 2, VERSION_2025 if self.flag >> 2 > 2 else 0)

    @property
    def wants_answer(self) -> bool:
        # test bit A, not "Flag == 1" (P3)
        return self.flag is not None and bool(self.flag & FLAG_ACK)


def number(text: str) -> float:
    """A CP value as a float; NaN for anything that is not a plain finite number (no ``nan``,
    ``inf``, ``1_000``, hex)."""
    if len(text) > 40 or "_" in text:
        return math.nan
    try:
        v = float(text)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def parse_time(text: str) -> dt.datetime | None:
    """``YYYYMMDDhhmmss`` (14 digits) or with ``zzz`` milliseconds (17, P10); None otherwise."""
    t = text.strip()
    if len(t) not in (14, 17) or not t.isdigit():
        return None
    try:
        d = dt.datetime(int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]),
                        int(t[12:14]))
    except ValueError:
        return None
    return d.replace(microsecond=int(t[14:17]) * 1000) if len(t) == 17 else d


def check_crc(frame: bytes, variant: str) -> tuple[bytes, str]:
    """The data segment of a framed packet after its CRC is checked (``variant`` may be
    ``auto``: any of the three)."""
    body = frame.rstrip(b"\r\n")
    if len(body) < 10 or body[:2] != HEADER:
        raise Hj212Error("framing", "shorter than ##dddd + CRC", frame)
    seg, crc = body[6:-4], body[-4:]
    try:
        got = crc.decode("ascii").upper()
    except UnicodeDecodeError:
        raise Hj212Error("crc", "CRC field is not hex", frame) from None
    variants = CRC_VARIANTS if variant == "auto" else (variant,)
    for v in variants:
        if crc_hex(seg, v) == got:
            return seg, got
    raise Hj212Error("crc", f"CRC {got} does not match ({variant}: {crc_hex(seg, variants[0])})",
                     frame)


def parse_frame(frame: bytes, crc_variant: str = "hj212") -> Packet:
    """One framed packet (``##dddd...CRC\\r\\n``) to a :class:`Packet`."""
    try:
        seg, crc = check_crc(frame, crc_variant)
        try:
            text = seg.decode("utf-8")
        except UnicodeDecodeError:
            raise Hj212Error("encoding", "data segment is not UTF-8", frame) from None
        return parse_segment(text, crc)
    except Hj212Error as e:
        if not e.raw:
            e.raw = frame
        raise
    except Exception as e:  # noqa: BLE001 - the boundary: nothing else may escape
        raise Hj212Error("header", f"unparsable packet ({type(e).__name__})", frame) from e


def parse_line(line: bytes, crc_variant: str = "hj212") -> Packet:
    """A packet as captures log it, one a line: framed by its length; more than one packet or
    bytes around it on the line are an error."""
    f = Framer()
    items = f.feed(line if line.endswith(b"\n") else line + TAIL)
    items += f.feed(b"")
    if f.buf:
        items.append(Hj212Error("framing", "incomplete packet", bytes(f.buf)))
    if not items:
        raise Hj212Error("framing", "empty line", line)
    first = items[0]
    if isinstance(first, Hj212Error):
        raise first
    if len(items) > 1:
        raise Hj212Error("framing", "more than one packet on the line", line)
    return parse_frame(first, crc_variant)


_HEAD_SPLIT = re.compile(r"[;,]")


def _split_header(head: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _HEAD_SPLIT.split(head):      # ',' between header fields: the standard's typo
        if not part:
            continue
        k, sep, v = part.partition("=")
        if not sep:
            raise Hj212Error("header", f"header field {part[:20]!r} has no '='")
        out.setdefault(k.strip(), v)
    return out


def parse_segment(text: str, crc: str = "", cp_area: bool = True) -> Packet:
    """A data segment's fields; with ``cp_area=False`` the header only (to answer a packet whose
    CP or CRC is refused)."""
    i = text.find("CP=")
    if i < 0:
        raise Hj212Error("header", "no CP= field")
    h = _split_header(text[:i])
    flag: int | None = None
    if "Flag" in h:
        fv = h["Flag"].strip()
        if not fv.isdigit() or len(fv) > 3 or int(fv) > 255:
            raise Hj212Error("header", f"Flag {fv[:10]!r} is not 0-255")
        flag = int(fv)
    for k in ("ST", "CN"):
        if k not in h:
            raise Hj212Error("header", f"no {k} field")
    if not h["CN"].isdigit():
        raise Hj212Error("header", f"CN {h['CN'][:10]!r} is not a number")
    p = Packet(segment=text, crc=crc, qn=h.get("QN"), st=h["ST"], cn=h["CN"], pw=h.get("PW"),
               mn=h.get("MN"), flag=flag)
    if flag is not None and flag & FLAG_SPLIT:
        pn, po = h.get("PNUM", ""), h.get("PNO", "")
        if not (pn.isdigit() and po.isdigit()) or len(pn) > 4 or len(po) > 4:
            raise Hj212Error("header", "split packet (Flag D) without PNUM/PNO")
        p.pnum, p.pno = int(pn), int(po)
    p.resent = h.get("RF", "").strip() == "1"
    if not cp_area:
        return p
    cp = text[i + 3:]
    if not cp.startswith("&&") or not cp.endswith("&&") or len(cp) < 4:
        if p.version >= VERSION_2025:
            raise Hj212Error("encrypted_unsupported", "an HJ 212-2025 CP that is not plain "
                             "&&...&& text: SM4 encrypted, and the key exchange (CN 1014) is not "
                             "established from public sources")
        raise Hj212Error("cp", "CP is not &&...&&")
    _parse_cp(p, cp[2:-2])
    return p


_KV = re.compile(r"([^;,=]+)=([^;,]*)")        # a CP item: key=value, items split by ; and ,
_EXTRA_FIELDS = frozenset(VALUE_FIELDS) | {"RS", "RT", "Data", "DayData", "NightData"}


def _parse_cp(p: Packet, body: str) -> None:
    flags: dict[str, str] = {}
    raw: list[tuple[str, str, str]] = []
    cp = p.cp
    for k, v in _KV.findall(body):               # an item without '=' is kept in the text only
        k = k.strip()                             # "; LA-Rtd=50.1" in a copied example
        if k in cp:
            continue
        cp[k] = v
        code, dash, fld = k.rpartition("-")
        if not dash or not code:
            continue
        if fld == "Flag":
            flags[code] = v.strip()
        elif fld in _EXTRA_FIELDS:
            raw.append((code, fld, v))
    if cp.get("RF", "").strip() == "1":
        p.resent = True
    if "DataTime" in cp:
        p.data_time = parse_time(cp["DataTime"])
    p.values = [Value(c, f, number(v), flags.get(c)) for c, f, v in raw]


def flag_quality(flag: str | None) -> tuple[Quality, Reason]:
    """A data flag as the sample's quality and reason; no flag counts as normal (minute packets
    and 2005-style factors often carry none, P14/P15)."""
    if flag is None or flag == "":
        return Quality.GOOD, Reason.NONE
    return FLAG_QUALITY.get(flag, OTHER_FLAG)


# -- building packets (answers) -------------------------------------------------------------------
def frame(segment: str, crc_variant: str = "hj212") -> bytes:
    """``##`` + length in UTF-8 bytes + segment + CRC + CR LF."""
    seg = segment.encode("utf-8")
    if len(seg) > MAX_SEGMENT:
        raise ValueError(f"data segment of {len(seg)} bytes does not fit 4 digits")
    return b"##%04d" % len(seg) + seg + crc_hex(seg, crc_variant).encode() + TAIL


def _answer(p: Packet, cn: str, cp: str) -> str:
    """An answer echoes QN (when the request has one, P4), PW and MN; ST=91, Flag = the request's
    version without A (Tables C.14-C.18: Flag=4 on 2017 answers)."""
    parts = []
    if p.qn is not None:
        parts.append(f"QN={p.qn}")
    parts += ["ST=91", f"CN={cn}"]
    if p.pw is not None:
        parts.append(f"PW={p.pw}")
    if p.mn is not None:
        parts.append(f"MN={p.mn}")
    if p.flag is not None:
        parts.append(f"Flag={p.flag & ~(FLAG_ACK | FLAG_SPLIT)}")
    return ";".join(parts) + f";CP=&&{cp}&&"


def answer_9014(p: Packet) -> str:
    """Data answer to an upload whose Flag has A = 1 (CP=&&&&)."""
    return _answer(p, "9014", "")


def answer_9013(p: Packet) -> str:
    """Notification answer (Table C.11)."""
    return _answer(p, "9013", "")


def answer_9011(p: Packet, qnrtn: int) -> str:
    """Request answer with ``QnRtn`` (Table 7)."""
    return _answer(p, "9011", f"QnRtn={qnrtn}")


def answer_9012(p: Packet, exertn: int = EXERTN_OK) -> str:
    """Execution result with ``ExeRtn`` (Table 6)."""
    return _answer(p, "9012", f"ExeRtn={exertn}")


def peek_header(frame_bytes: bytes) -> Packet | None:
    """The header of a packet whose CRC failed, read without trusting it, to answer it (QnRtn=9)
    when it asks for an answer; None when even that cannot be read."""
    try:
        body = frame_bytes.rstrip(b"\r\n")[6:-4].decode("utf-8")
        return parse_segment(body, cp_area=False)
    except (Hj212Error, UnicodeDecodeError, ValueError):
        return None
    except Exception:  # noqa: BLE001
        return None


# -- captures (cpaudit hj212 decode) --------------------------------------------------------------
def decode_line(n: int, line: bytes, crc_variant: str = "hj212",
                tz: str = "Asia/Shanghai") -> dict[str, object]:
    """One capture line as the ``cpaudit hj212 decode --json`` object: ``line`` (1-based), ``ok``,
    ``error`` (the refusal's kind, else null), ``qn``, ``st``, ``cn``, ``pw``, ``mn``, ``flag``,
    ``data_time`` (ISO 8601 in ``tz``, the logger's zone), ``values`` ({code, field, value,
    flag}; ``value`` null when the text is not a number)."""
    from zoneinfo import ZoneInfo
    out: dict[str, object] = {"line": n, "ok": False, "error": None, "qn": None, "st": None,
                              "cn": None, "pw": None, "mn": None, "flag": None,
                              "data_time": None, "values": []}
    text = line.strip(b" \t\r\n")
    try:
        if not text:
            raise Hj212Error("framing", "empty line")
        p = parse_line(text + TAIL, crc_variant)
    except Hj212Error as e:
        out["error"] = e.kind
        out["detail"] = e.detail
        return out
    out.update(ok=True, qn=p.qn, st=p.st, cn=p.cn, pw=p.pw, mn=p.mn, flag=p.flag,
               data_time=None if p.data_time is None
               else p.data_time.replace(tzinfo=ZoneInfo(tz)).isoformat(),
               values=[{"code": v.code, "field": v.field,
                        "value": v.value if math.isfinite(v.value) else None, "flag": v.flag}
                       for v in p.values])
    return out
