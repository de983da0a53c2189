"""The one record: a sample, and its columnar batch.

A reading is a sample: ``tag`` (str), ``ts`` (int, ns since epoch, UTC), ``value`` (float), ``quality``
(good / uncertain / bad) with a ``reason``. A missing reading is never silent: a failed poll yields a
bad-quality sample with a NaN value (DESIGN.md, "The one record").

The DataFrame form of samples has the columns in :data:`SAMPLE_COLUMNS`:
``ts`` (int64 ns UTC), ``tag`` (str), ``value`` (float64), ``quality`` (int8, see :class:`Quality`),
``reason`` (int8, see :class:`Reason`). The analyzer depends on this schema only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable, Sequence

import numpy as np

SAMPLE_COLUMNS = ("ts", "tag", "value", "quality", "reason")


class Quality(IntEnum):
    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Reason(IntEnum):
    """Why a sample is not simply good. ``NONE`` goes with good quality."""

    NONE = 0
    TIMEOUT = 1      # no answer within the device timeout
    EXCEPTION = 2    # the device answered a Modbus exception
    DECODE = 3       # the answer could not be decoded (garbage, NaN sentinel, wrong length)
    RANGE = 4        # value outside the plausible range declared for the tag
    STALE = 5        # value did not change when it must have
    LATE = 6         # the answer came later than the configured tolerance after the tick
    OVERRUN = 7      # the tick was skipped because the previous poll was still running
    CONNECTION = 8   # no connection to the device
    MANUAL = 9       # entered by hand; never presented as measured
    DOWN = 10        # the collector itself was not running at the tick
    # HJ 212 data flags (HJ 212-2017 Table 8; collector.hj212.FLAG_QUALITY): the flag is the reason
    STOPPED = 11          # F: instrument stopped
    MAINTENANCE = 12      # M: maintenance
    FAULT = 13            # D: instrument fault
    CALIBRATION = 14      # C: calibrating
    OVER_RANGE = 15       # T: above the measuring upper limit
    INSTRUMENT_COMM = 16  # B: instrument-to-logger communication fault
    HJ212_FLAG = 17       # another data-flag letter (kept in the raw packet)
    SENDER_CLOCK = 18     # the sender's clock is implausible: stamped with the receive time
    # (30+ so that reasons other sources add below them keep their numbers when merged)
    CLOCK = 30       # the wall clock stepped over the tick: it never came in real time
    LOST = 31        # not kept: the store refused writes beyond the collector's memory bound

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Sample:
    tag: str
    ts: int
    value: float
    quality: Quality = Quality.GOOD
    reason: Reason = Reason.NONE

    def __post_init__(self) -> None:
        if not self.tag:
            raise ValueError("a sample needs a tag")
        if not isinstance(self.ts, int) or isinstance(self.ts, bool):
            raise TypeError(f"ts must be int ns since epoch, got {type(self.ts).__name__}")
        if not math.isfinite(self.value) and self.quality == Quality.GOOD:
            raise ValueError(f"{self.tag}@{self.ts}: a non-finite value cannot be good quality")
        if self.quality == Quality.GOOD and self.reason != Reason.NONE:
            raise ValueError(f"{self.tag}@{self.ts}: good quality carries no reason")


@dataclass(slots=True)
class Batch:
    """Samples in columns. Keeps the invariant: a non-finite value is never good quality."""

    tags: list[str] = field(default_factory=list)
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    value: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    quality: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    reason: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))

    def __post_init__(self) -> None:
        self.ts = np.asarray(self.ts, dtype=np.int64)
        self.value = np.asarray(self.value, dtype=np.float64)
        self.quality = np.asarray(self.quality, dtype=np.int8)
        self.reason = np.asarray(self.reason, dtype=np.int8)
        n = len(self.tags)
        if not (len(self.ts) == len(self.value) == len(self.quality) == len(self.reason) == n):
            raise ValueError("batch columns differ in length")
        bad_good = (~np.isfinite(self.value)) & (self.quality == Quality.GOOD)
        if bad_good.any():
            i = int(np.flatnonzero(bad_good)[0])
            raise ValueError(f"{self.tags[i]}@{int(self.ts[i])}: a non-finite value cannot be good")

    def __len__(self) -> int:
        return len(self.tags)

    @classmethod
    def from_samples(cls, samples: Iterable[Sample]) -> "Batch":
        s = list(samples)
        return cls(
            tags=[x.tag for x in s],
            ts=np.fromiter((x.ts for x in s), np.int64, len(s)),
            value=np.fromiter((x.value for x in s), np.float64, len(s)),
            quality=np.fromiter((int(x.quality) for x in s), np.int8, len(s)),
            reason=np.fromiter((int(x.reason) for x in s), np.int8, len(s)),
        )

    @classmethod
    def concat(cls, batches: Sequence["Batch"]) -> "Batch":
        if not batches:
            return cls()
        tags: list[str] = []
        for b in batches:
            tags.extend(b.tags)
        return cls(
            tags=tags,
            ts=np.concatenate([b.ts for b in batches]),
            value=np.concatenate([b.value for b in batches]),
            quality=np.concatenate([b.quality for b in batches]),
            reason=np.concatenate([b.reason for b in batches]),
        )
