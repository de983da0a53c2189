"""``cpaudit demo``: the simulated site, the collector and the web, as three child processes.

Ctrl-C (or SIGTERM) stops them in order — web, collector (which flushes to the store), simulators —
and kills any that does not stop within 10 s, so nothing is left running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

STOP_TIMEOUT_S = 10.0


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cpaudit", *args], start_new_session=True)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _wait_http(url: str, timeout_s: float, procs: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


SHARED_BROKER = ("127.0.0.1", 1883)     # where a site's or a colleague's broker may listen


def _private_broker(config: str, store: str
                    ) -> tuple[str, subprocess.Popen[bytes] | None]:
    """The demo never joins a broker it did not start: its meters use fixed client ids and
    persistent sessions, which on a stranger's broker (a site's Mosquitto on 1883, a colleague's)
    would take over or disturb their sessions. With MQTT devices in the campaign it starts its own
    Mosquitto on a free port of 127.0.0.1 for its lifetime, and the simulators and the collector
    use a copy of the campaign file pointing there (written beside the store). The config to use
    and the broker process (None without MQTT, or without Mosquitto: then the MQTT-only meters
    show offline, and say so)."""
    import shutil
    import socket

    import yaml
    with open(config, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    mqtt = [d for d in doc.get("devices", []) if d.get("protocol") == "mqtt"]
    if not mqtt:
        return config, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                        if os.path.exists("/usr/sbin/mosquitto") else None)
    with socket.socket() as s:
        s.settimeout(0.5)
        taken = s.connect_ex(SHARED_BROKER) == 0
    if taken:
        print(f"cpaudit demo: a broker already listens on {SHARED_BROKER[0]}:{SHARED_BROKER[1]}; "
              f"the demo does not join it and runs its own on 127.0.0.1:{port}", flush=True)
    broker = None
    if exe is None:
        print("cpaudit demo: Mosquitto is not installed; the MQTT-only meters will show offline "
              "(make test installs mosquitto)", file=sys.stderr)
    else:
        broker = subprocess.Popen([exe, "-p", str(port)], start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(port, 5.0)
    for d in mqtt:
        d["host"], d["port"] = "127.0.0.1", port
    derived = os.path.abspath(store) + ".config.yaml"
    with open(derived, "w", encoding="utf-8") as f:
        f.write(f"# written by cpaudit demo from {config}: MQTT devices on the demo's own broker "
                f"(127.0.0.1:{port})\n")
        yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False)
    return derived, broker


def _wait_port(port: int, timeout_s: float) -> None:
    import socket
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)


def run_demo(config: str, store: str, host: str, port: int, leak: str | None,
             fresh: bool = True, history_h: float = 0.0) -> int:
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.remove(store + suffix)
    os.makedirs(os.path.dirname(os.path.abspath(store)), exist_ok=True)
    origin: list[str] = []
    if history_h > 0 and fresh:
        # the campaign began history_h ago: its past is generated (same model, same noise),
        # the simulators carry on from the same origin and the collector records from now
        t0 = int(time.time()) - int(history_h * 3600)
        origin = ["--origin", str(t0 * 1_000_000_000)]
        print(f"cpaudit demo: generating {history_h:g} h of campaign history…", flush=True)
        gen = subprocess.run([sys.executable, "-m", "cpaudit", "generate", config, "--hours",
                              str(history_h), "--store", store, "--quiet", *origin]
                             + (["--leak", leak] if leak else []))
        if gen.returncode != 0:
            return gen.returncode
    config, broker = _private_broker(config, store)
    sim = _spawn(["simulate", config, *origin] + (["--leak", leak] if leak else []))
    time.sleep(0.5)
    col = _spawn(["collect", config, "--store", store])
    web = _spawn(["serve", config, "--store", store, "--host", host, "--port", str(port)])
    order = [web, col, sim] + ([broker] if broker else [])
    names = {id(web): "serve", id(col): "collect", id(sim): "simulate", id(broker): "mosquitto"}
    stopping = False

    def _on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    url = f"http://{host}:{port}/"
    try:
        if not _wait_http(url + "api/v1/campaign", 30, order):
            print("cpaudit demo: a component failed to start; see the messages above",
                  file=sys.stderr)
            return 1
        print(f"\ncpaudit demo running: open {url}  (balance: {url}api/v1/balance)\n"
              f"Ctrl-C stops everything.{'  Leak at ' + leak if leak else ''}\n", flush=True)
        while not stopping:
            dead = [p for p in order if p.poll() is not None]
            if dead:
                print(f"cpaudit demo: a component exited ({names[id(dead[0])]}); stopping",
                      file=sys.stderr)
                return 1
            time.sleep(0.3)
        return 0
    finally:
        print("cpaudit demo: stopping…", file=sys.stderr, flush=True)
        _stop(order)
