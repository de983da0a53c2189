"""The auditors' office: two edge boxes forward their campaigns to one real influxd, and the
central `cpaudit analyze --store influxdb://…` of each campaign equals the edge's own, figure for
figure, with no config file given (the configuration travelled with the data), after an InfluxDB
outage in the middle of forwarding."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from cpaudit.store import SQLiteStore, StoreError
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from cpaudit.store.url import open_store
from tests.conftest import ROOT
from tests.servers import InfluxD

BREWERY = ROOT / "config" / "examples" / "brewery.yaml"


def _site(tmp: Path, name: str, site: str, hours: float, leak: str | None) -> tuple[Path, Path]:
    text = BREWERY.read_text(encoding="utf-8")
    text = text.replace("name: Brewery measurement campaign (demo)", f"name: {name}", 1)
    text = text.replace("site: Demo brewery, Beijing", f"site: {site}", 1)
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(text, encoding="utf-8")
    db = tmp / f"{name}.db"
    cmd = [sys.executable, "-m", "cpaudit", "generate", str(cfg), "--hours", str(hours),
           "--store", str(db), "--quiet"] + (["--leak", leak] if leak else [])
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return cfg, db


def _analyze(*args: str) -> dict:  # type: ignore[type-arg]
    r = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", "--json", *args], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)  # type: ignore[no-any-return]


@pytest.mark.e2e
def test_two_edge_boxes_one_influxd_central_equals_edge(tmp_path: Path, influxd: InfluxD) -> None:
    sites = {"Campaign A": ("Brewery A, Beijing", 3.0, None),
             "Campaign B": ("Brewery B, Tianjin", 2.0, "anaerobic:0.08")}
    made = {n: _site(tmp_path, n, s, h, leak) for n, (s, h, leak) in sites.items()}
    InfluxV1Store(influxd.url, "office").close()
    # A forwards part of its record, InfluxDB goes away, comes back; then everything
    a_cfg, a_db = made["Campaign A"]
    src = SQLiteStore(a_db)
    scope_a = {"site": sites["Campaign A"][0], "campaign": "Campaign A"}
    fa = Forwarder(src, InfluxV1Store(influxd.url, "office", scope=scope_a, create=False),
                   "office", batch_size=5000)
    for _ in range(20):
        fa.step()
    influxd.stop()
    with pytest.raises(StoreError):
        fa.drain()
    assert 0 < fa.cursor < src.max_seq()
    influxd.start()
    fa.drain()
    assert fa.cursor == src.max_seq()
    fa.sink.close()
    src.close()
    b_cfg, b_db = made["Campaign B"]
    src = SQLiteStore(b_db)
    fb = Forwarder(src, InfluxV1Store(influxd.url, "office", scope={
        "site": sites["Campaign B"][0], "campaign": "Campaign B"}, create=False), "office")
    fb.drain()
    fb.sink.close()
    src.close()

    for name, (cfg, db) in made.items():
        url = f"influxdb://127.0.0.1:{influxd.port}/office?" + urllib.parse.urlencode(
            {"site": sites[name][0], "campaign": name})
        edge = _analyze(str(cfg), "--store", str(db))
        central = _analyze("--store", url)              # no config file: it came with the data
        assert central == edge, name
        assert edge["campaign"] == name
    # the office lists both, with what each edge box still holds back (nothing, now)
    r = subprocess.run([sys.executable, "-m", "cpaudit", "campaigns", "--json", "--store",
                        f"influxdb://127.0.0.1:{influxd.port}/office"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    listed = {c["campaign"]: c for c in json.loads(r.stdout)}
    assert set(listed) == set(sites)
    for name, c in listed.items():
        assert c["site"] == sites[name][0] and c["state"] == "running"
        assert c["edge"]["backlog"] == 0 and c["edge"]["forwarded"] > 0
        assert c["last_data"] is not None and c["start"] is not None
    # the two campaigns did not mix: B's leak is B's alone
    a = _analyze("--store", f"influxdb://127.0.0.1:{influxd.port}/office?campaign=Campaign+A&"
                 "site=Brewery+A%2C+Beijing")
    b = _analyze("--store", f"influxdb://127.0.0.1:{influxd.port}/office?campaign=Campaign+B&"
                 "site=Brewery+B%2C+Tianjin")
    assert json.dumps(a["balances"]) != json.dumps(b["balances"])


def test_store_urls_say_what_is_wrong(tmp_path: Path) -> None:
    for url, why in [("influxdb://user:pw@h:8086/db?campaign=c", "credentials do not go"),
                     ("influxdb://h:8086/?campaign=c", "give the database"),
                     ("influxdb://h:8086/db", "say which campaign"),
                     ("influxdb://h:8086/db?campaign=c&color=red", "unknown parameter")]:
        with pytest.raises(StoreError, match=why):
            open_store(url)
    with pytest.raises(StoreError, match="no such store"):
        open_store(str(tmp_path / "missing.db"))
    r = subprocess.run([sys.executable, "-m", "cpaudit", "analyze", "--store",
                        "influxdb://u:secret@127.0.0.1:1/db?campaign=c"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "credentials do not go" in r.stderr and "secret" not in r.stderr
