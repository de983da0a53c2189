"""Forwarder (SQLite cursor → line protocol → InfluxDB /write) against raw HTTP /write of
pre-formatted 5,000-line bodies to the same private influxd; and the line-protocol encoders."""
from __future__ import annotations

import http.client
import time
import urllib.parse
from pathlib import Path

import numpy as np

from bench.common import Timer, header, line, tmpdir

N = 300_000
BATCH = 5_000


def run() -> None:
    from cpaudit.store import Batch, SQLiteStore
    from cpaudit.store.forward import Forwarder
    from cpaudit.store.influx import InfluxV1Store
    from cpaudit.store.lineproto import format_lines
    from tests.servers import InfluxD
    header(f"forward — {N:,} samples (30 tags) SQLite → InfluxDB 1.6.7 /write, {BATCH:,} a batch")
    with tmpdir() as d:
        srv = InfluxD(Path(d) / "influx").start()
        try:
            tags = [f"site.tag{i % 30}" for i in range(N)]
            # the collector's shape: every tag at every 1 s tick (so the forwarder's rollup
            # beside the samples is one row per tag and minute, 1/60 of them)
            batch = Batch(tags=tags, ts=1_795_000_000_000_000_000 + (np.arange(N) // 30) * 10**9,
                          value=np.random.default_rng(1).random(N) * 100,
                          quality=np.zeros(N), reason=np.zeros(N))
            # encoders
            sub = Batch(tags=tags[:50_000], ts=batch.ts[:50_000], value=batch.value[:50_000],
                        quality=batch.quality[:50_000], reason=batch.reason[:50_000])
            with Timer() as t:
                format_lines(sub)
            ours_fmt = 50_000 / t.wall
            from influxdb_client import Point
            with Timer() as t:
                for tg, ts, v in zip(sub.tags[:20_000], sub.ts[:20_000].tolist(),
                                     sub.value[:20_000].tolist()):
                    Point("cpaudit").tag("tag", tg).field("value", v).field("quality", 0) \
                        .field("reason", 0).time(ts).to_line_protocol()
            point = 20_000 / t.wall
            # raw /write of prepared bodies
            bodies = [format_lines(Batch(tags=tags[i:i + BATCH], ts=batch.ts[i:i + BATCH],
                                         value=batch.value[i:i + BATCH],
                                         quality=batch.quality[i:i + BATCH],
                                         reason=batch.reason[i:i + BATCH])).encode()
                      for i in range(0, N, BATCH)]
            InfluxV1Store(srv.url, "raw").close()
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            qs = urllib.parse.urlencode({"db": "raw", "precision": "ns"})
            t0 = time.perf_counter()
            for body in bodies:
                conn.request("POST", f"/write?{qs}", body=body)
                r = conn.getresponse()
                r.read()
                assert r.status == 204, r.status
            raw = N / (time.perf_counter() - t0)
            conn.close()
            # the forwarder, from a SQLite record
            src = SQLiteStore(Path(d) / "src.db")
            src.write(batch)
            sink = InfluxV1Store(srv.url, "fwd")
            f = Forwarder(src, sink, batch_size=BATCH)
            with Timer() as t:
                sent = f.drain()
            ours = sent / t.wall
            assert sink.count() == N
            sink.close()
            src.close()
        finally:
            srv.stop()
    line("line protocol: influxdb-client Point", point, "points/s")
    line("line protocol: store.lineproto.format_lines", ours_fmt, "points/s", point)
    line("raw POST /write of prepared bodies (baseline)", raw, "points/s")
    line("Forwarder.drain: read SQLite, format, /write, cursor, + rollup and records", ours,
         "samples/s", raw, "≥ 0.5x")
