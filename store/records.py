"""The campaign's own records behind named accessors: when it started and stopped, its cycle
marks, its configuration, the notes and retractions of the readings entered by hand.

A backend keeps them as key/value records (SQLite's ``meta`` table; InfluxDB's ``<m>_meta``
measurement, as the edge box forwarded them) and inherits :class:`CampaignRecords`, which is the
only place that knows the keys (:mod:`store.keys`). The analyzer and the web use the accessors.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from cpaudit.store.keys import (CAMPAIGN_CONFIG, CAMPAIGN_END, CAMPAIGN_NAME, CAMPAIGN_START, CYCLE_MARKS,
                        MANUAL_NOTE, MANUAL_RETRACTED, manual_note_key, retracted_key)


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:          # a record edited by hand: none rather than a failure
        return None


class CampaignRecords(ABC):
    """Named accessors over a backend's ``get_meta`` and ``meta_items``: reading."""

    # -- what a backend provides --------------------------------------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def meta_items(self) -> dict[str, str]: ...

    # -- reading ------------------------------------------------------------------------------
    def campaign_start(self) -> int | None:
        """When the campaign began [ns UTC] (the collector's first start, or a restart on the
        web); None before anything ran."""
        return _int(self.get_meta(CAMPAIGN_START))

    def campaign_end(self) -> int | None:
        """When the campaign was stopped by hand [ns UTC]; None while it runs."""
        return _int(self.get_meta(CAMPAIGN_END))

    def campaign_name(self) -> str | None:
        return self.get_meta(CAMPAIGN_NAME) or None

    def campaign_config(self) -> str | None:
        """The campaign file (YAML) the collector ran, kept with its data."""
        return self.get_meta(CAMPAIGN_CONFIG)

    def cycle_marks(self) -> list[int]:
        """The production cycle boundaries marked by hand [ns UTC], in time order."""
        raw = self.get_meta(CYCLE_MARKS)
        if not raw:
            return []
        try:
            return sorted(int(x) for x in json.loads(raw))
        except (ValueError, TypeError):
            return []

    def manual_notes(self) -> tuple[dict[tuple[str, int], str],
                                    dict[tuple[str, int], dict[str, Any]]]:
        """The notes of the readings entered by hand and their retractions ({"at": ns,
        "note": why}), both keyed by (tag, ts)."""
        notes: dict[tuple[str, int], str] = {}
        gone: dict[tuple[str, int], dict[str, Any]] = {}
        for k, v in self.meta_items().items():
            for prefix, into in ((MANUAL_NOTE, notes), (MANUAL_RETRACTED, gone)):
                if k.startswith(prefix):
                    tag, _, ts = k[len(prefix):].rpartition(".")
                    if not ts.isdigit():
                        continue
                    if into is notes:
                        notes[(tag, int(ts))] = v
                    else:
                        try:
                            gone[(tag, int(ts))] = dict(json.loads(v))
                        except (ValueError, TypeError):
                            gone[(tag, int(ts))] = {"at": None, "note": v}
        return notes, gone



class KeptRecords(CampaignRecords):
    """... and writing, over ``set_meta`` and ``retract``: the edge box's own record."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def retract(self, tag: str, ts: int) -> bool: ...

    def begin_campaign(self, ts: int, name: str | None = None) -> None:
        """Start (or restart) the campaign at ``ts``: the analyses count from there."""
        self.set_meta(CAMPAIGN_START, str(ts))
        self.set_meta(CAMPAIGN_END, "")
        if name is not None:
            self.set_meta(CAMPAIGN_NAME, name)

    def end_campaign(self, ts: int) -> None:
        self.set_meta(CAMPAIGN_END, str(ts))

    def keep_config(self, text: str) -> None:
        self.set_meta(CAMPAIGN_CONFIG, text)

    def mark_cycle(self, ts: int) -> list[int]:
        """Add a cycle boundary (once); the marks after it."""
        now = self.cycle_marks()
        if ts not in now:
            now = sorted(now + [ts])
            self.set_meta(CYCLE_MARKS, json.dumps(now))
        return now

    def note_manual(self, tag: str, ts: int, note: str) -> None:
        self.set_meta(manual_note_key(tag, ts), note)

    def retract_manual(self, tag: str, ts: int, at: int, note: str) -> bool:
        """Retract the hand reading of ``tag`` at ``ts`` (kept, bad quality) and say when and
        why; False when there is none to retract."""
        if not self.retract(tag, ts):
            return False
        self.set_meta(retracted_key(tag, ts), json.dumps({"at": at, "note": note}))
        return True
