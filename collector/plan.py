"""Merging a device's registers into as few read requests as possible."""
from __future__ import annotations

from dataclasses import dataclass, field

from cpaudit.config.models import Register


@dataclass
class Request:
    function: int
    address: int          # wire address (0-based)
    count: int
    registers: list[tuple[Register, int]] = field(default_factory=list)  # (register, wire address)

    @property
    def end(self) -> int:
        return self.address + self.count


def plan(registers: list[Register], address_base: int = 0, max_count: int = 125,
         gap_fill: int = 0) -> list[Request]:
    """Group registers per function code into requests of at most ``max_count`` registers (2000
    bits for coils), bridging holes of at most ``gap_fill`` registers. A value is never split
    across requests (that would tear a float or a totalizer)."""
    out: list[Request] = []
    by_fc: dict[int, list[tuple[Register, int]]] = {}
    for r in registers:
        by_fc.setdefault(r.function, []).append((r, r.address - address_base))
    for fc in sorted(by_fc):
        limit = 2000 if fc in (1, 2) else max_count
        items = sorted(by_fc[fc], key=lambda x: (x[1], -x[0].size))
        cur: Request | None = None
        for reg, wire in items:
            end = wire + reg.size
            if cur is not None and wire <= cur.end + gap_fill and max(end, cur.end) - cur.address <= limit:
                cur.count = max(cur.end, end) - cur.address
                cur.registers.append((reg, wire))
                continue
            cur = Request(fc, wire, reg.size, [(reg, wire)])
            out.append(cur)
    return out
