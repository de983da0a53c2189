"""Pages. They hold no figures of their own: the browser fetches everything from /api/v1. The
charts use plotly.js as shipped inside the ``plotly`` Python package, served from here (no CDN:
the edge box is offline)."""
from __future__ import annotations

import os

from flask import Blueprint, abort, render_template, send_from_directory

from web.app import get_config

bp = Blueprint("pages", __name__)

# the only files /vendor serves: a fixed map, no request parameter reaches the filesystem
_VENDOR = {"plotly.min.js": ("plotly", ("package_data", "plotly.min.js"))}


def _page(name: str, charts: bool = False):  # type: ignore[no-untyped-def]
    return render_template(f"{name}.html", cfg=get_config(), page=name, charts=charts)


@bp.get("/")
def campaign():  # type: ignore[no-untyped-def]
    return _page("campaign", charts=True)


@bp.get("/balances")
def balances():  # type: ignore[no-untyped-def]
    return _page("balances", charts=True)


@bp.get("/devices")
def devices():  # type: ignore[no-untyped-def]
    return _page("devices")


@bp.get("/explorer")
def explorer():  # type: ignore[no-untyped-def]
    return _page("explorer", charts=True)


@bp.get("/exports")
def exports():  # type: ignore[no-untyped-def]
    return _page("exports")


@bp.get("/vendor/<name>")
def vendor(name: str):  # type: ignore[no-untyped-def]
    if name not in _VENDOR:
        abort(404)
    package, parts = _VENDOR[name]
    mod = __import__(package)
    folder = os.path.join(os.path.dirname(mod.__file__ or ""), *parts[:-1])
    return send_from_directory(folder, parts[-1], max_age=86400)
