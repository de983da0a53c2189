"""Private instances of the real servers the tests talk to, on free ports with data in a temp dir.

Nothing here depends on a server started by hand: each class starts its own process and stops it.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 15.0, proc: subprocess.Popen[bytes] | None = None
              ) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Terminate a server process; kill it if it does not stop within ``timeout_s``."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Mosquitto:
    """A private Mosquitto broker with persistence (for persistent sessions across restarts)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(self.binary):
            raise RuntimeError("mosquitto is not installed; run scripts/install-system-deps.sh")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        # Started as root, mosquitto drops to the `mosquitto` user, which cannot write to pytest's
        # 0700 temp dirs: persistence and the log would then fail silently. Keep the same user.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{user}listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval 1\n"
            f"log_dest file {self.dir}/mosquitto.log\nmax_queued_messages 100000\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self.proc = None


class InfluxD:
    """A private InfluxDB 1.x (Debian's influxdb 1.6.7) speaking the v1 HTTP API."""

    def __init__(self, workdir: Path, port: int | None = None, auth: bool = False) -> None:
        """``auth``: users and privileges enforced (the first user is made with
        :meth:`query` before any exists, as influxd allows)."""
        self.binary = shutil.which("influxd") or "/usr/bin/influxd"
        if not os.path.exists(self.binary):
            raise RuntimeError("influxd is not installed; run scripts/install-system-deps.sh")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.conf = self.dir / "influxdb.conf"
        self.conf.write_text(f"""
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.dir}/meta"
  logging-enabled = false
[data]
  dir = "{self.dir}/data"
  wal-dir = "{self.dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  pprof-enabled = false
  auth-enabled = {"true" if auth else "false"}
[logging]
  level = "warn"
""")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "InfluxD":
        with open(self.dir / "influxd.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-config", str(self.conf)],
                                         stdout=log, stderr=log)
        wait_port(self.port, 30, self.proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                    if r.status == 204:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise TimeoutError("influxd did not answer /ping")

    def query(self, q: str, db: str | None = None, user: tuple[str, str] | None = None
              ) -> dict:  # type: ignore[type-arg]
        import json
        params = {"q": q}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        # influxd takes u and p from the URL only, not from a form body
        auth = "?" + urllib.parse.urlencode({"u": user[0], "p": user[1]}) if user else ""
        with urllib.request.urlopen(self.url + "/query" + auth, data=data, timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def stop(self) -> None:
        stop_process(self.proc, 15)
        self.proc = None
