"""HJ 212 source: an asyncio TCP server the data loggers connect to (the logger is the client,
shared/reference/devices.md 1.2), many at once; loggers sharing a listening address are told apart
by their MN. A push source (:class:`collector.sources.PushSource`): :meth:`Hj212Server.samples`
is the async iterator of what the packets held, each batch with the answers to send once it is
committed.

Per packet, in order (collector.hj212 parses; this module decides and answers):
- every packet is kept raw with its receive time and its status (``ok`` or why it was refused) in
  the store's ``raw_packet`` table (:meth:`store.SQLiteStore.write_raw`; for another store a
  JSON-lines side file), so a disputed value can be traced to the wire;
- framing, length, CRC, encoding, header errors, an unknown MN, a wrong password: counted per kind
  (per logger when the MN is known, else per server), logged once per kind, never stored. When the
  packet asks for an answer (Flag A = 1) and its header can be read, it gets 9011 with the QnRtn of
  Table 7: 9 CRC wrong, 4 MN wrong, 3 PW wrong. (The standard stops processing a command whose CRC
  fails, 6.3.1; Table 7's code 9 is how the receiver says so.)
- data 2011/2051/2061/2031: each (CN, factor code, field) the logger's config maps becomes a sample
  of its tag, stamped with ``DataTime`` in the logger's time zone; the data flag becomes quality
  and reason (collector.hj212.FLAG_QUALITY). A ``DataTime`` off the receive time by more than the
  logger's ``clock_tolerance_s`` (2011; for 2051/2061/2031 after the end of the period, or older
  than :data:`MAX_BACKLOG_S`) is not trusted: the sample is stamped with the receive time and is
  uncertain with reason ``sender_clock`` (a logger whose clock says 2000-02-02, devices.md 2.5).
  A value the config does not map is counted (``unmapped``, not an error) and stays in the raw
  packet only.
- answers (6.5, Appendix C): 9014 to an upload or a heartbeat (9015) whose Flag has A = 1 — after
  its samples are committed to the store, so an acknowledged packet is never lost; 9013 to a
  notification (1013, 2012, 2022); 9011 QnRtn=2 (rejected) to a key-exchange request (1014,
  HJ 212-2025), since SM4 is not supported; 9011 QnRtn=8 (CN wrong) to another command that asks
  for an answer. Answers use the logger's CRC variant. The server sends no 9012: it executes no
  request of the logger's.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
from collections import Counter
from typing import Any, AsyncGenerator
from zoneinfo import ZoneInfo

from cpaudit.collector.clock import Clock
from cpaudit.collector.hj212 import (ANSWER_CNS, DATA_CNS, HEARTBEAT_CNS, KEY_EXCHANGE_CN, NOTIFY_CNS,
                             QNRTN_CN, QNRTN_CRC, QNRTN_MN, QNRTN_PW, QNRTN_REJECTED, UPLOAD_CNS,
                             Framer, Hj212Error, Packet, answer_9011, answer_9013, answer_9014,
                             flag_quality, frame, parse_frame, peek_header)
from cpaudit.collector.sources import Outbox, Reading, Rows
from cpaudit.config.models import Hj212Device, Hj212Factor
from cpaudit.store import Quality, Reason
from cpaudit.store.keys import health_tag

log = logging.getLogger("cpaudit.collector.hj212")

READ_SIZE = 65536
MAX_BACKLOG_S = 7 * 86400.0         # older aggregated data than this are not trusted
RAW_FLUSH_S = 0.5


class Logger:
    """One configured data logger: its tag map and its health."""

    def __init__(self, cfg: Hj212Device, tz: str) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.timezone or tz)
        self.map: dict[tuple[str, str, str], Hj212Factor] = {
            (f.cn, f.code, f.field): f for f in cfg.factors}
        self.connections = 0
        self.connects = 0
        self.last_packet_ns: int | None = None
        self.packets: Counter[str] = Counter()      # accepted packets by CN
        self.errors: Counter[str] = Counter()       # refused packets and values by kind
        self.samples = 0
        self.unmapped: Counter[str] = Counter()     # values the config maps to no tag
        self.clock_offset_ms = math.nan
        self._logged: set[str] = set()

    @property
    def name(self) -> str:
        return self.cfg.name

    def count(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s (MN %s): %s: %s; further %s are counted in health, not logged",
                        self.name, self.cfg.mn, kind, detail, kind)


class Hj212Server:
    """One listening address and the loggers configured on it."""

    def __init__(self, host: str, port: int, devices: list[Hj212Device], clock: Clock,
                 store: Any, timezone: str, raw_file: str = "hj212-raw.jsonl") -> None:
        self.host, self.port = host, port
        self.clock, self.store = clock, store
        self.out = Outbox()
        self._raw_task: asyncio.Task[None] | None = None
        self.loggers = {d.mn: Logger(d, timezone) for d in devices}
        self.errors: Counter[str] = Counter()          # not attributable to a configured logger
        self._logged: set[str] = set()
        self.raw: list[tuple[int, str, str, str, bytes]] = []
        self.raw_file = raw_file
        self.raw_written = 0
        self.received = 0
        self.server: asyncio.AbstractServer | None = None
        self.bound_port: int | None = None
        self._raw_lock = asyncio.Lock()

    def loggers_names(self) -> list[str]:
        return [lg.name for lg in self.loggers.values()]

    @property
    def label(self) -> str:
        return f"hj212 {self.host}:{self.port}"

    def _count(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s: %s: %s; further %s are counted, not logged", self.label, kind,
                        detail, kind)

    # -- one packet ------------------------------------------------------------------------
    def handle(self, item: bytes | Hj212Error, peer: str, send: Any) -> Logger | None:
        """Keep, judge, store and answer one framed packet (or a framing error); the configured
        logger it came from, if any."""
        rx = self.clock.now_ns()
        self.received += 1
        if isinstance(item, Hj212Error):
            self.raw.append((rx, peer, "", item.kind, item.raw))
            self._count(item.kind, f"{item.detail} (from {peer})")
            return None
        lg = self.loggers.get(_mn_of(item))
        head = None
        if lg is None:
            head = peek_header(item)
            lg = self.loggers.get(head.mn or "") if head is not None else None
        if lg is None:
            kind = "unknown_mn" if head is not None else "header"
            self.raw.append((rx, peer, "", kind, item))
            self._count(kind, f"MN {head.mn!r} is not configured here (from {peer})"
                        if head is not None else f"unreadable header (from {peer})")
            if head is not None and head.wants_answer:
                send(frame(answer_9011(head, QNRTN_MN)))
            return None
        try:
            p = parse_frame(item, lg.cfg.crc)
        except Hj212Error as e:
            self.raw.append((rx, peer, lg.name, e.kind, item))
            lg.count(e.kind, e.detail)
            head = head or peek_header(item)
            if e.kind == "crc" and head is not None and head.wants_answer:
                send(frame(answer_9011(head, QNRTN_CRC), lg.cfg.crc))
            return lg
        if lg.cfg.password is not None and p.pw != lg.cfg.password:
            self.raw.append((rx, peer, lg.name, "password", item))
            lg.count("password", f"PW does not match (from {peer})")
            if p.wants_answer:
                send(frame(answer_9011(p, QNRTN_PW), lg.cfg.crc))
            return lg
        self.raw.append((rx, peer, lg.name, "ok", item))
        if p.version != lg.cfg.version and "version" not in lg._logged:
            lg._logged.add("version")      # accepted: the parser reads each version
            log.warning("%s: sends HJ 212-%d packets, configured as %d", lg.name, p.version,
                        lg.cfg.version)
        lg.last_packet_ns = rx
        cn = p.cn or ""
        lg.packets[cn] += 1
        crc = lg.cfg.crc
        if cn in DATA_CNS:
            tags, values, others, ts = self._readings(lg, p, rx)
            lg.samples += len(tags) + len(others)
            if tags:            # good values as plain lists: the writer's fast path
                self.out.put_rows(tags, [ts] * len(tags), values)
            if others:
                self.out.put_readings(ts, others)
            if p.wants_answer:         # after the commit: an acknowledged packet is stored
                ans = frame(answer_9014(p), crc)
                self.out.put_rows([], [], [], lambda: send(ans))
        elif cn in UPLOAD_CNS or cn in HEARTBEAT_CNS:
            if p.wants_answer:
                send(frame(answer_9014(p), crc))
        elif cn in NOTIFY_CNS:
            send(frame(answer_9013(p), crc))
        elif cn == KEY_EXCHANGE_CN:
            lg.count("encrypted_unsupported", "key exchange (CN 1014) requested; SM4 is not "
                     "supported, answered QnRtn=2")
            send(frame(answer_9011(p, QNRTN_REJECTED), crc))
        elif cn in ANSWER_CNS:
            pass
        else:
            lg.count("unsupported_cn", f"CN {cn} is not handled")
            if p.wants_answer:
                send(frame(answer_9011(p, QNRTN_CN), crc))
        return lg

    def _readings(self, lg: Logger, p: Packet, rx: int
                  ) -> tuple[list[str], list[float], list[Reading], int]:
        """The packet's mapped values: good ones as (tags, values), the others as readings with
        their quality and reason, and the instant they are stamped with [ns UTC]."""
        cn = p.cn or ""
        trusted = p.data_time is not None
        ts = rx
        if p.data_time is not None:
            ts = int(p.data_time.replace(tzinfo=lg.tz).timestamp()) * 1_000_000_000 \
                + p.data_time.microsecond * 1000
            off_s = (rx - ts) / 1e9
            tol = lg.cfg.clock_tolerance_s
            if cn == "2011":
                lg.clock_offset_ms = off_s * 1e3
                trusted = abs(off_s) <= tol or (p.resent and -tol <= off_s <= MAX_BACKLOG_S)
            else:       # DataTime is the period's start: not in the future, not too old
                trusted = -tol <= off_s <= MAX_BACKLOG_S
        if not trusted:
            lg.count("clock", f"DataTime {p.cp.get('DataTime')!r} is not plausible against the "
                     "receive time; stamped with the receive time, uncertain/sender_clock")
            ts = rx
        tags: list[str] = []
        values: list[float] = []
        out: list[Reading] = []
        isfinite = math.isfinite
        for v in p.values:
            f = lg.map.get((cn, v.code, v.field))
            if f is None:
                lg.unmapped[f"{cn} {v.code}-{v.field}"] += 1    # kept in the raw packet only
                continue
            q, r = flag_quality(v.flag)
            if not isfinite(v.value):
                q, r = Quality.BAD, Reason.DECODE
            elif not trusted and q == Quality.GOOD:
                q, r = Quality.UNCERTAIN, Reason.SENDER_CLOCK
            if q == Quality.GOOD:
                tags.append(f.tag)
                values.append(v.value)
            else:
                out.append(Reading(f.tag, v.value, q, r))
        return tags, values, out, ts

    # -- connections -----------------------------------------------------------------------
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pn = writer.get_extra_info("peername")
        peer = f"{pn[0]}:{pn[1]}" if isinstance(pn, tuple) else str(pn)
        framer = Framer()
        seen: set[str] = set()

        def send(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                for item in framer.feed(data):
                    lg = self.handle(item, peer, send)
                    if lg is not None and lg.cfg.mn not in seen:
                        seen.add(lg.cfg.mn)
                        lg.connections += 1
                        lg.connects += 1
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if framer.buf:
                rest = bytes(framer.buf)
                self.raw.append((self.clock.now_ns(), peer, "", "framing", rest))
                self._count("framing", f"connection closed inside a packet (from {peer})")
            for mn in seen:
                self.loggers[mn].connections -= 1
            writer.close()

    async def start(self) -> None:
        try:
            self.server = await asyncio.start_server(self._conn, self.host, self.port,
                                                     limit=READ_SIZE)
        except OSError as e:
            raise OSError(e.errno, f"{self.label}: cannot listen for the HJ 212 loggers "
                          f"({', '.join(self.loggers_names())}): {e.strerror}") from e
        self.bound_port = self.server.sockets[0].getsockname()[1]
        log.info("%s: listening for %d loggers", self.label, len(self.loggers))

    async def samples(self) -> AsyncGenerator[Rows, None]:
        """Serve until :meth:`aclose`: the batches of samples the packets held; raw packets go to
        the store every :data:`RAW_FLUSH_S`."""
        if self.server is None:
            await self.start()
        if self._raw_task is None:
            self._raw_task = asyncio.create_task(self._raw_loop(), name=f"{self.label} raw")
        try:
            async for rows in self.out.batches():
                yield rows
        finally:
            self._raw_task.cancel()

    async def _raw_loop(self) -> None:
        while True:
            await asyncio.sleep(RAW_FLUSH_S)
            await self.flush_raw()

    async def aclose(self) -> None:
        """Stop listening; the raw packets kept so far are written."""
        self.out.close()
        if self._raw_task is not None:
            self._raw_task.cancel()
            await asyncio.gather(self._raw_task, return_exceptions=True)
        if self.server is not None:
            self.server.close()
        self._write_raw(self._take_raw())

    def _take_raw(self) -> list[tuple[int, str, str, str, bytes]]:
        rows, self.raw = self.raw, []
        return rows

    def _write_raw(self, rows: list[tuple[int, str, str, str, bytes]]) -> None:
        if not rows:
            return
        try:
            if hasattr(self.store, "write_raw"):
                self.raw_written += self.store.write_raw(rows)
                return
            with open(self.raw_file, "a", encoding="utf-8") as fh:
                for rx, peer, dev, status, data in rows:
                    fh.write(json.dumps({"rx_ns": rx, "peer": peer, "device": dev,
                                         "status": status,
                                         "text": data.decode("utf-8", "replace")}) + "\n")
            self.raw_written += len(rows)
        except Exception as e:  # noqa: BLE001 - keep them and retry: loud, not fatal
            self.raw[:0] = rows
            log.error("%s: raw packets not written (%s); kept for the next try", self.label, e)

    async def flush_raw(self) -> None:
        async with self._raw_lock:
            rows = self._take_raw()
            if rows:
                await asyncio.to_thread(self._write_raw, rows)

    def health(self, tick: int) -> list[Reading]:
        return [r for lg in self.loggers.values() for r in health_readings(lg, tick)]


def health_readings(lg: Logger, tick: int) -> list[Reading]:
    off = lg.clock_offset_ms
    last = lg.last_packet_ns

    def maybe(tag: str, v: float) -> Reading:
        return Reading(health_tag(lg.name, tag), v) if math.isfinite(v) else \
            Reading(health_tag(lg.name, tag), math.nan, Quality.BAD, Reason.STALE)
    out = [
        Reading(health_tag(lg.name, "online"), 1.0 if lg.connections > 0 else 0.0),
        Reading(health_tag(lg.name, "connects"), float(lg.connects)),
        Reading(health_tag(lg.name, "received"), float(sum(lg.packets.values()))),
        Reading(health_tag(lg.name, "malformed"), float(sum(lg.errors.values()))),
        Reading(health_tag(lg.name, "crc_errors"), float(lg.errors["crc"])),
        Reading(health_tag(lg.name, "samples"), float(lg.samples)),
        Reading(health_tag(lg.name, "unmapped"), float(sum(lg.unmapped.values()))),
        maybe("since_last_packet_s", (tick - last) / 1e9 if last is not None else math.nan),
        maybe("clock_offset_ms", off),
    ]
    out += [Reading(health_tag(lg.name, f"packets_{cn}"), float(n))
            for cn, n in sorted(lg.packets.items()) if cn.isdigit()]
    return out


def _mn_of(item: bytes) -> str:
    i = item.find(b"MN=")
    if i < 0:
        return ""
    j = len(item)
    for sep in (b";", b","):
        k = item.find(sep, i)
        if 0 <= k < j:
            j = k
    return item[i + 3:j].decode("ascii", "replace")


def hj212_sources(cfg: Any, clock: Clock, store: Any) -> list[Hj212Server]:
    """One server per listening address of the config's HJ 212 loggers."""
    groups: dict[tuple[str, int], list[Hj212Device]] = {}
    for d in cfg.devices:
        if isinstance(d, Hj212Device):
            groups.setdefault((d.listen_host, d.listen_port), []).append(d)
    return [Hj212Server(h, p, devs, clock, store, cfg.campaign.timezone)
            for (h, p), devs in groups.items()]


def local_iso(d: dt.datetime | None, tz: str) -> str | None:
    """A logger's naive DataTime as ISO 8601 with its zone's offset."""
    return None if d is None else d.replace(tzinfo=ZoneInfo(tz)).isoformat()

