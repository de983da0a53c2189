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
