"""The store interfaces. A backend is correct when it passes ``tests/store/test_contract.py``.

- :class:`Store`: samples in and out — what the collector writes to and a forwarder's sink is.
- :class:`CampaignReader`: what the analyzer and the web read — the samples, the per-minute
  rollup, state transitions, the write order (for live readers) and the campaign's own records
  behind named accessors (:class:`store.records.CampaignRecords`). SQLite (the edge box) and
  InfluxDB (a central copy, read-only) implement it.
- :class:`CampaignStore`: a reader that also keeps the records the web changes (start, stop,
  cycle marks, hand readings and their retractions): the edge box's SQLite.

Windows are half-open, ``start <= ts < end`` (ns UTC; None = open), everywhere.

Errors::

    StoreError            anything a backend cannot do (bad URL, closed store, unreadable file)
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import pandas as pd

from cpaudit.store.sample import Batch


class StoreError(Exception):
    """A store cannot do what was asked."""


class PointsRejected(StoreError):
    """The sink refused some points of a write for what they hold (HTTP 400, 413 or 422 from
    InfluxDB: a tag it cannot parse, a body too large, a point outside retention) as against
    being unreachable or refusing the client: split the write to find them."""

    def __init__(self, message: str, status: int, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message


@runtime_checkable
class Store(Protocol):
    def write(self, batch: Batch) -> int:
        """Write a batch durably; return the number of new samples. Idempotent on (tag, ts)."""

    def read(self, tags: Sequence[str] | None = None, start: int | None = None,
             end: int | None = None) -> pd.DataFrame:
        """Samples with ``start <= ts < end`` (ns UTC; None = open) as a frame of SAMPLE_COLUMNS,
        sorted by tag then ts. ``tags=None`` reads every tag."""

    def last(self, tags: Sequence[str] | None = None) -> pd.DataFrame:
        """The newest sample of each tag (any quality), as a frame of SAMPLE_COLUMNS."""

    def stats(self) -> dict[str, Any]:
        """Counts and the time span: ``samples``, ``tags``, ``first_ts``, ``last_ts``."""

    def tags(self) -> list[str]:
        """Every tag the store holds."""

    def close(self) -> None:
        ...


@runtime_checkable
class CampaignReader(Store, Protocol):
    """What the analyzer and the web read (see the module)."""

    def rollup(self, tags: Sequence[str] | None = None, start: int | None = None,
               end: int | None = None) -> pd.DataFrame:
        """One row per tag and minute overlapping [start, end): ``tag, bucket`` (the minute's
        start, ns), ``rows, good, manual, first_ts, last_ts, vsum, vmin, vmax`` over the good
        samples (rows and first/last over all), sorted by tag and bucket."""

    def rollup_since(self, after_seq: int, tags: Sequence[str] | None = None
                     ) -> tuple[int, pd.DataFrame]:
        """The rollup rows of every minute written to after write number ``after_seq``, whole,
        and the newest write number: how a live reader stays current."""

    def transitions(self, tag: str, start: int | None = None, end: int | None = None
                    ) -> pd.DataFrame:
        """The samples of a state tag where its good value changes (and the first), in [start,
        end)."""

    def max_seq(self) -> int:
        """The newest write number (0 when empty): a document keyed on it is current."""

    def quick_stats(self) -> dict[str, Any]:
        """``samples``, ``tags``, ``first_ts``, ``last_ts`` from indexes (no scan)."""

    def first_minute(self) -> int | None:
        """The start [ns] of the first minute that holds a sample."""

    def manual(self) -> pd.DataFrame:
        """Every reading entered by hand, retracted ones included (bad quality), in time order."""

    def meta_items(self) -> dict[str, str]:
        """Every campaign record (what an edge box forwards)."""

    def campaign_start(self) -> int | None: ...

    def campaign_end(self) -> int | None: ...

    def campaign_name(self) -> str | None: ...

    def campaign_config(self) -> str | None: ...

    def cycle_marks(self) -> list[int]: ...

    def manual_notes(self) -> tuple[dict[tuple[str, int], str],
                                    dict[tuple[str, int], dict[str, Any]]]: ...


@runtime_checkable
class CampaignStore(CampaignReader, Protocol):
    """A reader that keeps the records the web changes: the edge box's own store."""

    def begin_campaign(self, ts: int, name: str | None = None) -> None: ...

    def end_campaign(self, ts: int) -> None: ...

    def keep_config(self, text: str) -> None: ...

    def mark_cycle(self, ts: int) -> list[int]: ...

    def note_manual(self, tag: str, ts: int, note: str) -> None: ...

    def retract_manual(self, tag: str, ts: int, at: int, note: str) -> bool: ...
