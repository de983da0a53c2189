"""Installed, cpaudit lives under one name: the wheel holds the package ``cpaudit`` and nothing
else at the top (``config``, ``store``, ``web`` … would collide with any other package of those
names), with its campaign examples, templates and static files; unpacked alone, away from the
checkout, it imports and runs. And no module of the tree imports the folders by their top-level
names, which would work in a checkout and fail installed."""
from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

FOLDERS = ("config", "store", "collector", "analyzer", "web", "simulators")


def test_the_wheel_holds_one_package_that_runs_alone(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                        str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("cpaudit-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(tmp_path / "site")
    assert {n.split("/")[0] for n in names} == {"cpaudit", wheel.name.split("-py3")[0]
                                                 + ".dist-info"}
    for want in ("cpaudit/config/examples/brewery.yaml", "cpaudit/web/templates/base.html",
                 "cpaudit/web/static/common.js", "cpaudit/store/sqlite.py"):
        assert want in names
    code = ("import importlib.util, sys\n"
            f"sys.path.insert(0, {str(tmp_path / 'site')!r})\n"
            "from cpaudit.web.app import create_app\n"
            "from cpaudit.cli import DEFAULT_CONFIG\n"
            "app = create_app({'CPAUDIT_CONFIG': DEFAULT_CONFIG, 'CPAUDIT_STORE': 'x.db'})\n"
            "import cpaudit\n"
            "print(app.test_client().get('/').status_code, cpaudit.__file__)\n"
            f"print([n for n in {FOLDERS!r} if importlib.util.find_spec(n)])\n")
    # -I: no user site, no environment, the checkout not on the path; the venv's
    # site-packages give the dependencies (and an editable install's finder, after the wheel)
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    status, where, found = run.stdout.split()[:2] + run.stdout.split("\n")[1:2]
    assert (status, found) == ("200", "[]")
    assert Path(where).is_relative_to(tmp_path / "site")      # the wheel's, not the checkout's


def test_no_module_imports_a_folder_by_its_top_level_name() -> None:
    bad = []
    for path in sorted(ROOT.glob("**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", ".git") or rel.parts[:2] in [("cpaudit", f) for f in FOLDERS]:
            continue            # the venv; the links inside cpaudit/ are the folders again
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            bad += [f"{rel}:{node.lineno} {n}" for n in names if n.split(".")[0] in FOLDERS]
    assert bad == []
