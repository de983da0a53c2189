"""The analyzer reads a store through one module, :mod:`analyzer.iotools`, and is pure elsewhere
(its package docstring): no other module of it imports a store backend or the store interface,
opens a file or writes one. Checked on the source, so a new module is held to it too."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

IO_MODULE = "iotools.py"
STORE_SIDE = tuple(f"{pkg}store.{m}" for pkg in ("", "cpaudit.")
                   for m in ("base", "memo", "sqlite", "influx", "url", "forward"))
FILE_CALLS = {"open", "write_text", "write_bytes", "mkdir", "save", "to_csv", "to_excel"}
# openpyxl saves a workbook into a BytesIO: export.xlsx_bytes returns its bytes
IN_MEMORY = {("export.py", "save")}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith(STORE_SIDE):
            out.append(f"imports {node.module}")
        elif isinstance(node, ast.Import):
            out += [f"imports {a.name}" for a in node.names if a.name.startswith(STORE_SIDE)]
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) \
                else None
            if name in FILE_CALLS:
                out.append(f"calls {name}() at line {node.lineno}")
    return out


def test_only_iotools_touches_a_store_or_a_file() -> None:
    found = {p.name: [f for f in _findings(p)
                      if not any(p.name == m and f.startswith(f"calls {c}()") for m, c in IN_MEMORY)]
             for p in sorted((ROOT / "analyzer").glob("*.py")) if p.name != IO_MODULE}
    assert len(found) > 15                       # the check saw the package
    assert {k: v for k, v in found.items() if v} == {}


def test_the_check_sees_what_it_forbids(tmp_path: Path) -> None:
    p = tmp_path / "bad.py"
    p.write_text("from cpaudit.store.sqlite import SQLiteStore\nimport store.url\n"
                 "def f(doc, path):\n    open(path, 'w')\n    wb.save(path)\n")
    assert _findings(p) == ["imports cpaudit.store.sqlite", "imports store.url",
                            "calls open() at line 4", "calls save() at line 5"]
