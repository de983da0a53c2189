"""Flask application factory.

``create_app({"CPAUDIT_CONFIG": path, "CPAUDIT_STORE": path})``. The campaign config is loaded once
(a broken config never starts the app); the store is opened per app and closed at teardown.

Settings besides the two paths (each also read from the environment of the same name):

- ``CPAUDIT_TOKEN``: the access token that changes state (campaign start/stop, cycle marks,
  manual readings); without it every change is refused.
- ``CPAUDIT_READ_TOKEN``: a second token that only reads (optional).
- ``CPAUDIT_CHANGE_KEY`` (a central view only): the key changes asked for here are signed with;
  with it (and the write token) a change the edge's API takes is sent to the edge box, which
  applies it when its forwarder next reads them (:mod:`store.changes`). Without it: read-only.
- ``CPAUDIT_READ_GUARD``: reading campaign data needs a token too (the write token or the read
  token). ``cpaudit serve`` turns it on when it listens beyond localhost with a token configured.
  A token is accepted as ``Authorization: Bearer <token>`` or as HTTP Basic with the token as the
  password, so that a browser asks for it once and sends it with every request (no cookies).
  ``/healthz``, the static files and the OpenAPI description stay open.

Every response carries the security headers of :data:`SECURITY_HEADERS` (no CDN: everything the
pages load comes from this server); request bodies are limited to ``MAX_CONTENT_LENGTH``.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import os
import threading
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from cpaudit import config as cfgmod
from cpaudit.store import SQLiteStore
from cpaudit.store.base import CampaignReader, CampaignStore


class APIError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


# plotly.js injects <style> elements and the pages set a few style attributes: styles may be
# inline, scripts never; images of exported charts are data:/blob: URLs
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_BODY = 64 * 1024          # [bytes] the largest JSON body a client sends is a manual reading
# what a read guard leaves open: no campaign data there
_OPEN = ("/healthz", "/static/", "/api/v1/openapi.json")
CUSTOM_RUNNING = 2            # custom-window computations at a time (the live documents aside)
CUSTOM_WAITING = 2            # ... and waiting for a slot; more get 503 at once


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def create_app(settings: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        CPAUDIT_CONFIG=os.environ.get("CPAUDIT_CONFIG", "config/examples/brewery.yaml"),
        CPAUDIT_STORE=os.environ.get("CPAUDIT_STORE", "var/demo.db"),
        CPAUDIT_TOKEN=os.environ.get("CPAUDIT_TOKEN") or None,
        CPAUDIT_READ_TOKEN=os.environ.get("CPAUDIT_READ_TOKEN") or None,
        CPAUDIT_READ_GUARD=_env_bool("CPAUDIT_READ_GUARD"),
        CPAUDIT_CHANGE_KEY=os.environ.get("CPAUDIT_CHANGE_KEY") or None,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=MAX_BODY,
    )
    if settings:
        app.config.update(settings)
    from cpaudit.store.url import is_url
    # a central view: the campaign as its edge box forwarded it to InfluxDB, read-only
    central = is_url(str(app.config["CPAUDIT_STORE"]))
    app.extensions["cpaudit_central"] = central
    if app.config["CPAUDIT_CONFIG"]:
        app.extensions["cpaudit_config"] = cfgmod.load(app.config["CPAUDIT_CONFIG"])
    else:               # the configuration the edge box forwarded with the data
        app.extensions["cpaudit_config"] = forwarded_config(app.config["CPAUDIT_STORE"])
    app.extensions["cpaudit_cache"] = {}
    app.extensions["cpaudit_custom_cache"] = {}
    app.extensions["cpaudit_lock"] = threading.Lock()
    app.extensions["cpaudit_custom"] = threading.BoundedSemaphore(CUSTOM_RUNNING)
    app.extensions["cpaudit_custom_queued"] = [0]

    from cpaudit.web.api import bp as api_bp
    from cpaudit.web.manual import bp as manual_bp
    from cpaudit.web.pages import bp as pages_bp
    app.register_blueprint(api_bp)
    app.register_blueprint(manual_bp)
    app.register_blueprint(pages_bp)
    __import__("cpaudit.web.history").web.history.register(app)   # closure per cycle / trailing window

    @app.get("/healthz")
    def _healthz():  # type: ignore[no-untyped-def]
        """Liveness for a container's health check: the app answers and its store opens."""
        get_store().max_seq()
        return jsonify(ok=True)

    @app.before_request
    def _central_reads_only() -> Any:
        """Centrally nothing changes here: a change the edge's API takes is sent to the edge
        box when a change key allows it (web.api.make_change), everything else is 405."""
        if current_app.extensions["cpaudit_central"] and request.method not in ("GET", "HEAD"):
            from cpaudit.web.api import CHANGE_PATHS
            if current_app.config.get("CPAUDIT_CHANGE_KEY") and request.path in CHANGE_PATHS:
                return None
            return _refuse(405, "a central view of a campaign forwarded by its edge box is "
                                "read-only: start, stop, mark and enter readings on the edge box "
                                "(or start the central server with CPAUDIT_CHANGE_KEY, the key "
                                "the edge box takes changes signed with)")
        return None

    @app.before_request
    def _read_guard() -> Any:
        return read_guard("reading this campaign")

    secure_headers(app)

    @app.errorhandler(APIError)
    def _api_error(e: APIError):  # type: ignore[no-untyped-def]
        return jsonify(error=e.message, status=e.status), e.status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(error=e.description, status=e.code), e.code

    @app.teardown_appcontext
    def _close(exc: BaseException | None) -> None:
        st = g.pop("store", None)
        if st is not None:
            st.close()

    return app


def read_guard(what: str) -> Response | None:
    """With ``CPAUDIT_READ_GUARD``, the 401 a request gets for ``what`` unless it presents the
    write or the read token (the open paths aside); None when it may go on."""
    if not current_app.config["CPAUDIT_READ_GUARD"] or request.path.startswith(_OPEN):
        return None
    tokens = [t for t in (current_app.config["CPAUDIT_TOKEN"],
                          current_app.config["CPAUDIT_READ_TOKEN"]) if t]
    got = presented_token()
    if tokens and got is not None and any(hmac.compare_digest(got.encode(), t.encode())
                                          for t in tokens):
        return None
    r = jsonify(error=f"{what} needs the access token (Authorization: Bearer ..., or the token "
                      "as the password of HTTP Basic)", status=401)
    r.status_code = 401
    r.headers["WWW-Authenticate"] = 'Basic realm="cpaudit", charset="UTF-8"'
    return r


def secure_headers(app: Flask) -> None:
    """Every response of ``app`` carries :data:`SECURITY_HEADERS`."""
    @app.after_request
    def _headers(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp


def presented_token() -> str | None:
    """The token a request presents: ``Bearer <token>``, or the password of HTTP Basic."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def get_store() -> CampaignReader:
    """The request's store: the SQLite record, or (a central view) the campaign in InfluxDB."""
    if "store" not in g:
        path = current_app.config["CPAUDIT_STORE"]
        if current_app.extensions.get("cpaudit_central"):
            from cpaudit.store.url import open_store
            g.store = open_store(path)
        else:
            g.store = SQLiteStore(path)
    return g.store  # type: ignore[no-any-return]


def edge_store() -> CampaignStore:
    """The request's store for a change (start, stop, marks, hand readings): the edge box's own
    record; a central copy refuses (405) — the app refuses every change there before this."""
    st = get_store()
    if not isinstance(st, CampaignStore):
        raise APIError(405, "this store is a read-only copy: make changes on the edge box")
    return st


def forwarded_config(store_url: str) -> cfgmod.Config:
    """The campaign's configuration as its edge box forwarded it (``campaign_config``)."""
    from cpaudit.store.url import open_store
    st = open_store(str(store_url))
    try:
        text = st.campaign_config()
    finally:
        st.close()
    if text is None:
        raise cfgmod.ConfigError([cfgmod.Problem(str(store_url), None, "",
                                                 "the store carries no campaign configuration; "
                                                 "give the config file")])
    return cfgmod.load_text(text, f"<configuration forwarded with {store_url}>")


def _refuse(status: int, message: str) -> Response:
    r = jsonify(error=message, status=status)
    r.status_code = status
    return r


def get_config() -> cfgmod.Config:
    return current_app.extensions["cpaudit_config"]  # type: ignore[no-any-return]
