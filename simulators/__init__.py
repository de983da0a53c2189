"""Simulated plant and meters. Imports ``config`` only, never the collector (DESIGN.md): the
simulators encode registers with their own code (:mod:`simulators.encode`), so that a decoding bug
in the collector cannot hide by being on both sides."""
