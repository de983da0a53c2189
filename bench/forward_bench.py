"""Forwarder against raw HTTP /write batches to the same influxd."""
from __future__ import annotations


def run() -> None:
    print("\nforward — not yet written")
