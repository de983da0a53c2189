"""The collector: polls devices on aligned ticks and writes samples to the store first.

Imports config and store only. pymodbus is imported in :mod:`collector.modbus` alone.
"""
