"""Flask application factory.

``create_app({"CPAUDIT_CONFIG": path, "CPAUDIT_STORE": path})``. The campaign config is loaded once
(a broken config never starts the app); the store is opened per app and closed at teardown.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, current_app, g, jsonify
from werkzeug.exceptions import HTTPException

import config as cfgmod
from store import SQLiteStore


class APIError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def create_app(settings: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        CPAUDIT_CONFIG=os.environ.get("CPAUDIT_CONFIG", "config/examples/brewery.yaml"),
        CPAUDIT_STORE=os.environ.get("CPAUDIT_STORE", "var/demo.db"),
        JSON_SORT_KEYS=False,
    )
    if settings:
        app.config.update(settings)
    app.extensions["cpaudit_config"] = cfgmod.load(app.config["CPAUDIT_CONFIG"])
    app.extensions["cpaudit_cache"] = {}
    app.extensions["cpaudit_lock"] = threading.Lock()

    from web.api import bp as api_bp
    from web.pages import bp as pages_bp
    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    __import__("web.history").history.register(app)   # closure per cycle / trailing window

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


def get_store() -> SQLiteStore:
    if "store" not in g:
        g.store = SQLiteStore(current_app.config["CPAUDIT_STORE"])
    return g.store  # type: ignore[no-any-return]


def get_config() -> cfgmod.Config:
    return current_app.extensions["cpaudit_config"]  # type: ignore[no-any-return]
