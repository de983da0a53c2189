"""Prometheus ``/metrics`` for the collector (text exposition format 0.0.4), served by a small
asyncio HTTP server on ``collector.metrics_port``. The same health also goes into the store as
samples under ``_health.`` for the web."""
from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Protocol, Sequence

from cpaudit.collector.forwarding import Forwarding
from cpaudit.collector.kinds import Sources
from cpaudit.collector.sources import Companion, DeviceHealth
from cpaudit.collector.writer import Writer

log = logging.getLogger("cpaudit.collector.metrics")


class Observed(Protocol):
    """What the metrics read of a running collector (:class:`collector.service.Collector`)."""
    health: dict[str, DeviceHealth]
    sources: Sources
    writer: Writer
    store: Any
    clock_steps: dict[str, int]

    @property
    def beside(self) -> Sequence[Companion]: ...
    def skew_stats(self) -> dict[str, float]: ...
    def garbage_frames(self) -> int: ...


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(col: Observed) -> str:
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, rows: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            val = "NaN" if value is None or (isinstance(value, float) and math.isnan(value)) \
                else repr(float(value))
            out.append(f"{name}{{{lab}}} {val}" if lab else f"{name} {val}")

    hs = list(col.health.values())
    mqtt = col.sources.by_kind.get("mqtt", [])
    hj212 = col.sources.by_kind.get("hj212", [])
    metric("cpaudit_device_up", "gauge", "1 when the last poll of the device succeeded",
           [({"device": h.name}, 1.0 if h.polls and not h.consecutive_failures else 0.0)
            for h in hs])
    metric("cpaudit_device_polls_total", "counter", "polls attempted",
           [({"device": h.name}, h.polls) for h in hs])
    metric("cpaudit_device_good_polls_total", "counter", "polls with at least one good value",
           [({"device": h.name}, h.good_polls) for h in hs])
    metric("cpaudit_device_consecutive_failures", "gauge", "failed polls in a row",
           [({"device": h.name}, h.consecutive_failures) for h in hs])
    metric("cpaudit_device_latency_seconds", "gauge", "duration of the last poll",
           [({"device": h.name}, h.last_latency_ms / 1e3) for h in hs])
    metric("cpaudit_device_lateness_seconds", "gauge", "start of the last poll after its tick",
           [({"device": h.name}, h.last_lateness_ms / 1e3) for h in hs])
    metric("cpaudit_device_backoff_seconds", "gauge", "reconnect backoff still to wait",
           [({"device": h.name}, h.backoff_s) for h in hs])
    metric("cpaudit_device_last_good_timestamp_seconds", "gauge", "tick of the last good poll",
           [({"device": h.name}, (h.last_good_ns or math.nan) / 1e9) for h in hs])
    sk = col.skew_stats()
    metric("cpaudit_tick_skew_seconds", "gauge", "spread of poll start times across devices "
           "within one tick, over the recent ticks",
           [({"quantile": q}, sk[k] / 1e3) for q, k in (("0.5", "p50_ms"), ("0.99", "p99_ms"),
                                                          ("1", "max_ms"))])
    metric("cpaudit_mqtt_connected", "gauge", "1 while the MQTT session is up",
           [({"device": m.cfg.name}, 1.0 if m.connected else 0.0) for m in mqtt])
    metric("cpaudit_mqtt_messages_total", "counter", "MQTT messages received",
           [({"device": m.cfg.name}, m.received) for m in mqtt])
    metric("cpaudit_mqtt_malformed_total", "counter", "MQTT messages refused, per kind",
           [({"device": m.cfg.name, "kind": k}, n) for m in mqtt
            for k, n in sorted(m.malformed.items())])
    lgs = [lg for srv in hj212 for lg in srv.loggers.values()]
    metric("cpaudit_hj212_connected", "gauge", "open connections of the HJ 212 data logger",
           [({"device": lg.name}, lg.connections) for lg in lgs])
    metric("cpaudit_hj212_packets_total", "counter", "HJ 212 packets accepted, per command",
           [({"device": lg.name, "cn": cn}, n) for lg in lgs for cn, n in sorted(lg.packets.items())])
    metric("cpaudit_hj212_refused_total", "counter", "HJ 212 packets or values refused, per kind",
           [({"device": lg.name, "kind": k}, n) for lg in lgs for k, n in sorted(lg.errors.items())]
           + [({"device": "", "listen": f"{s.host}:{s.port}", "kind": k}, n)
              for s in hj212 for k, n in sorted(s.errors.items())])
    metric("cpaudit_hj212_clock_offset_seconds", "gauge", "receive time minus the logger's "
           "DataTime of its last real-time packet",
           [({"device": lg.name}, lg.clock_offset_ms / 1e3) for lg in lgs])
    metric("cpaudit_hj212_last_packet_timestamp_seconds", "gauge", "receive time of the last "
           "accepted packet", [({"device": lg.name}, (lg.last_packet_ns or math.nan) / 1e9)
                               for lg in lgs])
    fw = [f for c in col.beside if isinstance(c, Forwarding) for f in c.forwarders]
    metric("cpaudit_sink_backlog", "gauge", "samples in the store not yet acknowledged by the sink",
           [({"sink": f.name}, f.stats.backlog) for f in fw])
    metric("cpaudit_sink_forwarded_total", "counter", "samples acknowledged by the sink",
           [({"sink": f.name}, f.stats.forwarded) for f in fw])
    metric("cpaudit_sink_errors_total", "counter", "failed forwarding attempts",
           [({"sink": f.name}, f.stats.errors) for f in fw])
    metric("cpaudit_sink_undeliverable_total", "counter", "samples the sink refused for what "
           "they hold, recorded as undeliverable (kept in the store)",
           [({"sink": f.name}, f.stats.undeliverable) for f in fw])
    metric("cpaudit_store_samples_written_total", "counter", "samples committed to the store",
           [({}, col.writer.written)])
    w = col.writer
    metric("cpaudit_store_pending_rows", "gauge", "readings waiting in memory for the store "
           "(non-zero while it refuses writes)", [({}, w.pending_rows + len(w.rows[0]))])
    metric("cpaudit_store_write_errors_total", "counter", "failed store writes (each retried)",
           [({}, w.store_errors)])
    metric("cpaudit_store_rejected_rows_total", "counter", "readings no store can hold, refused "
           "alone", [({}, w.rejected)])
    metric("cpaudit_store_lost_rows_total", "counter", "polled readings not kept beyond the "
           "pending bound while the store refused writes", [({}, w.lost)])
    metric("cpaudit_store_ignored_rows_total", "counter", "readings on an instant the store "
           "already held for the tag (first kept)", [({}, getattr(col.store, "ignored", 0))])
    metric("cpaudit_clock_steps_total", "counter", "wall-clock steps detected against the "
           "monotonic clock", [({"direction": d}, n) for d, n in sorted(col.clock_steps.items())])
    metric("cpaudit_modbus_garbage_total", "counter", "bytes from a Modbus peer pymodbus could "
           "not frame (its 'data_received() call failed')", [({}, col.garbage_frames())])
    return "\n".join(out) + "\n"


async def serve(col: Observed, host: str, port: int) -> asyncio.AbstractServer:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(r.readline(), 5)
            while (await asyncio.wait_for(r.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body = render(col).encode()
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body = b"not found: try /metrics\n"
                head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            w.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body)
            await w.drain()
        except (asyncio.TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            w.close()
    server = await asyncio.start_server(handle, host, port)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
