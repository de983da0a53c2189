"""Changes asked for in the auditors' office reach the edge box's record (store/changes.py),
against a real influxd: the central web (with CPAUDIT_TOKEN and CPAUDIT_CHANGE_KEY) signs and
writes them beside the data; the edge's forwarder, built from a campaign whose sink names the
key (``changes_key_env``) as ``cpaudit collect`` builds it, reads them, checks them again and
applies them once; the outcome comes back, and the central view shows it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from cpaudit import config
from cpaudit.collector.forwarding import forwarders
from cpaudit.simulators.generate import generate
from cpaudit.store import Quality, SQLiteStore
from cpaudit.store.changes import Change, campaign_key, outcomes
from cpaudit.store.forward import Forwarder
from cpaudit.store.influx import InfluxV1Store
from cpaudit.web.fleet import campaign_path, create_fleet_app
from tests.conftest import brewery_text, with_influx_sink
from tests.servers import InfluxD

DB = "office"
KEY = "the key both ends were given"
TOKEN = "office-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SITE, CAMPAIGN = "Brewery A, Beijing", "Changes"
MINUTE = 60 * 10**9
ODD = 123_456_789          # [ns] off the generated samples' whole seconds


class Edge:
    """An edge box: an hour of the brewhouse generated into its record, forwarded by the
    forwarder its campaign file makes."""

    def __init__(self, tmp: Path, srv: InfluxD, name: str, site: str, key_env: str | None,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        text = brewery_text(**{"name: Brewhouse measurement campaign (demo)": f"name: {name}",
                               "site: Demo brewery, Beijing": f"site: {site}"})
        text = with_influx_sink(text, srv.url, DB)
        if key_env:      # the campaign's key, as `cpaudit change-key` gives it to the box
            text = text.replace("batch_size: 5000}", f"batch_size: 5000, changes_key_env: {key_env}}}")
            monkeypatch.setenv(key_env, campaign_key(KEY.encode(), site, name).decode())
        path = tmp / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        self.cfg = config.load(path)
        self.st = SQLiteStore(tmp / f"{name}.db")
        generate(self.cfg, self.st, 1.0)
        self.st.keep_config(text)
        (self.fwd,) = forwarders(self.cfg, self.st)
        self.fwd.drain()
        self.prefix = "/" + campaign_path(site, name)

    def sync(self) -> None:
        """What the running forwarder does every few seconds: read the changes asked for, then
        forward what changed (samples, records, status)."""
        if self.fwd.take_changes is not None:
            self.fwd.read_changes()
        self.fwd.drain()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD]:
    s = InfluxD(tmp_path_factory.mktemp("changes") / "influxd").start()
    InfluxV1Store(s.url, DB).close()
    yield s
    s.stop()


@pytest.fixture
def edge(tmp_path: Path, srv: InfluxD, monkeypatch: pytest.MonkeyPatch) -> Iterator[Edge]:
    e = Edge(tmp_path, srv, CAMPAIGN + tmp_path.name[-6:], SITE, "CPAUDIT_TEST_KEY", monkeypatch)
    yield e
    e.fwd.sink.close()
    e.st.close()


def office(srv: InfluxD, key: str | None = KEY, token: str | None = TOKEN) -> Any:
    return create_fleet_app({"CPAUDIT_STORE": f"influxdb://127.0.0.1:{srv.port}/{DB}",
                             "CPAUDIT_TOKEN": token, "CPAUDIT_CHANGE_KEY": key}).test_client()


def _changes(c: Any, e: Edge) -> dict[str, dict[str, Any]]:
    r = c.get(e.prefix + "api/v1/changes")
    assert r.status_code == 200, r.get_data()[:300]
    return {x["id"]: x for x in r.get_json()["changes"]}


def _manual_rows(st: SQLiteStore, tag: str) -> list[tuple[int, float, int]]:
    m = st.manual()
    m = m[m["tag"] == tag]
    return [(int(t), float(v), int(q)) for t, v, q in zip(m["ts"], m["value"], m["quality"])]


def test_a_reading_entered_in_the_office_is_applied_on_the_edge_once(srv: InfluxD,
                                                                     edge: Edge) -> None:
    c = office(srv)
    start = edge.st.campaign_start()
    assert start is not None
    ts = start + 30 * MINUTE + ODD
    r = c.post(edge.prefix + "api/v1/manual", headers=AUTH,
               json={"tag": "hot_wort.total", "value": 1234.5, "ts": ts,
                     "note": "weighbridge ticket 0042"})
    assert r.status_code == 202, r.get_data()[:300]
    q = r.get_json()["queued"]
    assert q["state"] == "pending" and q["kind"] == "manual"
    assert q["body"] == {"tag": "hot_wort.total", "ts": ts, "value": 1234.5,
                         "note": "weighbridge ticket 0042"}
    assert _changes(c, edge)[q["id"]]["state"] == "pending"
    assert _manual_rows(edge.st, "hot_wort.total") == []      # nothing on the edge yet

    edge.sync()
    assert _manual_rows(edge.st, "hot_wort.total") == [(ts, 1234.5, int(Quality.GOOD))]
    assert edge.st.manual_notes()[0][("hot_wort.total", ts)] == "weighbridge ticket 0042"
    assert outcomes(edge.st)[q["id"]]["state"] == "applied"
    assert edge.fwd.stats.changes_applied == 1
    # the outcome and the reading came back: the central view shows both
    seen = _changes(c, edge)[q["id"]]
    assert seen["state"] == "applied" and seen["answered_at"] > q["at"]
    # a generated campaign has no health tags: the devices document is empty, not a 500
    assert c.get(edge.prefix + "api/v1/devices").status_code == 200
    listed = c.get(edge.prefix + "api/v1/manual").get_json()["manual"]
    assert [(x["tag"], x["ts"], x["value"]) for x in listed] == [("hot_wort.total", ts, 1234.5)]

    # read again (the next pull, a restart): applied once
    count = edge.st.max_seq()
    edge.fwd.read_changes()
    edge.fwd.read_changes()
    assert edge.st.max_seq() == count and edge.fwd.stats.changes_applied == 1

    # retracted from the office: kept on the edge, bad quality, with why
    r = c.post(edge.prefix + "api/v1/manual/retract", headers=AUTH,
               json={"tag": "hot_wort.total", "ts": ts, "note": "ticket was for batch 17"})
    assert r.status_code == 202, r.get_data()[:300]
    rid = r.get_json()["queued"]["id"]
    edge.sync()
    assert _manual_rows(edge.st, "hot_wort.total") == [(ts, 1234.5, int(Quality.BAD))]
    assert edge.st.manual_notes()[1][("hot_wort.total", ts)]["note"] == "ticket was for batch 17"
    assert _changes(c, edge)[rid]["state"] == "applied"


def test_the_office_checks_what_it_can_and_the_edge_the_rest(srv: InfluxD, edge: Edge) -> None:
    c = office(srv)
    start = edge.st.campaign_start()
    assert start is not None
    # what the configuration or the forwarded records refuse is refused at once, as on the edge
    r = c.post(edge.prefix + "api/v1/cycle-mark", headers=AUTH, json={})
    assert r.status_code == 400 and "marked by hand only" in r.get_json()["error"]
    r = c.post(edge.prefix + "api/v1/manual", headers=AUTH,
               json={"tag": "no.such.tag", "value": 1})
    assert r.status_code == 400 and "unknown tag" in r.get_json()["error"]
    r = c.post(edge.prefix + "api/v1/manual", headers=AUTH,
               json={"tag": "hot_wort.total", "value": -5, "ts": start + MINUTE})
    assert r.status_code == 400 and "does not read negative" in r.get_json()["error"]
    r = c.post(edge.prefix + "api/v1/campaign/stop", headers=AUTH, json={"ts": start - MINUTE})
    assert r.status_code == 400 and "cannot stop before it started" in r.get_json()["error"]
    r = c.post(edge.prefix + "api/v1/manual", headers=AUTH,
               json={"tag": "hot_wort.total", "value": 5, "ts": start - MINUTE})
    assert r.status_code == 400 and "before the campaign started" in r.get_json()["error"]
    # what only the edge's record knows is refused there, and says why centrally: a second
    # reading at the same time
    ts = start + 10 * MINUTE + ODD
    ids = []
    for value in (10.0, 11.0):
        r = c.post(edge.prefix + "api/v1/manual", headers=AUTH,
                   json={"tag": "hot_wort.total", "value": value, "ts": ts})
        assert r.status_code == 202
        ids.append(r.get_json()["queued"]["id"])
    edge.sync()
    seen = _changes(c, edge)
    assert [seen[i]["state"] for i in ids] == ["applied", "refused"]
    assert "already has a reading" in seen[ids[1]]["why"]
    assert _manual_rows(edge.st, "hot_wort.total") == [(ts, 10.0, int(Quality.GOOD))]
    # a stop from the office ends the campaign on the edge box
    stop = start + 50 * MINUTE
    r = c.post(edge.prefix + "api/v1/campaign/stop", headers=AUTH, json={"ts": stop})
    assert r.status_code == 202
    edge.sync()
    assert edge.st.campaign_end() == stop
    central = InfluxV1Store(srv.url, DB, create=False,
                            scope={"site": SITE, "campaign": edge.cfg.campaign.name})
    assert central.campaign_end() == stop                    # forwarded back
    central.close()


def test_a_change_the_box_cannot_trust_is_not_applied_and_nothing_stops(srv: InfluxD,
                                                                         edge: Edge) -> None:
    start = edge.st.campaign_start()
    assert start is not None
    ts = start + 20 * MINUTE + ODD
    # an office with another master key: the box does not answer it (nothing recorded that a
    # forger could use), counts it, and says how many it ignored
    other = office(srv, key="not the office's key")
    r = other.post(edge.prefix + "api/v1/manual", headers=AUTH,
                   json={"tag": "hot_wort.total", "value": 7, "ts": ts})
    assert r.status_code == 202
    cid = r.get_json()["queued"]["id"]
    # poison between good ones: points of the changes measurement that are no change (or not
    # signed), written by anyone who may write the database
    scope = f"campaign={edge.cfg.campaign.name.replace(' ', chr(92) + ' ')}," \
            f"site={SITE.replace(',', chr(92) + ',').replace(' ', chr(92) + ' ')}"
    h = "0123456789abcdef0123456789abcdef"
    deep = "[" * 5000 + "]" * 5000
    poison = InfluxV1Store(srv.url, DB, create=False)
    poison.write_lines("\n".join([
        f'cpaudit_changes,{scope},id=p1{h[2:]} kind="manual",body="not json",by="x",sig="00",'
        f'record="",seen="{{}}" {ts}',
        f'cpaudit_changes,{scope},id=p2{h[2:]} kind="manual",body="[1,2]",by="x",sig="00" {ts + 1}',
        f'cpaudit_changes,{scope},id={h} kind="explode",body="{{}}",by="x",sig="00" {ts + 2}',
        f'cpaudit_changes,{scope},id=p4{h[2:]} kind="manual" {ts + 3}',
        f'cpaudit_changes,{scope},id=short kind="manual",body="{{}}",by="",sig="" {ts + 4}',
        # a lone surrogate (valid JSON, no UTF-8) and JSON nested deeper than Python recurses
        f'cpaudit_changes,{scope},id=a5{h[2:]} kind="manual",body="{{\\"note\\": '
        f'\\"\\\\ud800\\"}}",by="",sig="",record="",seen="{{}}" {ts + 5}',
        f'cpaudit_changes,{scope},id=a6{h[2:]} kind="manual",body="{deep}",by="",sig="",'
        f'record="",seen="{{}}" {ts + 6}',
        # a flood of them before the good change: more than one page of the pull
        *(f'cpaudit_changes,{scope},id=f{i:031x} kind="manual" {ts + 10 + i}'
          for i in range(2500)),
    ]))
    poison.close()
    good = office(srv).post(edge.prefix + "api/v1/manual", headers=AUTH,
                            json={"tag": "hot_wort.total", "value": 8, "ts": ts + MINUTE})
    assert good.status_code == 202
    edge.sync()
    edge.sync()
    done = outcomes(edge.st)
    assert set(done) == {good.get_json()["queued"]["id"]}     # only the good one answered
    assert done[good.get_json()["queued"]["id"]]["state"] == "applied"
    assert _manual_rows(edge.st, "hot_wort.total") == [(ts + MINUTE, 8.0, int(Quality.GOOD))]
    assert edge.fwd.stats.changes_unverified == 3            # the other office's, h, a5: once
    assert edge.fwd.stats.changes_malformed >= 2505          # p1, p2, p4, short, a6, the flood
    assert edge.fwd.stats.errors == 0 and edge.fwd.stats.backlog == 0
    # the office sees its own changes only, and how many the box could not verify
    listed = office(srv).get(edge.prefix + "api/v1/changes").get_json()
    assert [x["id"] for x in listed["changes"]] == [good.get_json()["queued"]["id"]]
    assert listed["unverified_at_edge"] == 3
    assert _changes(other, edge)[cid]["state"] == "pending"


def test_without_key_token_or_a_willing_box_the_office_changes_nothing(
        tmp_path: Path, srv: InfluxD, edge: Edge, monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"tag": "hot_wort.total", "value": 1}
    # no change key: read-only, as before, and it says how to change that
    r = office(srv, key=None).post(edge.prefix + "api/v1/manual", headers=AUTH, json=body)
    assert r.status_code == 405 and "CPAUDIT_CHANGE_KEY" in r.get_json()["error"]
    # a key but no (or the wrong) token
    r = office(srv).post(edge.prefix + "api/v1/manual", json=body)
    assert r.status_code == 401
    r = office(srv, token=None).post(edge.prefix + "api/v1/manual", headers=AUTH, json=body)
    assert r.status_code == 403
    # other routes stay read-only with a key
    r = office(srv).post(edge.prefix + "api/v1/report", headers=AUTH, json={})
    assert r.status_code == 405
    # a box whose sink names no key takes no change: the office says so and writes nothing
    shy = Edge(tmp_path, srv, "Shy box", "Brewery B", None, monkeypatch)
    try:
        assert shy.fwd.take_changes is None
        r = office(srv).post(shy.prefix + "api/v1/manual", headers=AUTH, json=body)
        assert r.status_code == 409 and "takes no change from the office" in r.get_json()["error"]
        assert _changes(office(srv), shy) == {}
        assert office(srv).get("/api/v1/campaigns").get_json()["read_only"] is False
        assert office(srv, key=None).get("/api/v1/campaigns").get_json()["read_only"] is True
    finally:
        shy.fwd.sink.close()
        shy.st.close()


def test_a_change_for_one_campaign_is_not_applied_to_another(tmp_path: Path, srv: InfluxD,
                                                             edge: Edge,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Each campaign has its own key and the signature covers site and campaign: a change
    copied into another campaign's series is not applied there, and a box cannot sign a change
    for another campaign with the key it holds."""
    twin = Edge(tmp_path, srv, "Twin", "Brewery B", "CPAUDIT_TEST_KEY", monkeypatch)
    try:
        start = edge.st.campaign_start()
        assert start is not None
        r = office(srv).post(edge.prefix + "api/v1/manual", headers=AUTH,
                             json={"tag": "hot_wort.total", "value": 3, "ts": start + MINUTE + ODD})
        assert r.status_code == 202
        mine = InfluxV1Store(srv.url, DB, create=False,
                             scope={"site": SITE, "campaign": edge.cfg.campaign.name})
        (ch,) = [x for x in mine.changes() if not isinstance(x, str)]
        mine.close()
        assert isinstance(twin.fwd.sink, InfluxV1Store)
        twin.fwd.sink.write_change(ch)                     # the same point, the twin's series
        twin.sync()
        assert ch.id not in outcomes(twin.st) and twin.fwd.stats.changes_unverified == 1
        assert _manual_rows(twin.st, "hot_wort.total") == []
        # nor can the twin's box, which holds its own campaign's key, sign one for the first
        key = campaign_key(KEY.encode(), "Brewery B", "Twin")
        forged = Change.new(key, SITE, edge.cfg.campaign.name, "manual",
                            {**ch.body, "value": 666.0}, ch.at + 1, "twin", ch.record, ch.seen)
        assert isinstance(edge.fwd.sink, InfluxV1Store)
        edge.fwd.sink.write_change(forged)
        edge.sync()
        assert forged.id not in outcomes(edge.st)
        assert _manual_rows(edge.st, "hot_wort.total") == [(start + MINUTE + ODD, 3.0,
                                                             int(Quality.GOOD))]
    finally:
        twin.fwd.sink.close()
        twin.st.close()


def test_forwarder_without_a_change_source_ignores_the_setting(tmp_path: Path) -> None:
    """A sink that cannot be read back (the v2 sink: write only) gets no change taker."""
    from cpaudit.store.influx import InfluxV2Sink
    st = SQLiteStore(tmp_path / "x.db")
    sink = InfluxV2Sink("http://127.0.0.1:9", "token", "org", "bucket")
    f = Forwarder(st, sink, take_changes=lambda chs: {"applied": 0})
    assert f.take_changes is None
    sink.close()
    st.close()


def test_a_running_forwarder_applies_a_change_within_seconds(srv: InfluxD, edge: Edge) -> None:
    """As ``cpaudit collect`` runs it: the forwarding threads, no hand-made sync."""
    import time

    from cpaudit.collector.forwarding import Forwarding
    start = edge.st.campaign_start()
    assert start is not None
    running = Forwarding([edge.fwd])
    running.start()
    try:
        r = office(srv).post(edge.prefix + "api/v1/manual", headers=AUTH,
                             json={"tag": "hot_wort.total", "value": 99, "ts": start + ODD})
        assert r.status_code == 202
        cid = r.get_json()["queued"]["id"]
        t0 = time.monotonic()
        while _changes(office(srv), edge)[cid]["state"] == "pending":
            assert time.monotonic() - t0 < 30, "not applied within 30 s"
            time.sleep(0.2)
        took = time.monotonic() - t0
        assert _changes(office(srv), edge)[cid]["state"] == "applied"
        assert _manual_rows(edge.st, "hot_wort.total") == [(start + ODD, 99.0, int(Quality.GOOD))]
        assert took < 5.0 + 5.0, took         # read every 5 s, forwarded back at once
    finally:
        running._stop.set()
        for t in running._threads:
            t.join(10)


def test_a_box_that_may_not_read_the_changes_still_forwards(tmp_path: Path, srv: InfluxD,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A database user that may write but not read (a real influxd with authentication, the
    user granted WRITE only): the samples still go, the failed reads are counted and logged
    once."""
    locked = InfluxD(tmp_path / "locked", auth=True).start()
    try:
        admin = ("admin", "admin-pw")
        locked.query("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES")
        for q in (f'CREATE DATABASE "{DB}"', "CREATE USER box WITH PASSWORD 'box-pw'",
                  f'GRANT WRITE ON "{DB}" TO box'):
            assert "error" not in str(locked.query(q, user=admin)), q
        e = Edge(tmp_path, srv, "Write only", "Brewery W", "CPAUDIT_TEST_KEY", monkeypatch)
        try:
            f = Forwarder(e.st, InfluxV1Store(locked.url, DB, username="box", password="box-pw",
                                              create=False, scope=e.fwd.sink.scope),  # type: ignore[attr-defined]
                          "locked", take_changes=e.fwd.take_changes)
            f.read_changes()
            f.read_changes()
            assert f.drain() == e.st.max_seq()
            assert f.stats.changes_errors == 2 and f.stats.errors == 0 and f.stats.backlog == 0
            got = locked.query('SELECT count("quality") FROM "cpaudit"', db=DB, user=admin)
            assert got["results"][0]["series"][0]["values"][0][1] == e.st.max_seq()
            f.sink.close()
        finally:
            e.fwd.sink.close()
            e.st.close()
    finally:
        locked.stop()


def test_the_edge_refuses_what_no_longer_holds_there(tmp_path: Path, srv: InfluxD,
                                                     edge: Edge) -> None:
    """A change is asked for against what the office saw: refused when the campaign's start or
    end changed on the edge box since, when it is meant for a record the box no longer holds
    (a replaced store), or dated in the box's future; the reason comes back."""
    import time

    from cpaudit.store.keys import RECORD_ID
    c = office(srv)
    start = edge.st.campaign_start()
    assert start is not None
    # asked for, then the campaign restarted on the edge before the box read it
    r = c.post(edge.prefix + "api/v1/manual", headers=AUTH,
               json={"tag": "hot_wort.total", "value": 5, "ts": start + 40 * MINUTE + ODD})
    stale = r.get_json()["queued"]["id"]
    edge.st.begin_campaign(start + 30 * MINUTE)
    # signed for another record of this campaign (the box's store was replaced since)
    key = campaign_key(KEY.encode(), SITE, edge.cfg.campaign.name)
    held = {"start": start + 30 * MINUTE, "end": None}
    elsewhere = Change.new(key, SITE, edge.cfg.campaign.name, "stop",
                           {"ts": start + 50 * MINUTE}, time.time_ns(), "office", "f" * 32, held)
    # dated an hour ahead of the box's clock (the office's clock is wrong)
    ahead = time.time_ns() + 3600 * 10**9
    future = Change.new(key, SITE, edge.cfg.campaign.name, "stop", {"ts": ahead},
                        time.time_ns(), "office", str(edge.st.get_meta(RECORD_ID)), held)
    assert isinstance(edge.fwd.sink, InfluxV1Store)
    for ch in (elsewhere, future):
        edge.fwd.sink.write_change(ch)
    edge.sync()
    seen = _changes(c, edge)
    assert seen[stale]["state"] == "refused" and "changed on the edge box" in seen[stale]["why"]
    assert seen[elsewhere.id]["state"] == "refused" and "another record" in seen[elsewhere.id]["why"]
    assert seen[future.id]["state"] == "refused" and "in the future" in seen[future.id]["why"]
    assert edge.st.campaign_end() is None and _manual_rows(edge.st, "hot_wort.total") == []


def test_who_asked_and_from_which_page(srv: InfluxD, edge: Edge) -> None:
    """The user name given with the token (HTTP Basic) is kept with the change; a change sent
    from another site's page (the browser's remembered credentials) is refused."""
    import base64
    c = office(srv)
    start = edge.st.campaign_start()
    assert start is not None
    basic = {"Authorization": "Basic " + base64.b64encode(f"li.wei:{TOKEN}".encode()).decode()}
    r = c.post(edge.prefix + "api/v1/manual", headers=basic,
               json={"tag": "hot_wort.total", "value": 1, "ts": start + ODD})
    assert r.status_code == 202 and r.get_json()["queued"]["by"] == "li.wei@127.0.0.1"
    edge.sync()
    assert outcomes(edge.st)[r.get_json()["queued"]["id"]]["by"] == "li.wei@127.0.0.1"
    r = c.post(edge.prefix + "api/v1/campaign/stop", headers={**AUTH, "Sec-Fetch-Site":
                                                              "cross-site"}, data="x")
    assert r.status_code == 403 and "another site's page" in r.get_json()["error"]


def test_change_key_gives_the_box_its_campaign_key(tmp_path: Path, edge: Edge) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    path = tmp_path / "campaign.yaml"
    path.write_text(str(edge.st.campaign_config()), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "cpaudit", "change-key", str(path)], cwd=ROOT,
                         env=dict(os.environ, CPAUDIT_CHANGE_KEY=KEY), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == campaign_key(KEY.encode(), SITE, edge.cfg.campaign.name).decode()
    env = {k: v for k, v in os.environ.items() if k != "CPAUDIT_CHANGE_KEY"}
    run = subprocess.run([sys.executable, "-m", "cpaudit", "change-key", str(path)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "CPAUDIT_CHANGE_KEY" in run.stderr
