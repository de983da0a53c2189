"""MQTT, QoS 1: draining a backlog queued in a persistent session, by mosquitto_sub (C), a raw
aiomqtt subscriber (json.loads each message, acknowledged on receipt), and the collector's MQTT
source (parsed, committed to SQLite, acknowledged after the commit)."""
from __future__ import annotations


def run() -> None:
    print("\nmqtt — not yet written")
