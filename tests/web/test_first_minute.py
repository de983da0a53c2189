"""The web API from the first minute of a batch campaign: every analysis answers (it was 500 on
/balances, /report and /tables before the first complete brew), over real HTTP on a generated
store of the demo site."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
import requests
from werkzeug.serving import make_server

from tests.analyzer.test_validity import make
from tests.servers import free_port
from cpaudit.web import create_app


@pytest.fixture(params=[1.0, 1 / 6], ids=["1h", "10min"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    make(tmp_path, request.param, {})           # the demo site at 1 s ticks, from T0
    app = create_app({"CPAUDIT_CONFIG": str(tmp_path / "c.yaml"),
                      "CPAUDIT_STORE": str(tmp_path / "c.db")})
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}/api/v1"
    server.shutdown()
    server.server_close()


def test_every_analysis_answers_before_the_first_brew(served: str) -> None:
    for path in ("/balances", "/report", "/tables", "/balance", "/validity", "/sankey.svg",
                 "/export.xlsx", "/export.csv?table=validity", "/closure-history"):
        r = requests.get(served + path, timeout=60)
        assert r.status_code == 200, (path, r.text[:300])
    b = requests.get(served + "/balances", timeout=60).json()
    mat = b["material"]
    assert mat["verdict"] == "no-data" and "no complete production cycle" in mat["message"]
    assert "the first complete cycle ends at the earliest at about" in mat["message"]
    assert mat["window"]["rule"] == "best_valid"
    rep = requests.get(served + "/report", timeout=60).json()
    assert rep["balance_window"]["first_cycle"].startswith("no complete cycle yet")
    assert requests.get(served + "/balance", timeout=60).json()["verdict"] == "no-data"
    assert "validity" in requests.get(served + "/tables", timeout=60).json()["tables"]
    # the window rule is a parameter; a wrong one is a 400, not a 500
    assert requests.get(served + "/balances", params={"window": "campaign"},
                        timeout=60).status_code == 200
    r = requests.get(served + "/balances", params={"window": "best"}, timeout=60)
    assert r.status_code == 400 and "best_valid" in r.json()["error"]
