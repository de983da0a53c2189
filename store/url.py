"""Where a store is, said as one string: a SQLite path (the edge box's record) or an InfluxDB URL
(the central copy the edge boxes forward to).

    campaign.db
    influxdb://host:8086/cpaudit?site=brewery-a&campaign=demo        (http)
    influxdbs://host:8086/cpaudit?site=…&campaign=…                  (https)

``measurement`` may be given as a parameter (default ``cpaudit``). Credentials never go in the
URL, which is printed and logged: ``CPAUDIT_INFLUX_USERNAME`` and ``CPAUDIT_INFLUX_PASSWORD`` from
the environment (for InfluxDB 2.x/3.x through the v1 API, the password is the token).
"""
from __future__ import annotations

import os
import urllib.parse
from typing import TYPE_CHECKING

from cpaudit.store.base import CampaignReader, StoreError

if TYPE_CHECKING:
    from cpaudit.store.influx import InfluxV1Store

SCHEMES = ("influxdb", "influxdbs")


def is_url(text: str) -> bool:
    return text.split("://", 1)[0] in SCHEMES and "://" in text


def open_store(text: str, *, readonly: bool = True, campaign: bool = True) -> CampaignReader:
    """The store ``text`` names (see the module); StoreError with the reason if it cannot be.
    ``campaign=False``: an InfluxDB URL may name no campaign (to list them: :func:`fleet_store`)."""
    if not is_url(text):
        from cpaudit.store.sqlite import SQLiteStore
        if readonly and not os.path.exists(text):
            raise StoreError(f"{text}: no such store")
        return SQLiteStore(text, readonly=readonly)
    u = urllib.parse.urlsplit(text)
    if u.username or u.password:
        raise StoreError("credentials do not go in the store URL (it is printed and logged): "
                         "set CPAUDIT_INFLUX_USERNAME and CPAUDIT_INFLUX_PASSWORD")
    if not u.hostname:
        raise StoreError(f"{text}: no host in the InfluxDB URL")
    db = u.path.strip("/")
    if not db or "/" in db:
        raise StoreError(f"{text}: give the database as the URL's path, e.g. "
                         "influxdb://host:8086/cpaudit?site=…&campaign=…")
    q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    unknown = set(q) - {"site", "campaign", "measurement"}
    if unknown:
        raise StoreError(f"{text}: unknown parameter(s) {', '.join(sorted(unknown))} "
                         "(site, campaign, measurement)")
    return _influx(text, u, db, q, campaign)


def fleet_store(text: str) -> "InfluxV1Store":
    """The InfluxDB database an URL names, every campaign in it (``campaigns()``); a site and a
    campaign in the URL scope it as :func:`open_store` does."""
    if not is_url(text):
        raise StoreError(f"{text}: the campaigns of many edge boxes are listed from InfluxDB "
                         "(influxdb://host:8086/db); a SQLite file is one campaign")
    st = open_store(text, campaign=False)
    from cpaudit.store.influx import InfluxV1Store
    assert isinstance(st, InfluxV1Store)
    return st


def _influx(text: str, u: urllib.parse.SplitResult, db: str, q: dict[str, str], campaign: bool
            ) -> "InfluxV1Store":
    if campaign and not q.get("campaign"):
        raise StoreError(f"{text}: say which campaign (…?site=…&campaign=…): many edge boxes "
                         "share one database")
    from cpaudit.store.influx import InfluxV1Store
    http = "https" if u.scheme == "influxdbs" else "http"
    port = f":{u.port}" if u.port else ""
    return InfluxV1Store(f"{http}://{u.hostname}{port}", db,
                         measurement=q.get("measurement") or "cpaudit",
                         username=os.environ.get("CPAUDIT_INFLUX_USERNAME") or None,
                         password=os.environ.get("CPAUDIT_INFLUX_PASSWORD") or None,
                         create=False,
                         scope={"site": q.get("site", ""), "campaign": q.get("campaign", "")})
