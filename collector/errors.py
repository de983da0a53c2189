"""The collector's error family. Library exceptions are translated at the protocol boundary.

    SourceError                 a device or broker could not deliver a reading
    ├── ConnectError            no connection (refused, unreachable, dropped)
    ├── TimeoutError_           no answer within the device timeout
    ├── DeviceException         the device answered with a Modbus exception code
    └── DecodeError             the answer could not be decoded
"""
from __future__ import annotations

from cpaudit.store import Reason


class SourceError(Exception):
    reason = Reason.CONNECTION

    def __init__(self, device: str, where: str, message: str) -> None:
        super().__init__(f"{device} {where}: {message}")
        self.device, self.where = device, where


class ConnectError(SourceError):
    reason = Reason.CONNECTION


class TimeoutError_(SourceError):  # noqa: N801 (the builtin name is taken)
    reason = Reason.TIMEOUT


class DeviceException(SourceError):
    reason = Reason.EXCEPTION

    def __init__(self, device: str, where: str, code: int) -> None:
        super().__init__(device, where, f"Modbus exception {code}")
        self.code = code


class DecodeError(SourceError):
    reason = Reason.DECODE
