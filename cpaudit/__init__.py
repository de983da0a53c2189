"""The ``cpaudit`` command: wires the wings together. Nothing imports this package."""
