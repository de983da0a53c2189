"""The private servers the later issues need start from the project's own fixtures and answer."""
from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request

from tests.servers import InfluxD, Mosquitto


def test_private_mosquitto_round_trip(mosquitto: Mosquitto) -> None:
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
                            "-t", "cpaudit/test/#", "-C", "1", "-W", "10", "-q", "1"],
                           stdout=subprocess.PIPE, text=True)
    import time
    time.sleep(0.5)
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
                    "-t", "cpaudit/test/x", "-m", '{"v": 1.5}', "-q", "1"], check=True, timeout=10)
    out, _ = sub.communicate(timeout=15)
    assert json.loads(out) == {"v": 1.5}


def test_private_influxd_write_and_query(influxd: InfluxD) -> None:
    influxd.query("CREATE DATABASE t")
    body = b"m,tag=a value=1.25 1795000000000000000\nm,tag=a value=2.5 1795000001000000000\n"
    req = urllib.request.Request(influxd.url + "/write?" + urllib.parse.urlencode(
        {"db": "t", "precision": "ns"}), data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204
    res = influxd.query("SELECT sum(value) FROM m", db="t")
    assert res["results"][0]["series"][0]["values"][0][1] == 3.75
