"""The collector: reads its sources and writes samples to the store first.

Imports config and store only. The shapes of a source and what they yield are in
:mod:`collector.sources`; :mod:`collector.kinds` maps the config's device kinds to them (Modbus
polled, MQTT and HJ 212 push); :mod:`collector.service` runs them without knowing their protocol
and hands everything to the one :class:`~collector.writer.Writer`. pymodbus is imported in
:mod:`collector.modbus` alone, aiomqtt in :mod:`collector.mqtt` alone. The forwarding to the sinks
(:mod:`collector.forwarding`) is built by whoever builds the sinks and runs beside the service.
"""
