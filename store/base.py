"""The ``Store`` interface. A backend is correct when it passes ``tests/store/test_contract.py``.

Errors::

    StoreError            anything a backend cannot do (bad URL, closed store, unreadable file)
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import pandas as pd

from store.sample import Batch


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

    def read(self, tags: Sequence[str] | None, start: int | None, end: int | None) -> pd.DataFrame:
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
