"""The auditors' office: every campaign a central InfluxDB holds, on one page, each opening as
its edge box shows it, live and read-only.

    cpaudit serve --store influxdb://host:8086/DB [--config-dir DIR]

- ``/`` and ``/api/v1/campaigns``: one row per (site, campaign) that forwarded its records: its
  state (running, stopped, no data), newest data, validity verdict, the balance with the largest
  closure, and how far behind its edge box is (the backlog it last reported, when, and the age
  of the newest data forwarded).
- ``/c/<site>/<campaign>/…`` (each part percent-quoted, ``-`` for no site): the campaign's own
  pages and API, :func:`web.app.create_app` on the campaign's store URL, created when first
  asked for and kept. Its configuration is the one the edge box forwarded (``campaign_config``),
  or, for a campaign that forwarded none, the file of ``--config-dir`` whose campaign name is the
  campaign's. Read-only: any change is 405, made on the edge box; unless the server has
  ``CPAUDIT_CHANGE_KEY`` (and ``CPAUDIT_TOKEN``): then the changes the edge's API takes (start,
  stop, cycle marks, hand readings and their retractions) are sent to an edge box whose sink
  names that key (``changes_key_env``), and applied there (:mod:`store.changes`).

A row's figures come from the campaign's own API (``/api/v1/validity``, ``/api/v1/balances``):
the same as its pages show. They are computed in one background thread and kept per campaign
until its newest forwarded minute moves (or its configuration changes), so that a list request
never waits for seconds of analysis; meanwhile the row shows the previous figures and says that
new ones are on the way. A campaign whose configuration is missing or broken says so in its
row; the others are listed as usual.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import queue
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterable

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from cpaudit import config as cfgmod
from cpaudit.store.base import CampaignReader, StoreError
from cpaudit.store.keys import MINUTE
from cpaudit.web.app import SECURITY_HEADERS, read_guard, secure_headers

LIST_TTL_S = 5.0          # the campaign list is read from InfluxDB at most this often
LAYERS = ("material", "water", "energy")
RETRY_S = 30.0            # a campaign whose figures failed is tried again after this
NO_SITE = "-"             # the path segment of a campaign forwarded without a site
READ_ONLY = ("the central view is read-only: start, stop, mark cycles and enter readings on "
             "the edge box")


def campaign_path(site: str, campaign: str) -> str:
    """Where a campaign's pages are, relative to the list: ``c/<site>/<campaign>/``."""
    return (f"c/{urllib.parse.quote(site or NO_SITE, safe='')}/"
            f"{urllib.parse.quote(campaign, safe='')}/")


def names_a_campaign(url: str) -> bool:
    """Whether an InfluxDB store URL names one campaign (else it is a fleet's database)."""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    return bool(q.get("campaign"))


def campaign_url(base: str, site: str, campaign: str) -> str:
    """The store URL of one campaign of the database ``base`` names."""
    u = urllib.parse.urlsplit(base)
    q = {k: v for k, v in urllib.parse.parse_qsl(u.query) if k not in ("site", "campaign")}
    q.update({"site": site, "campaign": campaign} if site else {"campaign": campaign})
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, urllib.parse.urlencode(q), ""))


@dataclasses.dataclass(frozen=True)
class _Failed:
    """The stamp of figures that failed: matches no campaign's, so they are tried again."""
    at: float          # [s, monotonic]


class Figures:
    """Each campaign's row figures, computed by one background thread, kept until the stamp
    they were computed for (newest forwarded minute, configuration) changes; figures that
    failed are tried again after :data:`RETRY_S`."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        self._queued: set[tuple[str, str]] = set()
        self._jobs: queue.Queue[tuple[tuple[str, str], Any, Callable[[], dict[str, Any]]]] = \
            queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="cpaudit-fleet-figures",
                                        daemon=True)
        self._thread.start()

    def get(self, key: tuple[str, str], stamp: Any, compute: Callable[[], dict[str, Any]]
            ) -> tuple[dict[str, Any] | None, bool]:
        """(the figures at hand or None, whether newer ones are on the way)."""
        with self._lock:
            done = self._done.get(key)
            if done is not None and (done[0] == stamp or (
                    isinstance(done[0], _Failed) and time.monotonic() - done[0].at < RETRY_S)):
                return done[1], False
            if key not in self._queued:
                self._queued.add(key)
                self._jobs.put((key, stamp, compute))
            return (done[1] if done else None), True

    def _work(self) -> None:
        while True:
            key, stamp, compute = self._jobs.get()
            try:
                figs, kept = compute(), stamp
            except Exception as e:  # noqa: BLE001 - one campaign's failure is its row's, not the list's
                # tried again after RETRY_S (InfluxDB away a moment), the figures before kept
                with self._lock:
                    before = self._done.get(key, (None, {}))[1]
                figs = {**before, "error": f"{type(e).__name__}: {e}"}
                kept = _Failed(time.monotonic())
            with self._lock:
                self._done[key] = (kept, figs)
                self._queued.discard(key)


class Fleet:
    """The campaigns of one InfluxDB database and an app per campaign."""

    def __init__(self, store_url: str, config_dir: str | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        self.store_url = store_url
        self.config_dir = Path(config_dir) if config_dir else None
        self.settings = dict(settings or {})      # tokens, read guard: every campaign app's
        self.figures = Figures()
        self._apps: dict[tuple[str, str], tuple[str, Flask]] = {}
        self._broken: dict[tuple[str, str], tuple[str, str]] = {}
        self._dir_files: dict[Path, tuple[float, str | None]] = {}
        self._listed: tuple[float, list[dict[str, Any]]] = (0.0, [])
        self._resolved_at: tuple[float, list[tuple[dict[str, Any], Flask | str]] | None] = \
            (0.0, None)
        self._lock = threading.Lock()

    # -- InfluxDB ------------------------------------------------------------------------------
    def _open(self, url: str) -> CampaignReader:
        from cpaudit.store.url import open_store
        return open_store(url)

    def campaigns(self, fresh: bool = False) -> list[dict[str, Any]]:
        """``InfluxV1Store.campaigns()``, read at most every :data:`LIST_TTL_S`."""
        with self._lock:
            at, rows = self._listed
            if not fresh and time.monotonic() - at < LIST_TTL_S:
                return rows
        from cpaudit.store.url import fleet_store
        fleet = fleet_store(self.store_url)
        try:
            rows = fleet.campaigns()
        finally:
            fleet.close()
        with self._lock:
            self._listed = (time.monotonic(), rows)
        return rows

    # -- configuration -------------------------------------------------------------------------
    def _from_dir(self, campaign: str) -> str | None:
        """The file of the config folder whose campaign name is ``campaign``."""
        if self.config_dir is None or not self.config_dir.is_dir():
            return None
        for p in sorted(self.config_dir.glob("*.y*ml")):
            mtime = p.stat().st_mtime
            seen = self._dir_files.get(p)
            if seen is None or seen[0] != mtime:
                try:
                    name: str | None = cfgmod.load(p).campaign.name
                except (cfgmod.ConfigError, OSError):
                    name = None
                self._dir_files[p] = seen = (mtime, name)
            if seen[1] == campaign:
                return str(p)
        return None

    def _config(self, site: str, campaign: str) -> tuple[str, str, str]:
        """(fingerprint, where from, the ``CPAUDIT_CONFIG`` to give create_app: "" for the
        forwarded one); StoreError if InfluxDB does not answer."""
        st = self._open(campaign_url(self.store_url, site, campaign))
        try:
            text = st.campaign_config()
        finally:
            st.close()
        if text is not None:
            return hashlib.sha256(text.encode()).hexdigest(), "forwarded", ""
        path = self._from_dir(campaign)
        if path is None:
            return "", "none", ""
        stamp = f"{path}:{os.stat(path).st_mtime_ns}"
        return hashlib.sha256(stamp.encode()).hexdigest(), "file", path

    def app_for(self, site: str, campaign: str, check: bool = True) -> Flask | str:
        """The campaign's app, or why there is none (its configuration). ``check=False``: the
        app made before, without asking InfluxDB whether the configuration changed."""
        key = (site, campaign)
        with self._lock:
            have = self._apps.get(key)
        if have is not None and not check:
            return have[1]
        fp, source, path = self._config(site, campaign)
        if have is not None and have[0] == fp:
            return have[1]
        if source == "none":
            return ("the edge box forwarded no campaign configuration"
                    + ("" if self.config_dir is None else
                       f", and {self.config_dir} holds no file for campaign {campaign!r}"))
        broken = self._broken.get(key)
        if broken is not None and broken[0] == fp:
            return broken[1]
        from cpaudit.web.app import create_app
        try:
            app = create_app({**self.settings, "CPAUDIT_CONFIG": path,
                              "CPAUDIT_STORE": campaign_url(self.store_url, site, campaign)})
        except cfgmod.ConfigError as e:
            why = f"the campaign configuration ({source}) is broken: {e}"
            self._broken[key] = (fp, why)
            return why
        app.extensions["cpaudit_config_source"] = path or "forwarded"
        with self._lock:
            self._apps[key] = (fp, app)
        return app

    # -- the list ------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One row per campaign (see the module): what InfluxDB and the campaign's app say now,
        its figures as :class:`Figures` has them."""
        now = time.time_ns()
        out = []
        for c, app in self._resolved():
            site, campaign = c["site"], c["campaign"]
            edge = dict(c.get("edge") or {})
            last = c.get("last_data")
            row: dict[str, Any] = {
                "site": site, "campaign": campaign, "name": c.get("name") or campaign,
                "href": campaign_path(site, campaign),
                "state": "stopped" if c.get("end") else ("running" if last else "no-data"),
                "start_ns": c.get("start"), "end_ns": c.get("end"), "last_data_ns": last,
                "last_data_age_s": None if last is None else max(0.0, (now - last) / 1e9),
                "edge": {"backlog": _int(edge.get("backlog")),
                         "forwarded": _int(edge.get("forwarded")),
                         "undeliverable": _int(edge.get("undeliverable")),
                         "newest_sample_ns": _int(edge.get("newest_sample_ts")),
                         "at_ns": _int(edge.get("at")),
                         "age_s": None if edge.get("at") is None
                         else max(0.0, (now - int(edge["at"])) / 1e9),
                         # the edge's newest sample (as it said) less the newest forwarded
                         "behind_s": None if last is None or _int(edge.get("newest_sample_ts"))
                         is None else max(0.0, (int(edge["newest_sample_ts"]) - last) / 1e9)},
                "timezone": None, "config": None, "config_error": None,
                "figures": None, "pending": False}
            if isinstance(app, str):
                row["config_error"] = app
                out.append(row)
                continue
            row["timezone"] = app.extensions["cpaudit_config"].campaign.timezone
            row["config"] = app.extensions["cpaudit_config_source"]
            minute = None if last is None else last // MINUTE * MINUTE
            row["figures"], row["pending"] = self.figures.get(
                (site, campaign), (id(app), minute, c.get("end")),
                functools.partial(_figures_at, app, self.settings, minute))
            out.append(row)
        return out

    def _resolved(self) -> list[tuple[dict[str, Any], Flask | str]]:
        """The campaigns with their apps (or why none), re-read with the list."""
        with self._lock:
            at, got = self._resolved_at
            if time.monotonic() - at < LIST_TTL_S and got is not None:
                return got
        got = []
        for c in self.campaigns(fresh=True):
            try:
                app: Flask | str = self.app_for(c["site"], c["campaign"])
            except StoreError as e:
                app = f"InfluxDB did not answer for this campaign: {e}"
            got.append((c, app))
        with self._lock:
            self._resolved_at = (time.monotonic(), got)
        return got

    def find(self, path: str) -> tuple[tuple[str, str], str] | None:
        """The campaign a decoded request path ``/c/<site>/<campaign>/…`` is under, with the
        rest of the path."""
        for fresh in (False, True):
            for c in self.campaigns(fresh=fresh and self._may_refresh()):
                prefix = "/" + urllib.parse.unquote(campaign_path(c["site"], c["campaign"]))
                if path == prefix[:-1] or path.startswith(prefix):
                    return (c["site"], c["campaign"]), path[len(prefix) - 1:]
        return None

    def _may_refresh(self) -> bool:
        """An unknown campaign in a path re-reads the list, at most once a second (a stream of
        made-up paths does not become a stream of InfluxDB queries)."""
        with self._lock:
            return time.monotonic() - self._listed[0] >= 1.0


def figures_of(app: Flask, settings: dict[str, Any]) -> dict[str, Any]:
    """A row's figures from the campaign's own API: the validity verdict and the balance
    (material, water, energy) with the largest |closure| of its overall node."""
    token = settings.get("CPAUDIT_TOKEN") or settings.get("CPAUDIT_READ_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = app.test_client()         # an in-process WSGI call, no socket

    def get(path: str) -> Any:
        r = client.get(path, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {r.status_code}: {r.get_data(as_text=True)[:300]}")
        return r.get_json()
    v = get("/api/v1/validity")
    bal = get("/api/v1/balances")
    worst = None
    verdicts = {}
    for layer in LAYERS:
        b = bal.get(layer)
        if not b:
            continue
        verdicts[layer] = b.get("verdict")
        pct = (b.get("overall") or {}).get("closure_pct")
        if pct is not None and (worst is None or abs(pct) > abs(worst["closure_pct"])):
            worst = {"layer": layer, "closure_pct": pct, "limit_pct": b.get("limit_pct"),
                     "verdict": b.get("verdict")}
    return {"verdict": v.get("verdict"), "message": v.get("message"), "hours": v.get("hours"),
            "worst": worst, "balances": verdicts}


def _figures_at(app: Flask, settings: dict[str, Any], minute: int | None) -> dict[str, Any]:
    return {**figures_of(app, settings), "data_minute_ns": minute}


def _int(v: Any) -> int | None:
    try:
        return None if v is None or v != v else int(v)
    except (TypeError, ValueError):
        return None


class Dispatch:
    """WSGI: ``/c/<site>/<campaign>/…`` to the campaign's app (its prefix moved from
    ``PATH_INFO`` to ``SCRIPT_NAME``, percent-quoted as the links carry it, so that url_for
    builds links that come back here), everything else to the list's app."""

    def __init__(self, fleet_wsgi: Any, fleet: Fleet) -> None:
        self.fleet_wsgi, self.fleet = fleet_wsgi, fleet

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raw = environ.get("PATH_INFO", "")
        if not raw.startswith("/c/"):
            return self.fleet_wsgi(environ, start_response)  # type: ignore[no-any-return]
        # WSGI strings are the request's bytes as latin-1; the names are UTF-8
        path = raw.encode("latin-1").decode("utf-8", "replace")
        try:
            found = self.fleet.find(path)
        except StoreError as e:
            return _plain(start_response, 503, f"InfluxDB does not answer: {e}")
        if found is None:
            return _plain(start_response, 404, "no such campaign in this database")
        (site, campaign), rest = found
        prefix = environ.get("SCRIPT_NAME", "").rstrip("/") + "/" + \
            campaign_path(site, campaign).rstrip("/")
        if not rest:                  # the pages' links are relative to the campaign's folder
            start_response("308 Permanent Redirect", [("Location", prefix + "/"),
                                                      ("Content-Length", "0")])
            return [b""]
        try:
            app = self.fleet.app_for(site, campaign, check=False)
        except StoreError as e:
            return _plain(start_response, 503, f"InfluxDB does not answer: {e}")
        if isinstance(app, str):
            return _plain(start_response, 503, app)
        env = dict(environ, SCRIPT_NAME=prefix,
                   PATH_INFO=rest.encode("utf-8").decode("latin-1"))
        return app.wsgi_app(env, start_response)  # type: ignore[no-any-return]


def _plain(start_response: Any, status: int, message: str) -> list[bytes]:
    import json
    body = json.dumps({"error": message, "status": status}, ensure_ascii=False).encode()
    reason = {404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(body))),
                                          *SECURITY_HEADERS.items()])
    return [body]


def create_fleet_app(settings: dict[str, Any]) -> Flask:
    """The list of the campaigns of ``settings["CPAUDIT_STORE"]`` (an InfluxDB URL naming no
    campaign), each campaign's pages under ``/c/…``. ``CPAUDIT_CONFIG_DIR``: the folder of
    campaign files for campaigns that forwarded none; ``CPAUDIT_TOKEN``, ``CPAUDIT_READ_TOKEN``
    and ``CPAUDIT_READ_GUARD`` as for :func:`web.app.create_app`, for the list and every
    campaign."""
    app = Flask(__name__)
    app.config.update(CPAUDIT_TOKEN=os.environ.get("CPAUDIT_TOKEN") or None,
                      CPAUDIT_READ_TOKEN=os.environ.get("CPAUDIT_READ_TOKEN") or None,
                      CPAUDIT_CHANGE_KEY=os.environ.get("CPAUDIT_CHANGE_KEY") or None,
                      CPAUDIT_READ_GUARD=False, CPAUDIT_CONFIG_DIR=None, JSON_SORT_KEYS=False)
    app.config.update(settings)
    passed = {k: app.config[k] for k in ("CPAUDIT_TOKEN", "CPAUDIT_READ_TOKEN",
                                         "CPAUDIT_READ_GUARD", "CPAUDIT_CHANGE_KEY")}
    fleet = Fleet(str(app.config["CPAUDIT_STORE"]), app.config["CPAUDIT_CONFIG_DIR"], passed)
    from cpaudit.store.url import fleet_store
    fleet_store(fleet.store_url).close()    # a malformed URL fails here, not at the first request
    app.extensions["cpaudit_fleet"] = fleet

    @app.get("/")
    def _list():  # type: ignore[no-untyped-def]
        try:
            zones = {r["timezone"] for r in fleet.rows() if r["timezone"]}
        except StoreError:
            zones = set()
        return render_template("fleet.html", tz=zones.pop() if len(zones) == 1 else "UTC",
                               database=_shown(fleet.store_url))

    @app.get("/api/v1/campaigns")
    def _campaigns():  # type: ignore[no-untyped-def]
        try:
            rows = fleet.rows()
        except StoreError as e:
            return jsonify(error=f"InfluxDB does not answer: {e}", status=503), 503
        return jsonify({"database": _shown(fleet.store_url),
                        "read_only": not (app.config["CPAUDIT_CHANGE_KEY"]
                                          and app.config["CPAUDIT_TOKEN"]),
                        "now_ns": time.time_ns(), "campaigns": rows})

    @app.get("/api/v1/openapi.json")
    def _openapi():  # type: ignore[no-untyped-def]
        return jsonify(openapi())

    @app.get("/healthz")
    def _healthz():  # type: ignore[no-untyped-def]
        from cpaudit.store.url import fleet_store
        st = fleet_store(fleet.store_url)
        try:
            ok = st.ping()
        finally:
            st.close()
        return (jsonify(ok=True), 200) if ok else (jsonify(ok=False), 503)

    @app.before_request
    def _reads_only() -> Any:
        if request.method not in ("GET", "HEAD"):
            return jsonify(error=READ_ONLY, status=405), 405
        return read_guard("reading the campaigns")

    secure_headers(app)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(error=e.description, status=e.code), e.code

    app.wsgi_app = Dispatch(app.wsgi_app, fleet)  # type: ignore[method-assign]
    return app


def _shown(url: str) -> str:
    """The database as the page names it (host, port and database; no parameters)."""
    u = urllib.parse.urlsplit(url)
    return f"{u.hostname}:{u.port}/{u.path.strip('/')}" if u.port else \
        f"{u.hostname}/{u.path.strip('/')}"


def openapi() -> dict[str, Any]:
    """The list's own OpenAPI description (each campaign's is under its prefix)."""
    err = {"description": "error", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"},
                                         "status": {"type": "integer"}},
        "required": ["error", "status"]}}}}

    def get(summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": [], "responses": {
            "200": {"description": "OK", "content": {"application/json": {}}},
            "401": err, "503": err}}}
    return {"openapi": "3.1.0",
            "info": {"title": "cpaudit central list", "version": "1",
                     "description": "every campaign a central InfluxDB holds; each campaign's "
                                    "own API under /c/<site>/<campaign>/api/v1/ (read-only)"},
            "paths": {"/api/v1/campaigns": get("every campaign: state, newest data, validity "
                                               "verdict, worst closure, edge backlog"),
                      "/api/v1/openapi.json": get("this description"),
                      "/healthz": get("the server answers and InfluxDB does")}}
