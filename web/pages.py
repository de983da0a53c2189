"""Pages. They hold no figures of their own: the browser fetches everything from /api/v1. The
charts use plotly.js as shipped inside the ``plotly`` Python package, served from here (no CDN:
the edge box is offline)."""
from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, abort, render_template, send_from_directory

from cpaudit.web.app import get_config

bp = Blueprint("pages", __name__)

# the only files /vendor serves: a fixed map, no request parameter reaches the filesystem
_VENDOR = {"plotly.min.js": ("plotly", ("package_data", "plotly.min.js"))}


def _names() -> dict[str, Any]:
    """What the browser needs to say things in either language: node and stream names (English and
    ``name_zh`` from the campaign file), so that no page shows an id where a name belongs."""
    cfg = get_config()
    nodes = {n.id: {"en": n.name, "zh": n.name_zh or n.name} for n in cfg.flowsheet.nodes}
    streams = {s.id: {"en": s.name, "zh": s.name_zh or s.name} for s in cfg.flowsheet.streams}
    # the places a sentence names by their English name (a pollutant's last point: a stream or a stack)
    places = {s.name: s.name_zh for s in cfg.flowsheet.streams if s.name and s.name_zh}
    places.update({k.name: k.name_zh for k in getattr(cfg.pollutants, "stacks", []) if k.name and k.name_zh})
    return {"nodes": nodes, "streams": streams, "places": places}


def _page(name: str, charts: bool = False):  # type: ignore[no-untyped-def]
    cfg = get_config()
    return render_template(f"{name}.html", cfg=cfg, page=name, charts=charts, names=_names(),
                           tz=cfg.campaign.timezone)


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
