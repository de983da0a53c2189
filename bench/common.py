"""Helpers for the benchmarks: printing figures and ratios, CPU time, child processes."""
from __future__ import annotations

import sqlite3

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

def line(name: str, value: float, unit: str, baseline: float | None = None,
         target: str = "") -> None:
    ratio = ""
    if baseline:
        ratio = f"  = {value / baseline:.2f}x baseline"
    t = f"  (target {target})" if target else ""
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
