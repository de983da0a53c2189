"""The API fuzzed from its own OpenAPI description by schemathesis (a client no one here wrote):
for every operation, requests that fit the description and requests that do not, against the
app under waitress on a generated campaign, with the access token (so that the changes are
exercised too, on a store of their own). No answer is ever 5xx, every status is one the
description lists, and the description is exact: most requests that fit it are accepted."""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from cpaudit import config
from cpaudit.simulators.generate import generate
from cpaudit.store import SQLiteStore
from tests.conftest import brewery_text
from tests.web.test_hardening import TOKEN, Served
from cpaudit.web.openapi import TABLES, spec

EXAMPLES = 20          # per operation and mode: the whole run takes ~25 s here, under a minute
# state, not shape: a time in the future, a stop before the start, a cycle mark on a campaign
# without marked cycles, a reading outside its tag's range or the campaign, a table this report
# lacks
STATEFUL = {"POST /api/v1/campaign/start", "POST /api/v1/campaign/stop", "POST /api/v1/cycle-mark", "POST /api/v1/manual",
            "POST /api/v1/manual/retract", "GET /api/v1/export.csv"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg_path = tmp / "c.yaml"
    cfg_path.write_text(brewery_text())
    store_path = tmp / "c.db"
    st = SQLiteStore(store_path)
    generate(config.load(cfg_path), st, 1.0)
    st.close()
    s = Served({"CPAUDIT_CONFIG": str(cfg_path), "CPAUDIT_STORE": str(store_path),
                "CPAUDIT_TOKEN": TOKEN})
    yield s
    s.close()


refused: dict[str, list[str]] = defaultdict(list)     # why a request that fits was refused


def _run(served: Served, op: Any, mode: schemathesis.GenerationMode,
         statuses: dict[str, list[int]]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        resp = case.call(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=60)
        statuses[f"{op.label} {mode.value}"].append(resp.status_code)
        if mode == schemathesis.GenerationMode.POSITIVE and resp.status_code == 400:
            refused[op.label].append(f"{case.query} {case.body}: {resp.text[:160]}")
        case.validate_response(resp, checks=[not_a_server_error, status_code_conformance,
                                             content_type_conformance])
    try:
        one()
    except Unsatisfiable:
        # nothing to get wrong: an operation without parameters has no negative case
        assert mode == schemathesis.GenerationMode.NEGATIVE and not op.definition.raw.get(
            "parameters") and "requestBody" not in op.definition.raw, op.label


def test_the_api_fuzzed_from_its_description_never_fails(served: Served) -> None:
    cfg = served.app.extensions["cpaudit_config"]
    schema = schemathesis.openapi.from_dict(spec(cfg))
    statuses: dict[str, list[int]] = defaultdict(list)
    t0 = time.monotonic()
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 20
    for op in ops:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            _run(served, op, mode, statuses)
    took = time.monotonic() - t0
    assert took < 120, took
    # the description is exact: what fits it is accepted, but for what depends on state
    for op in ops:
        got = statuses[f"{op.label} positive"]
        ok = sum(200 <= s < 300 for s in got)
        if op.label not in STATEFUL:
            assert ok >= 0.7 * len(got), (op.label, got, refused[op.label])
        else:
            assert all(s < 500 for s in got), (op.label, got)
    print(f"fuzzed {sum(map(len, statuses.values()))} requests over {len(ops)} operations "
          f"in {took:.1f} s")
    for label, why in refused.items():
        print(label, len(why), why[:3])


def test_the_description_names_every_table_a_report_has(served: Served) -> None:
    import requests
    got = requests.get(served.url + "/api/v1/tables", timeout=60).json()["tables"]
    assert got and set(got) <= set(TABLES), set(got) - set(TABLES)


def test_the_served_description_is_the_campaigns(served: Served, tmp_path: Path) -> None:
    import requests
    doc = requests.get(served.url + "/api/v1/openapi.json", timeout=10).json()
    tag = doc["paths"]["/api/v1/manual"]["post"]["requestBody"]["content"]["application/json"]
    assert "malt_in.total" in tag["schema"]["properties"]["tag"]["enum"]
    schemathesis.openapi.from_dict(doc)        # a valid OpenAPI document
