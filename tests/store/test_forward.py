"""Store and forward against a real influxd: outage and restart, zero lost, idempotent re-send."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cpaudit import config
from cpaudit.collector.service import Collector
from cpaudit.simulators.live import Site
from cpaudit.store import Batch, SQLiteStore, StoreError
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from tests.conftest import brewery_text, run_collector, with_influx_sink
from tests.servers import InfluxD

T0 = 1_795_000_000_000_000_000


def test_forward_batches_and_cursor_is_durable(tmp_path: Path, influxd: InfluxD) -> None:
    src = SQLiteStore(tmp_path / "s.db")
    n = 12_345
    src.write(Batch(tags=[f"t{i % 7}" for i in range(n)], ts=T0 + np.arange(n) * 10**9,
                    value=np.arange(n) * 0.5, quality=np.zeros(n), reason=np.zeros(n)))
    sink = InfluxV1Store(influxd.url, "fw")
    f = Forwarder(src, sink, batch_size=5000)
    assert f.step() == 5000 and f.cursor == 5000 and f.stats.backlog == n - 5000
    # a new forwarder on the same store resumes from the durable cursor
    f2 = Forwarder(src, sink, batch_size=5000)
    assert f2.drain() == n - 5000
    assert sink.count() == n
    # re-sending everything (as after a crash before the cursor moved) changes nothing
    src.set_meta(f2.key, "0")
    assert f2.drain() == n
    assert sink.count() == n
    src.close()
    sink.close()


def test_sink_down_moves_no_cursor(tmp_path: Path, influxd: InfluxD) -> None:
    src = SQLiteStore(tmp_path / "s.db")
    src.write(Batch(tags=["a"] * 3, ts=[T0, T0 + 1, T0 + 2], value=[1.0, 2.0, 3.0],
                    quality=[0] * 3, reason=[0] * 3))
    sink = InfluxV1Store(influxd.url, "down")
    influxd.stop()
    f = Forwarder(src, sink)
    with pytest.raises(StoreError):
        f.step()
    assert f.cursor == 0
    src.close()


@pytest.mark.e2e
def test_influx_outage_mid_campaign_loses_nothing(tmp_path: Path, influxd: InfluxD) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}))
    cfg = config.load(p)
    src = SQLiteStore(tmp_path / "c.db")
    sink = InfluxV1Store(influxd.url, "campaign")
    fwd = Forwarder(src, sink, batch_size=500, idle_s=0.1, backoff_max_s=1.0)
    stop_fwd = threading.Event()
    t = threading.Thread(target=fwd.run, args=(stop_fwd,), daemon=True)

    async def campaign() -> None:
        async with Site(cfg):
            stop = asyncio.Event()
            task = asyncio.create_task(Collector(cfg, src).run(stop))
            t.start()
            await asyncio.sleep(2.5)
            await asyncio.to_thread(influxd.stop)            # the database goes away ...
            await asyncio.sleep(3.0)
            assert fwd.stats.errors > 0 and fwd.stats.backlog > 0
            await asyncio.to_thread(influxd.start)           # ... and comes back
            await asyncio.sleep(2.5)
            stop.set()
            await task
    asyncio.run(campaign())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and fwd.cursor < src.max_seq():
        time.sleep(0.2)
    stop_fwd.set()
    t.join(10)
    assert fwd.cursor == src.max_seq()
    local = src.read(None)
    remote = sink.read(None)
    assert len(remote) == len(local) > 0                    # zero lost
    cols = ["tag", "ts", "quality", "reason"]
    assert (remote[cols].to_numpy() == local[cols].to_numpy()).all()
    assert np.allclose(remote["value"], local["value"], equal_nan=True, rtol=0, atol=0)
    src.close()
    sink.close()


def test_sinks_from_config_forward_while_collecting(tmp_path: Path, influxd: InfluxD) -> None:
    text = with_influx_sink(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}), influxd.url,
                            "site")
    p = tmp_path / "c.yaml"
    p.write_text(text)
    cfg = config.load(p)
    InfluxV1Store(influxd.url, "site").close()      # the site's database exists
    src = SQLiteStore(tmp_path / "c.db")

    col = run_collector(cfg, src, 2.5, forward=True)
    sink = InfluxV1Store(influxd.url, "site", create=False)
    assert sink.count() == src.stats()["samples"]      # a clean stop leaves no backlog
    backlog = src.read(["_health.sink.central.backlog"])
    (fwd,) = col.beside
    assert len(backlog) >= 3 and fwd.forwarders[0].stats.errors == 0
    src.close()
    sink.close()


def test_a_tag_influxdb_cannot_take_is_set_aside_and_the_rest_goes(tmp_path: Path,
                                                                    influxd: InfluxD) -> None:
    """Tags with every character line protocol escapes, two it cannot carry at all (a trailing
    backslash, a newline) and one the server itself refuses (a series key beyond 64 KiB: HTTP
    400) among good ones: every other sample reaches InfluxDB exactly as SQLite holds it, the
    refused ones are recorded as undeliverable with the reason, and the cursor reaches the end."""
    odd = ["a,b", "a b", "a=b", "a\\b", "a\\ b", "a\\,b", "温度 T1", "x=\\=y"]
    never = ["ends\\", "new\nline"]
    huge = "h" * 70_000
    tags = []
    for i in range(300):
        tags += ["good.a", odd[i % len(odd)], "good.b"]
        if i in (17, 150):
            tags += never + [huge]
    n = len(tags)
    src = SQLiteStore(tmp_path / "s.db")
    src.write(Batch(tags=tags, ts=T0 + np.arange(n) * 10**6, value=np.arange(n) * 0.25,
                    quality=np.zeros(n), reason=np.zeros(n)))
    sink = InfluxV1Store(influxd.url, "poison")
    f = Forwarder(src, sink, batch_size=400)
    f.drain()
    assert f.cursor == src.max_seq() and f.stats.backlog == 0
    und = src.undeliverable("influx")
    assert sorted(set(und["tag"])) == sorted(never + [huge])
    assert len(und) == 6 and f.stats.undeliverable == 6
    reasons = dict(zip(und["tag"], und["reason"]))
    assert reasons["ends\\"] == "tag ends with a backslash"
    assert reasons["new\nline"] == "newline in tag"
    assert reasons[huge].startswith("HTTP 400") and "max key length" in reasons[huge]
    mine = src.read(None)
    mine = mine[~mine["tag"].isin(never + [huge])]
    theirs = sink.read(None)
    assert len(theirs) == len(mine) == n - 6
    m = mine.sort_values(["tag", "ts"]).reset_index(drop=True)
    t = theirs.sort_values(["tag", "ts"]).reset_index(drop=True)
    assert m["tag"].tolist() == t["tag"].tolist()          # every escaped tag came back as is
    assert (m["ts"].to_numpy() == t["ts"].to_numpy()).all()
    assert np.allclose(m["value"], t["value"])
    src.close()
    sink.close()
