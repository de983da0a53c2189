"""Helpers for the benchmarks: printing figures and ratios, CPU time, child processes."""
from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Target:
    """A threshold a bench line's figure must meet: ``op`` (``>=``, ``<=`` or ``<``) ``limit``,
    compared with the ratio to the line's baseline (``of_ratio``) or with the figure itself, as
    printed (ratio to 2 decimals, figure to 1: what the line shows is what is judged). ``text``
    is printed in the line, as the free-text targets were."""
    op: str
    limit: float
    of_ratio: bool
    text: str

    def met(self, value: float, baseline: float | None) -> bool:
        """Whether ``value`` (with the line's ``baseline``) meets it; a ratio target without a
        baseline to divide by is missed (nothing shows it met)."""
        if self.of_ratio:
            if not baseline:
                return False
            x = round(value / baseline, 2)
        else:
            x = round(value, 1)
        return {">=": x >= self.limit, "<=": x <= self.limit, "<": x < self.limit}[self.op]


def ratio_at_least(limit: float, text: str = "") -> Target:
    """The figure at least ``limit`` times its baseline (a rate against a raw library's)."""
    return Target(">=", limit, True, text or f"≥ {limit:g}x")


def ratio_at_most(limit: float, text: str = "") -> Target:
    """The figure at most ``limit`` times its baseline (a time or a size against a reference)."""
    return Target("<=", limit, True, text or f"≤ {limit:g}x")


def at_most(limit: float, unit: str) -> Target:
    """The figure itself at most ``limit`` [``unit``, the line's]."""
    return Target("<=", limit, False, f"≤ {limit:g} {unit}")


def below(limit: float, unit: str) -> Target:
    """The figure itself below ``limit`` [``unit``, the line's]."""
    return Target("<", limit, False, f"< {limit:g} {unit}")


@dataclass
class Verdicts:
    """The verdict of every target line printed since :meth:`clear`, in order."""
    lines: list[tuple[str, bool]] = field(default_factory=list)

    def clear(self) -> None:
        self.lines.clear()

    @property
    def missed(self) -> list[str]:
        return [name for name, ok in self.lines if not ok]

    def summary(self) -> str:
        """``targets: N met, M missed: <names>`` (the names of the missed lines, ``; ``)."""
        missed = self.missed
        text = f"targets: {len(self.lines) - len(missed)} met, {len(missed)} missed"
        return text + (": " + "; ".join(missed) if missed else "")


VERDICTS = Verdicts()


def line(name: str, value: float, unit: str, baseline: float | None = None,
         target: str | Target = "") -> None:
    """Print a figure, its ratio to ``baseline`` and its target. A :class:`Target` is judged
    and recorded in :data:`VERDICTS` (``met`` or ``MISSED`` after its text); a string target is
    a note, printed and not judged."""
    ratio = ""
    if baseline:
        ratio = f"  = {value / baseline:.2f}x baseline"
    t = ""
    if isinstance(target, Target):
        ok = target.met(value, baseline)
        VERDICTS.lines.append((name.strip(), ok))
        t = f"  (target {target.text}: {'met' if ok else 'MISSED'})"
    elif target:
        t = f"  (target {target})"
    print(f"    {name:<52}{value:>14,.1f} {unit}{ratio}{t}", flush=True)


def header(text: str) -> None:
    print(f"\n{text}", flush=True)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    def __enter__(self) -> "Timer":
        self.wall0, self.cpu0 = time.perf_counter(), cpu_s()
        return self

    def __exit__(self, *a: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = cpu_s() - self.cpu0


def spawn_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tmpdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="cpaudit-bench-")


def build_c(name: str) -> str | None:
    """Compile bench/c/NAME.c against libmodbus; None if the compiler or library is missing."""
    out = Path(tempfile.gettempdir()) / f"cpaudit-{name}"
    src = ROOT / "bench" / "c" / f"{name}.c"
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run(["gcc", "-O2", "-o", str(out), str(src), *flags], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return str(out)


def raw_sample_db(path: str) -> sqlite3.Connection:
    """The baseline's database: the store's sample schema, WAL, synchronous=FULL."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.executescript("CREATE TABLE sample (seq INTEGER PRIMARY KEY, tag_id INTEGER, ts INTEGER,"
                      " value REAL, quality INTEGER, reason INTEGER);"
                      "CREATE UNIQUE INDEX s ON sample(tag_id, ts);")
    return con
