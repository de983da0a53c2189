"""The site stack of docker-compose.yml, as far as a machine without a Docker engine allows: the
file (and the Dockerfile) validated against what a site needs, then the same services run without
containers — Mosquitto and influxd as private servers (tests/servers.py), the simulators, the
collector and the web with the compose command lines and campaign file, only the service
addresses moved to 127.0.0.1 and free ports — and the readings checked to reach InfluxDB."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from cpaudit import config
from tests.conftest import ROOT
from tests.servers import InfluxD, Mosquitto, free_port, stop_process

COMPOSE = ROOT / "docker-compose.yml"
SITE = ROOT / "config/examples/brewery-compose.yaml"
APP = "/app/"                    # the Dockerfile's WORKDIR: the repository's root in the image


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _command(svc: dict[str, Any]) -> list[str]:
    cmd = svc["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_the_compose_file_is_a_site_deployment() -> None:
    doc = _compose()
    svcs = doc["services"]
    assert {"mosquitto", "influxdb", "collector", "web", "simulators"} <= set(svcs)
    for name, svc in svcs.items():
        assert set(svc) <= {"image", "build", "command", "environment", "ports", "volumes",
                            "depends_on", "healthcheck", "restart"}, name
        assert "image" in svc or "build" in svc, name
        for p in svc.get("ports", []):
            # published on loopback, or on an address the operator chooses (then with the token)
            assert p.startswith(("127.0.0.1:", "${CPAUDIT_BIND:-127.0.0.1}:")), (name, p)
        for dep in svc.get("depends_on", {}):
            assert dep in svcs, (name, dep)
    # collector and web: one image, one persistent store on a named volume
    col, web = svcs["collector"], svcs["web"]
    assert col["image"] == web["image"] and col["volumes"] == web["volumes"] == ["cpaudit-data:/data"]
    assert "cpaudit-data" in doc["volumes"]
    ccmd, wcmd = _command(col), _command(web)
    assert ccmd[:2] == ["cpaudit", "collect"] and wcmd[:2] == ["cpaudit", "serve"]
    store = ccmd[ccmd.index("--store") + 1]
    assert store.startswith("/data/") and wcmd[wcmd.index("--store") + 1] == store
    assert ccmd[2] == wcmd[2] == _command(svcs["simulators"])[2] == APP + str(SITE.relative_to(ROOT))
    # the web listens beyond localhost only with a token (compose refuses to start without one)
    assert wcmd[wcmd.index("--host") + 1] == "0.0.0.0"
    assert web["environment"]["CPAUDIT_TOKEN"].startswith("${CPAUDIT_TOKEN:?")
    # health checks everywhere except the plant's stand-in; the web's asks /healthz on its port
    for name in ("mosquitto", "influxdb", "collector", "web"):
        assert svcs[name]["healthcheck"]["test"][0] == "CMD", name
    port = wcmd[wcmd.index("--port") + 1]
    assert f"127.0.0.1:{port}/healthz" in " ".join(web["healthcheck"]["test"])
    assert svcs["simulators"]["healthcheck"] == {"disable": True}
    assert web["ports"][0].endswith(f":{port}:{port}")
    # the broker and the database are up before the collector starts
    assert col["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert col["depends_on"]["influxdb"]["condition"] == "service_healthy"


def test_the_image_runs_as_a_user_and_keeps_its_store() -> None:
    lines = [x.strip() for x in (ROOT / "Dockerfile").read_text().splitlines()]
    user = [x for x in lines if x.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    cmd = [x for x in lines if x.startswith("CMD ")][-1]
    assert lines.index(user[-1]) < lines.index(cmd) and "--keep" in cmd
    assert any(x.startswith("HEALTHCHECK") for x in lines)
    for x in lines:             # everything the packages need is copied into the image
        if x.startswith("COPY ") and not x.startswith("COPY pyproject"):
            assert (ROOT / x.split()[1]).exists(), x


def test_the_site_campaign_is_the_brewery_on_the_compose_network() -> None:
    """brewery-compose.yaml differs from brewery.yaml only in where things are: the Modbus meters
    at the simulators service, the MQTT meters on the compose broker, the collector's health
    port and the InfluxDB sink — the host names are the compose services'."""
    svcs = _compose()["services"]
    site = config.load(SITE)
    base = config.load(ROOT / "config/examples/brewery.yaml")
    assert [d.name for d in site.devices] == [d.name for d in base.devices]
    for d in site.devices:
        assert d.host == ("mosquitto" if d.protocol == "mqtt" else "simulators"), d.name
        assert d.host in svcs
    (sink,) = site.sinks
    m = re.fullmatch(r"http://([a-z]+):(\d+)", sink.url)
    assert m and m.group(1) == "influxdb" and m.group(1) in svcs
    assert sink.database == svcs["influxdb"]["environment"]["INFLUXDB_DB"]
    health = " ".join(svcs["collector"]["healthcheck"]["test"])
    assert f":{site.collector.metrics_port}/metrics" in health
    raw_site, raw_base = (yaml.safe_load(p.read_text()) for p in (SITE, ROOT /
                                                                 "config/examples/brewery.yaml"))
    for d in raw_site["devices"]:
        d.pop("host")
    for k in ("metrics_host", "metrics_port"):
        raw_site["collector"].pop(k)
    raw_site.pop("sinks")
    assert raw_site == raw_base


def _local(text: str, hosts: dict[str, str]) -> str:
    """The site campaign with the compose services' addresses moved to this machine."""
    ports = sorted(set(re.findall(r"\bport: (\d+)", text)))
    for p in ports:
        text = re.sub(rf"\bport: {p}\b", f"port: {free_port()}", text)
    for old, new in hosts.items():
        text = text.replace(old, new)
    return text


@pytest.mark.e2e
def test_the_stack_without_containers_forwards_to_influxdb(tmp_path: Path) -> None:
    svcs = _compose()["services"]
    broker = Mosquitto(tmp_path / "mqtt").start()
    influx = InfluxD(tmp_path / "influx").start()
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "stack.log", "wb")  # noqa: SIM115 (closed in finally)
    try:
        db = svcs["influxdb"]["environment"]["INFLUXDB_DB"]
        influx.query(f'CREATE DATABASE "{db}"')         # the image's INFLUXDB_DB does this
        metrics = free_port()
        cfg_text = _local(SITE.read_text(), {
            "    host: simulators": "    host: 127.0.0.1",
            "    host: mosquitto": f"    host: 127.0.0.1\n    port: {broker.port}",
            "http://influxdb:8086": influx.url,
            "metrics_port: 9108": f"metrics_port: {metrics}",
            "metrics_host: 0.0.0.0": "metrics_host: 127.0.0.1"})
        app = tmp_path / "app"
        cfg_path = app / SITE.relative_to(ROOT)
        cfg_path.parent.mkdir(parents=True)
        cfg_path.write_text(cfg_text)
        data = tmp_path / "data"
        data.mkdir()
        web_port = free_port()
        env = {**os.environ, "CPAUDIT_TOKEN": "compose-token"}

        def run(name: str, subs: dict[str, str]) -> None:
            args = [a.replace(APP, f"{app}/").replace("/data/", f"{data}/") for a in
                    _command(svcs[name])]
            args = [subs.get(a, a) for a in args]
            assert args[0] == "cpaudit"
            procs.append(subprocess.Popen([sys.executable, "-m", "cpaudit", *args[1:]],
                                          cwd=ROOT, env=env, stdout=log, stderr=log))
        run("simulators", {})
        time.sleep(1.0)
        run("collector", {})
        # the web listens on 0.0.0.0 in its container; here on loopback, with the read guard
        # switched on as the compose setting does (beyond localhost)
        env["CPAUDIT_READ_GUARD"] = "1"
        run("web", {"0.0.0.0": "127.0.0.1", "8050": str(web_port)})
        url = f"http://127.0.0.1:{web_port}"
        auth = {"Authorization": "Bearer compose-token"}
        deadline = time.monotonic() + 60
        points = 0
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), (tmp_path / "stack.log").read_text()
            try:
                health = requests.get(url + "/healthz", timeout=2).status_code
                res = influx.query('SELECT COUNT("value") FROM "cpaudit"', db)
                series = res["results"][0].get("series") or []
                points = series[0]["values"][0][1] if series else 0
                if health == 200 and points > 100:
                    break
            except requests.RequestException:
                pass
            time.sleep(1.0)
        assert points > 100, (tmp_path / "stack.log").read_text()[-3000:]
        # the collector's health check (its Prometheus endpoint) and the web's
        assert requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).status_code == 200
        assert requests.get(url + "/api/v1/campaign", timeout=5).status_code == 401
        devs = requests.get(url + "/api/v1/devices", headers=auth, timeout=10).json()
        mqtt = [d for d in devs["devices"] if d["protocol"] == "mqtt"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(d["received"] for d in mqtt):
            time.sleep(1)
            devs = requests.get(url + "/api/v1/devices", headers=auth, timeout=10).json()
            mqtt = [d for d in devs["devices"] if d["protocol"] == "mqtt"]
        assert mqtt and all(d["received"] for d in mqtt), mqtt
        assert devs["sinks"][0]["forwarded"], devs["sinks"]
        site = config.load(cfg_path)
        mqtt_tags = {t.tag for d in site.devices if d.protocol == "mqtt" for t in d.tags}
        modbus_tags = {r.tag for d in site.devices if d.protocol != "mqtt" for r in d.registers}
        deadline = time.monotonic() + 30
        while True:                       # both kinds of meter arrive (the forwarder batches)
            tags = influx.query('SHOW TAG VALUES FROM "cpaudit" WITH KEY = "tag"', db)
            names = {v[1] for v in tags["results"][0]["series"][0]["values"]}
            if (mqtt_tags & names and modbus_tags & names) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert mqtt_tags & names and modbus_tags & names, sorted(names)[:20]
    finally:
        for p in reversed(procs):
            stop_process(p, 15)
        log.close()
        influx.stop()
        broker.stop()
    assert (data / "campaign.db").exists()
