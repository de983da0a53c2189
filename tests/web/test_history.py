"""Closure over time (web/history.py): one whole balance per completed cycle of a batch campaign
(the analyzer's own per-cycle balances), per trailing window of a continuous one; bad parameters
get 400 with a message; an empty store answers with nothing to draw, not an error."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from cpaudit.analyzer.iotools import cycle_balances
from cpaudit.config import load
from cpaudit.store import SQLiteStore
from cpaudit.web.app import create_app
from cpaudit.web.history import HOUR, completed_cycles, trailing_windows

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "examples" / "brewery.yaml"


@pytest.fixture(scope="module")
def batch_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("history") / "b.db"
    subprocess.run([sys.executable, "-m", "cpaudit", "generate", str(CONFIG), "--hours", "10",
                    "--store", str(store), "--quiet"], check=True, cwd=ROOT,
                   capture_output=True, timeout=300)
    return store


@pytest.fixture
def client(batch_store: Path) -> Iterator[Any]:
    app = create_app({"CPAUDIT_CONFIG": str(CONFIG), "CPAUDIT_STORE": str(batch_store)})
    with app.test_client() as c:
        yield c


def test_trailing_windows_by_hand() -> None:
    h = HOUR
    # 10 h of data, 4 h windows, 4 points: ends at 10, 8, 6, 4 h
    assert trailing_windows(0, 10 * h, 4, 4) == [(0, 4 * h), (2 * h, 6 * h), (4 * h, 8 * h),
                                                  (6 * h, 10 * h)]
    assert trailing_windows(0, 3 * h, 4, 4) == [(0, 3 * h)]       # shorter than a window: all
    assert trailing_windows(5, 5, 4, 4) == []                     # nothing at all
    # many points: the step is at least a tenth of the window
    w = trailing_windows(0, 100 * h, 8, 1000)
    assert len(w) == int((100 - 8) / 0.8) + 1 and w[-1] == (92 * h, 100 * h)


def test_batch_history_is_the_analyzers_per_cycle_balances(client: Any, batch_store: Path) -> None:
    r = client.get("/api/v1/closure-series?layer=material")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["basis"] == "cycle" and doc["trailing_h"] is None
    cfg = load(CONFIG)
    st = SQLiteStore(batch_store)
    try:
        span = (int(st.get_meta("campaign_start") or st.first_minute()), int(st.quick_stats()["last_ts"]))
        cycles = completed_cycles(cfg, st, *span)
        want = cycle_balances(cfg, st, cycles, "material")
    finally:
        st.close()
    # 10 h of 3 h brews: the completed ones only (a brew still running is not judged)
    assert len(cycles) == len(doc["t_ms"]) == len(want) >= 2
    assert all(b - a > 2 * HOUR for a, b in cycles)
    for i, w in enumerate(want):
        assert doc["windows"][i]["end_ns"] == w["end_ns"]
        assert doc["nodes"]["overall"]["closure_pct"][i] == pytest.approx(w["overall"])
        for node, v in w["nodes"].items():
            assert doc["nodes"][node]["closure_pct"][i] == pytest.approx(v)
            assert doc["nodes"][node]["ok"][i] == (abs(v) <= doc["limit_pct"])


@pytest.mark.parametrize("query, says", [
    ("layer=heat", "layer"), ("trailing_h=0", "trailing_h"), ("trailing_h=-1", "trailing_h"),
    ("trailing_h=%C2%B2", "trailing_h"), ("points=99999999999999999999", "points"),
    ("points=1.5", "points"), ("points=201", "points")])
def test_bad_parameters_get_400_with_a_message(client: Any, query: str, says: str) -> None:
    r = client.get(f"/api/v1/closure-series?{query}")
    assert r.status_code == 400
    assert says in r.get_json()["error"]


def test_an_empty_store_has_nothing_to_draw(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "e.db").close()
    app = create_app({"CPAUDIT_CONFIG": str(CONFIG), "CPAUDIT_STORE": str(tmp_path / "e.db")})
    with app.test_client() as c:
        r = c.get("/api/v1/closure-series?layer=water")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["t_ms"] == [] and doc["nodes"] == {} and doc["windows"] == []


def test_the_live_diagram_is_the_reports_own(client: Any) -> None:
    from cpaudit.analyzer.sankey import svg
    report = client.get("/api/v1/report?validity=0").get_json()
    for layer in ("material", "water", "energy"):
        r = client.get(f"/api/v1/diagram.svg?layer={layer}&lang=zh")
        assert r.status_code == 200 and r.mimetype == "image/svg+xml"
        assert r.get_data(as_text=True) == svg(report["sankey"][layer], lang="zh")
    for query, says in (("layer=heat", "layer"), ("lang=fr", "lang"), ("from=0", "sankey.svg")):
        r = client.get(f"/api/v1/diagram.svg?{query}")
        assert r.status_code == 400 and says in r.get_json()["error"]
