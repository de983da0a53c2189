"""InfluxDB backends.

- :class:`InfluxV1Store`: the v1 HTTP API (``/write`` with line protocol, ``/query`` with InfluxQL).
  InfluxDB 1.x serves it natively; 2.x and 3.x serve it through their v1 compatibility endpoints
  (a database/retention-policy mapping to a bucket, a token as the password). Tested against a real
  ``influxd`` 1.6.7. Implements the whole ``Store`` interface (the contract suite runs on it).
- :class:`InfluxV2Sink`: writes through influxdb-client's v2 API (token, org, bucket). Write only:
  reading back goes through the v1 compatibility API with :class:`InfluxV1Store`.

Unlike SQLite (first write is the record), InfluxDB keeps the last write of a series + timestamp.
Samples reach InfluxDB only from the SQLite record through the forwarder, so a re-send carries the
same values and the difference does not show.
"""
from __future__ import annotations

import http.client
import logging
import json
import threading
import urllib.parse
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from influxdb_client import WritePrecision

from cpaudit.store.base import PointsRejected, StoreError
from cpaudit.store.changes import Change, from_point
from cpaudit.store.records import CampaignRecords

log = logging.getLogger("cpaudit.store")

# statuses that are about the points written, not the server or the client (InfluxDB 1.x answers
# 400 for a line it cannot parse, 413 beyond max-body-size; 2.x also 422 outside retention)
REJECTED = (400, 413, 422)


def _short_error(resp: bytes) -> str:
    """influxd's error without the echo of the line it could not parse (which may be 64 KiB):
    ``unable to parse 'm,tag=hhhh…': max key length exceeded: …``."""
    text = resp.decode(errors="replace")
    try:
        text = str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        pass
    head, sep, rest = text.partition("unable to parse '")
    if sep:
        line, sep2, why = rest.partition("': ")
        if sep2:
            text = f"{head}unable to parse '{line[:40]}…': {why}" if len(line) > 40 else text
    return text[:300]
from cpaudit.store.lineproto import (change_line, format_lines, meta_lines, rollup_lines,
                                     status_lines)
from cpaudit.store.sample import SAMPLE_COLUMNS, Batch, Quality, Reason


def _lit(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Records:
    """What an edge box forwards beside its samples, for either sink: the per-minute rollup
    (:func:`store.lineproto.rollup_lines`), the campaign's records (``meta_lines``) and its
    forwarding status (``status_lines``), written through the sink's ``_text`` in batches."""

    measurement: str
    scope: dict[str, str]

    def _text(self, text: str) -> None:
        raise NotImplementedError

    def write_rollup(self, frame: pd.DataFrame) -> int:
        lines = rollup_lines(frame, self.measurement, self.scope)
        for i in range(0, len(lines), 5000):
            self._text("\n".join(lines[i:i + 5000]))
        return len(lines)

    def write_meta(self, items: dict[str, str]) -> None:
        lines = meta_lines(items, self.measurement, self.scope)
        if lines:
            self._text("\n".join(lines))

    def write_status(self, status: dict[str, float], ts: int) -> None:
        lines = status_lines(status, ts, self.measurement, self.scope)
        if lines:
            self._text("\n".join(lines))


class InfluxV1Store(_Records, CampaignRecords):
    def __init__(self, url: str, database: str, *, measurement: str = "cpaudit",
                 username: str | None = None, password: str | None = None,
                 timeout_s: float = 10.0, create: bool = True,
                 scope: dict[str, str] | None = None) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise StoreError(f"InfluxDB URL must be http(s)://host:port, got {url!r}")
        self.url, self.database, self.measurement = url.rstrip("/"), database, measurement
        self._host, self._port, self._https = u.hostname, u.port, u.scheme == "https"
        self._base = u.path.rstrip("/")
        self._auth = {"u": username, "p": password} if username else {}
        self.timeout_s = timeout_s
        # site and campaign: written as tags on every point, and every read is limited to them,
        # so many edge boxes share one database (empty values are left out)
        self.scope = {k: v for k, v in (scope or {}).items() if v}
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()
        if create:
            self.query(f'CREATE DATABASE "{database}"', with_db=False)

    # -- HTTP ----------------------------------------------------------------------------------
    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            c = cls(self._host, self._port, timeout=self.timeout_s)
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    def _request(self, method: str, path: str, params: dict[str, Any], body: bytes | None = None
                 ) -> tuple[int, bytes]:
        qs = urllib.parse.urlencode({k: v for k, v in {**params, **self._auth}.items()
                                     if v is not None})
        for attempt in (0, 1):       # one retry on a stale keep-alive connection
            c = self._conn()
            try:
                c.request(method, f"{self._base}{path}?{qs}", body=body,
                          headers={"Content-Type": "text/plain; charset=utf-8"} if body else {})
                r = c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError) as e:
                c.close()
                self._local.conn = None
                if attempt:
                    raise StoreError(f"InfluxDB {self.url}: {e}") from e
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        try:
            status, _ = self._request("GET", "/ping", {})
        except StoreError:
            return False
        return status == 204

    def _text(self, text: str) -> None:
        self.write_lines(text)

    def write_lines(self, body: str) -> None:
        status, resp = self._request("POST", "/write", {"db": self.database, "precision": "ns"},
                                     body.encode())
        if status != 204:
            detail = _short_error(resp)
            text = f"InfluxDB {self.url} /write: HTTP {status}: {detail}"
            if status in REJECTED:
                raise PointsRejected(text, status, detail)
            raise StoreError(text)

    def query(self, q: str, *, with_db: bool = True) -> list[dict[str, Any]]:
        """Run InfluxQL; return the list of series of every statement's results (chunked)."""
        params = {"q": q, "epoch": "ns", "chunked": "true", "chunk_size": 20000}
        if with_db:
            params["db"] = self.database
        status, resp = self._request("POST", "/query", params)
        if status != 200:
            raise StoreError(f"InfluxDB {self.url} /query: HTTP {status}: "
                             f"{resp[:300].decode(errors='replace')}")
        series: list[dict[str, Any]] = []
        for chunk in _chunks(resp):
            for res in chunk.get("results", []):
                if "error" in res:
                    raise StoreError(f"InfluxDB {self.url}: {res['error']} in {q!r}")
                series.extend(res.get("series", []))
        return series

    # -- Store ---------------------------------------------------------------------------------
    def write(self, batch: Batch) -> int:
        if len(batch) == 0:
            return 0
        self.write_lines(format_lines(batch, self.measurement, self.scope))
        return len(batch)

    # -- what the edge forwards beside the samples ---------------------------------------------
    # -- what a central reader sees: every campaign the edge boxes forward ----------------------
    def campaigns(self) -> list[dict[str, Any]]:
        """Every (site, campaign) that forwarded its records here, with its start and end, the
        newest minute of data and the edge box's last forwarding status (backlog: samples it
        holds and has not forwarded yet; at: when it said so)."""
        m = self.measurement
        seen = set()
        for srs in self.query(f'SHOW SERIES FROM "{m}_meta"'):
            for (key,) in srs.get("values", []):
                tags = dict(_series_tags(key))
                seen.add((tags.get("site", ""), tags.get("campaign", "")))
        out = []
        for site, campaign in sorted(seen):
            one = InfluxV1Store(self.url, self.database, measurement=m, create=False,
                                scope={"site": site, "campaign": campaign})
            one._auth = self._auth
            try:
                out.append({"site": site, "campaign": campaign,
                            "name": one.campaign_name() or campaign,
                            "start": one.campaign_start(), "end": one.campaign_end(),
                            "last_data": one.quick_stats()["last_ts"],
                            "edge": one.edge_status()})
            finally:
                one.close()
        return out

    def edge_status(self) -> dict[str, Any]:
        """The edge box's newest forwarding status (backlog, forwarded, newest_sample_ts,
        accepts_changes …; at: when it said so); {} when it sent none."""
        # the newest status point whole (last(*) of several fields says time 0)
        st = self.query(f'SELECT * FROM "{self.measurement}_edge"{self._scope_where()} '
                        'ORDER BY time DESC LIMIT 1')
        status: dict[str, Any] = {}
        if st and st[0].get("values"):
            cols, row = st[0]["columns"], st[0]["values"][0]
            status = {c: v for c, v in zip(cols, row) if c not in ("time", "site", "campaign")}
            status["at"] = int(row[0])
        return status

    # -- changes asked for centrally, on their way to the edge box (store.changes) -------------
    def write_change(self, change: Change) -> None:
        self.write_lines(change_line(change, self.measurement, self.scope))

    def changes(self, since: int | None = None, page: int = 1000, pages: int = 20
                ) -> list[Change | str]:
        """This campaign's changes asked for at or after ``since`` [ns] (None: all), oldest
        first, read ``page`` points at a time (LIMIT and OFFSET: points of one nanosecond are
        not skipped at a page's edge), at most ``pages`` pages: each a
        :class:`~store.changes.Change`, or why a point is none (anyone who may write the
        database may write anything there)."""
        out: list[Change | str] = []
        where = self._scope_where()
        if since is not None:
            where += (" AND " if where else " WHERE ") + f"time >= {int(since)}"
        for k in range(pages):
            got = 0
            for srs in self.query(f'SELECT "kind", "body", "by", "sig", "record", "seen", '
                                  f'"id"::tag FROM "{self.measurement}_changes"{where} '
                                  f'ORDER BY time ASC LIMIT {int(page)} OFFSET {k * int(page)}'):
                cols = srs.get("columns", [])
                for row in srs.get("values", []):
                    f = dict(zip(cols, row))
                    got += 1
                    out.append(from_point(f.get("id"), f.get("time"), f.get("kind"),
                                          f.get("body"), f.get("by"), f.get("sig"),
                                          f.get("record") or "", f.get("seen") or "{}"))
            if got < page:
                break
        else:
            log.error("InfluxDB %s: more than %d points of %s_changes for %s since %s: the "
                      "newest are not read (points that are no change? clear them)", self.url,
                      page * pages, self.measurement, self.scope, since)
        return out

    # -- the campaign as the edge holds it, read centrally --------------------------------------
    def get_meta(self, key: str) -> str | None:
        q = (f'SELECT "value", "parts" FROM "{self.measurement}_meta" WHERE "key" = {_lit(key)}'
             f'{self._scope_and()}')
        series = self.query(q)
        if not series or not series[0].get("values"):
            return None
        vals = sorted(series[0]["values"], key=lambda r: r[0])
        parts = int(vals[0][2] or 1)
        if len(vals) < parts:
            return None                      # still arriving
        return "".join(str(r[1]) for r in vals[:parts])

    def meta_items(self) -> dict[str, str]:
        """Every record the edge box forwarded for this campaign (one query)."""
        series = self.query(f'SELECT "value", "parts" FROM "{self.measurement}_meta"'
                            f'{self._scope_where()} GROUP BY "key"')
        out: dict[str, str] = {}
        for srs in series:
            key = (srs.get("tags") or {}).get("key")
            vals = sorted(srs.get("values") or [], key=lambda r: r[0])
            if key is None or not vals:
                continue
            parts = int(vals[0][2] or 1)
            if len(vals) >= parts:           # else still arriving
                out[key] = "".join(str(r[1]) for r in vals[:parts])
        return out

    def meta_keys(self) -> list[str]:
        series = self.query(f'SHOW TAG VALUES FROM "{self.measurement}_meta" WITH KEY = "key"'
                            f'{self._scope_where()}')
        return sorted(v[1] for s in series for v in s.get("values", []))

    def rollup(self, tags: Sequence[str] | None = None, start: int | None = None,
               end: int | None = None) -> pd.DataFrame:
        """The minutes forwarded by the edge that overlap [start, end), as
        ``SQLiteStore.rollup`` gives them (the same columns, types and order)."""
        from cpaudit.store.sqlite import ROLLUP_BUCKET_NS, _empty_rollup
        if tags is not None and not tags:
            return _empty_rollup()
        b = ROLLUP_BUCKET_NS
        lo = None if start is None else int(start) // b * b
        q = (f'SELECT "rows", "good", "manual", "first_ts", "last_ts", "vsum", "vmin", "vmax" '
             f'FROM "{self.measurement}_rollup"{self._where(tags, lo, end)} GROUP BY "tag"')
        parts = []
        for srs in self.query(q):
            v = srs.get("values") or []
            if not v:
                continue
            a = pd.DataFrame(v, columns=srs["columns"])
            good = a["good"].astype(np.int64)
            parts.append(pd.DataFrame({
                "tag": srs.get("tags", {}).get("tag", ""),
                "bucket": a["time"].astype(np.int64),
                "rows": a["rows"].astype(np.int64), "good": good,
                "manual": a["manual"].astype(np.int64),
                "first_ts": pd.to_numeric(a["first_ts"]).where(good > 0).astype(np.float64),
                "last_ts": pd.to_numeric(a["last_ts"]).where(good > 0).astype(np.float64),
                "vsum": pd.to_numeric(a["vsum"]).astype(np.float64),
                "vmin": pd.to_numeric(a["vmin"]).where(good > 0).astype(np.float64),
                "vmax": pd.to_numeric(a["vmax"]).where(good > 0).astype(np.float64)}))
        if not parts:
            return _empty_rollup()
        df = pd.concat(parts, ignore_index=True)
        ref = _empty_rollup()
        df = df[list(ref.columns)].astype(ref.dtypes.to_dict())
        return df.sort_values(["tag", "bucket"], kind="stable").reset_index(drop=True)

    def transitions(self, tag: str, start: int | None = None, end: int | None = None
                    ) -> pd.DataFrame:
        """The good samples of a state tag where its value changes (the first included), as
        ``SQLiteStore.transitions``: InfluxQL has no LAG, so the tag's good samples in the
        window are read and compared here."""
        df = self.read([tag], start, end)
        df = df[df["quality"] == Quality.GOOD]
        if df.empty:
            return df.reset_index(drop=True)
        v = df["value"].to_numpy()
        keep = np.r_[True, v[1:] != v[:-1]]
        return df[keep].reset_index(drop=True)

    def first_minute(self) -> int | None:
        series = self.query(f'SELECT first("rows") FROM "{self.measurement}_rollup"'
                            f'{self._scope_where()}')
        return int(series[0]["values"][0][0]) if series and series[0].get("values") else None

    def quick_stats(self) -> dict[str, Any]:
        """The newest sample's time, and as ``samples`` the rows the forwarded rollup counts
        (InfluxDB keeps no write sequence; the count moves when new data arrive)."""
        last = self.query(f'SELECT last("rows") FROM "{self.measurement}_rollup"'
                          f'{self._scope_where()}')
        total = self.query(f'SELECT sum("rows") FROM "{self.measurement}_rollup"'
                           f'{self._scope_where()}')
        lt = None
        if last and last[0].get("values"):
            lt = int(last[0]["values"][0][0])
            newest = self.query(f'SELECT last("quality") FROM "{self.measurement}"'
                                f'{self._where(None, lt, None)}')
            if newest and newest[0].get("values"):
                lt = int(newest[0]["values"][0][0])
        n = int(total[0]["values"][0][1]) if total and total[0].get("values") else 0
        return {"samples": n, "last_ts": lt}

    def max_seq(self) -> int:
        """A number that grows as data arrive (the web caches' key, :meth:`rollup_since`'s
        cursor): the newest forwarded minute [ns] plus the rows it holds so far (fewer than a
        minute's worth of ns, so the minute can be read back from it)."""
        last = self.query(f'SELECT last("rows") FROM "{self.measurement}_rollup"'
                          f'{self._scope_where()}')
        if not last or not last[0].get("values"):
            return 0
        t, rows = last[0]["values"][0][:2]
        newest = self.query(f'SELECT sum("rows") FROM "{self.measurement}_rollup"'
                            f'{self._where(None, int(t), None)}')
        n = int(newest[0]["values"][0][1]) if newest and newest[0].get("values") else int(rows)
        return int(t) + min(n, 59_999_999_999)

    def rollup_since(self, after_seq: int, tags: Sequence[str] | None = None
                     ) -> tuple[int, pd.DataFrame]:
        """The rollup rows of the minutes that may have changed since ``after_seq`` (a value of
        :meth:`max_seq`): from five minutes before the minute it names (those still filling,
        and a catch-up after an outage, which arrives after it), whole, as
        ``SQLiteStore.rollup_since`` gives them. A late sample of a much older minute (a
        device's own store and forward) shows at the next full read, not here."""
        from cpaudit.store.sqlite import ROLLUP_BUCKET_NS, _empty_rollup
        newest = self.max_seq()
        if newest == after_seq:
            return newest, _empty_rollup()
        b = ROLLUP_BUCKET_NS
        since = after_seq // b * b - 5 * b if after_seq else None
        return newest, self.rollup(tags, since, None)

    def _scope_where(self) -> str:
        c = [f'"{k}" = {_lit(v)}' for k, v in sorted(self.scope.items())]
        return (" WHERE " + " AND ".join(c)) if c else ""

    def _scope_and(self) -> str:
        return "".join(f' AND "{k}" = {_lit(v)}' for k, v in sorted(self.scope.items()))

    def _where(self, tags: Sequence[str] | None, start: int | None, end: int | None) -> str:
        c = [f'"{k}" = {_lit(v)}' for k, v in sorted(self.scope.items())]
        if tags is not None:
            c.append("(" + " OR ".join(f'"tag" = {_lit(t)}' for t in tags) + ")")
        if start is not None:
            c.append(f"time >= {int(start)}")
        if end is not None:
            c.append(f"time < {int(end)}")
        return (" WHERE " + " AND ".join(c)) if c else ""

    def _frame(self, series: list[dict[str, Any]]) -> pd.DataFrame:
        parts = []
        for s in series:
            cols = s["columns"]
            v = s.get("values") or []
            if not v:
                continue
            arr = pd.DataFrame(v, columns=cols)
            parts.append(pd.DataFrame({
                "ts": arr["time"].astype(np.int64),
                "tag": s.get("tags", {}).get("tag", ""),
                "value": pd.to_numeric(arr["value"], errors="coerce").astype(np.float64),
                "quality": arr["quality"].astype(np.int8),
                "reason": arr["reason"].astype(np.int8),
            }, columns=list(SAMPLE_COLUMNS)))
        if not parts:
            from cpaudit.store.sqlite import empty_frame
            return empty_frame()
        df = pd.concat(parts, ignore_index=True)
        return df.sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)

    def read(self, tags: Sequence[str] | None = None, start: int | None = None,
             end: int | None = None) -> pd.DataFrame:
        if tags is not None and not tags:
            return self._frame([])
        q = (f'SELECT "value", "quality", "reason" FROM "{self.measurement}"'
             f'{self._where(tags, start, end)} GROUP BY "tag"')
        return self._frame(self.query(q))

    def manual(self) -> pd.DataFrame:
        """Every reading entered by hand (reason manual), retracted ones included (bad quality:
        the edge re-sends a retracted reading), as SQLiteStore.manual gives them."""
        # InfluxDB indexes no field: find the minutes holding one in the forwarded rollup
        # (60 times smaller than the samples), then read those minutes alone
        from cpaudit.store.sqlite import ROLLUP_BUCKET_NS
        w = self._where(None, None, None)
        q = (f'SELECT "manual" FROM "{self.measurement}_rollup"'
             f'{w + " AND" if w else " WHERE"} "manual" > 0 GROUP BY "tag"')
        minutes = [(srs.get("tags", {}).get("tag", ""), int(row[0]))
                   for srs in self.query(q) for row in srs.get("values") or []]
        if not minutes and self.first_minute() is None:
            # samples written here directly, with no rollup beside them: scan the samples
            q = (f'SELECT "value", "quality", "reason" FROM "{self.measurement}"'
                 f'{w + " AND" if w else " WHERE"} "reason" = {int(Reason.MANUAL)} GROUP BY "tag"')
            f = self._frame(self.query(q))
            return f.sort_values(["ts", "tag"], kind="stable").reset_index(drop=True)
        parts = []
        for tag, bucket in minutes:
            f = self.read([tag], bucket, bucket + ROLLUP_BUCKET_NS)
            parts.append(f[f["reason"] == Reason.MANUAL])
        if not parts:
            return self._frame([])
        f = pd.concat(parts, ignore_index=True)
        return f.sort_values(["ts", "tag"], kind="stable").reset_index(drop=True)

    def last(self, tags: Sequence[str] | None = None) -> pd.DataFrame:
        if tags is not None and not tags:       # "(… OR …)" of nothing is no InfluxQL
            return self._frame([])
        q = (f'SELECT "value", "quality", "reason" FROM "{self.measurement}"'
             f'{self._where(tags, None, None)} GROUP BY "tag" ORDER BY time DESC LIMIT 1')
        return self._frame(self.query(q)).sort_values("tag").reset_index(drop=True)

    def tags(self) -> list[str]:
        series = self.query(f'SHOW TAG VALUES FROM "{self.measurement}" WITH KEY = "tag"'
                            f'{self._scope_where()}')
        return sorted(v[1] for s in series for v in s.get("values", []))

    def count(self, tags: Sequence[str] | None = None) -> int:
        if tags is not None and not tags:
            return 0
        series = self.query(f'SELECT count("quality") FROM "{self.measurement}"'
                            f'{self._where(tags, None, None)}')
        return int(series[0]["values"][0][1]) if series else 0

    def stats(self) -> dict[str, Any]:
        n = self.count()
        first = self.query(f'SELECT first("quality") FROM "{self.measurement}"'
                           f'{self._scope_where()}')
        last = self.query(f'SELECT last("quality") FROM "{self.measurement}"'
                          f'{self._scope_where()}')
        return {"samples": n, "tags": len(self.tags()),
                "first_ts": int(first[0]["values"][0][0]) if first else None,
                "last_ts": int(last[0]["values"][0][0]) if last else None, "url": self.url}

    def close(self) -> None:
        with self._conns_lock:
            for c in self._conns:
                c.close()
            self._conns.clear()
        self._local = threading.local()


def _series_tags(key: str) -> Iterator[tuple[str, str]]:
    """The tags of a series key as SHOW SERIES prints it (``m,k1=v1,k2=v2``, escaped)."""
    parts, cur, esc = [], "", False
    for ch in key:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts[1:]:
        k, _, v = p.partition("=")
        yield k, v


def _chunks(body: bytes) -> Iterator[dict[str, Any]]:
    for line in body.splitlines():
        line = line.strip()
        if line:
            yield json.loads(line)


class InfluxV2Sink(_Records):
    """Write-only sink through influxdb-client's v2 API (token, org, bucket). Not exercised
    against a real server here: Debian's InfluxDB 1.6.7 has no /api/v2/write."""

    def __init__(self, url: str, token: str, org: str, bucket: str,
                 measurement: str = "cpaudit", timeout_s: float = 10.0,
                 scope: dict[str, str] | None = None) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        self.bucket, self.org, self.measurement = bucket, org, measurement
        self.scope = {k: v for k, v in (scope or {}).items() if v}
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, batch: Batch) -> int:
        if len(batch) == 0:
            return 0
        self._send(format_lines(batch, self.measurement, self.scope))
        return len(batch)

    def _text(self, text: str) -> None:
        self._send(text)

    def _send(self, text: str) -> None:
        """Write line protocol through the v2 API, its errors translated (400/413/422: the
        points; anything else: the sink)."""
        try:
            self._write.write(bucket=self.bucket, org=self.org, record=text,
                              # the client's stubs type the enum's members as str
                              write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - influxdb-client raises many kinds; translate
            status = getattr(e, "status", None)
            if status in REJECTED:
                raise PointsRejected(f"InfluxDB v2 write: {e}", int(status)) from e  # type: ignore[arg-type]
            raise StoreError(f"InfluxDB v2 write: {e}") from e

    def close(self) -> None:
        self._client.close()
