"""The reserved names: the store's records of a campaign, the collector's health tags, and the
time conventions every package shares. Spelt here once; every other module imports them.

Intervals: every window in cpaudit is half-open, ``start <= ts < end`` in ns UTC, ``None`` for
an open side, as ``Store.read`` has always taken it. A window an auditor types as "to 18:00"
ends at 18:00 exclusive; a window "to the last sample" ends one ns after that sample
(``end_after``).
"""
from __future__ import annotations

MINUTE = 60_000_000_000           # the rollup's bucket [ns]: one row per tag and minute
# the times a change or an API request may name [ns since the epoch, UTC]: to the end of 2199
# (later overflows no int64, 2262, and is no campaign either)
TS_MAX = 7_258_118_400 * 1_000_000_000           # 2200-01-01T00:00Z
FUTURE_SLACK_NS = 60 * 1_000_000_000  # clocks of a browser, the office and an edge box may differ this much

# --- the campaign's own records (store meta keys) ---
CAMPAIGN_START = "campaign_start"     # ns, when the campaign began (the collector's first start)
CAMPAIGN_END = "campaign_end"         # ns, the campaign stopped by hand ("" = running)
CAMPAIGN_NAME = "campaign_name"       # the configuration's campaign name
CAMPAIGN_CONFIG = "campaign_config"   # the campaign's YAML, as the collector ran it
CYCLE_MARKS = "cycle_marks"           # JSON list of ns: batch boundaries marked on the web
MANUAL_NOTE = "manual."               # manual.<tag>.<ts> = the note of a hand reading
MANUAL_RETRACTED = "retracted."       # retracted.<tag>.<ts> = {"at": ns, "note": why}
CHANGE_PREFIX = "change."             # change.<id> = the outcome of a change asked for centrally
RECORD_ID = "record_id"               # the edge record's own id (a change is meant for one record)
GENERATED = "campaign.generated"      # JSON: how simulators.generate made this store

# --- the collector's health tags ---
HEALTH_PREFIX = "_health."            # _health.<device>.<quantity>; never a process tag
COLLECTOR = "collector"               # the device name of the collector's own health


def health_tag(device: str, quantity: str) -> str:
    """``_health.<device>.<quantity>``: the tag a health figure of one device is stored under."""
    return f"{HEALTH_PREFIX}{device}.{quantity}"


def is_health(tag: str) -> bool:
    return tag.startswith(HEALTH_PREFIX)


def manual_note_key(tag: str, ts: int) -> str:
    return f"{MANUAL_NOTE}{tag}.{ts}"


def retracted_key(tag: str, ts: int) -> str:
    return f"{MANUAL_RETRACTED}{tag}.{ts}"


def change_key(cid: str) -> str:
    return f"{CHANGE_PREFIX}{cid}"


def end_after(ts: int | None) -> int | None:
    """The exclusive end of a window that includes ``ts``."""
    return None if ts is None else ts + 1
