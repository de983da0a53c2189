"""Pages. They hold no figures of their own: the browser fetches everything from /api/v1."""
from __future__ import annotations

from flask import Blueprint, render_template

from web.app import get_config

bp = Blueprint("pages", __name__)


@bp.get("/")
def campaign():  # type: ignore[no-untyped-def]
    return render_template("campaign.html", cfg=get_config())
