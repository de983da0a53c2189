"""The v2 API sink (influxdb-client), checked at the wire.

No InfluxDB 2.x/3.x server can be installed on these machines (Debian ships 1.6.7, which has no
/api/v2/write), so this test runs a minimal HTTP listener that records what influxdb-client sends
and answers 204 as InfluxDB does. It checks our side of the contract — endpoint, org, bucket,
precision, token, line protocol — not a real server's behaviour.
"""
from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pytest

from cpaudit.store import Batch, StoreError
from cpaudit.store.influx import InfluxV2Sink


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    status = 204

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip
            body = gzip.decompress(body)
        u = urllib.parse.urlsplit(self.path)
        Recorder.seen.append({"path": u.path, "query": urllib.parse.parse_qs(u.query),
                              "auth": self.headers.get("Authorization"), "body": body.decode()})
        self.send_response(Recorder.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def recorder():  # type: ignore[no-untyped-def]
    Recorder.seen = []
    Recorder.status = 204
    srv = HTTPServer(("127.0.0.1", 0), Recorder)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_v2_write_request(recorder: str) -> None:
    sink = InfluxV2Sink(recorder, token="s3cret", org="plant", bucket="audit")
    b = Batch(tags=["steam in.total", "x"], ts=[1795000000000000000, 1795000000000000001],
              value=[1.5, np.nan], quality=[0, 2], reason=[0, 1])
    assert sink.write(b) == 2
    sink.close()
    (req,) = Recorder.seen
    assert req["path"] == "/api/v2/write"
    assert req["query"] == {"org": ["plant"], "bucket": ["audit"], "precision": ["ns"]}
    assert req["auth"] == "Token s3cret"
    assert req["body"].splitlines() == [
        r"cpaudit,tag=steam\ in.total value=1.5,quality=0i,reason=0i 1795000000000000000",
        "cpaudit,tag=x quality=2i,reason=1i 1795000000000000001"]


def test_v2_refusal_is_a_store_error(recorder: str) -> None:
    Recorder.status = 401
    sink = InfluxV2Sink(recorder, token="bad", org="plant", bucket="audit")
    with pytest.raises(StoreError, match="InfluxDB v2 write"):
        sink.write(Batch(tags=["a"], ts=[1], value=[1.0], quality=[0], reason=[0]))
    sink.close()
