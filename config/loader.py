"""Load a campaign YAML file into :class:`config.models.Config`.

Every error names the file, the line and the field path, e.g.::

    config/examples/brewery.yaml:42: devices[3].registers[0].type: unknown type 'flaot32'

All problems of a file are reported at once (``ConfigError.problems``), not only the first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from config.models import Config, cross_check


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Lines:
    """Field path → line number, from PyYAML's node tree (1-based lines)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.map: dict[tuple[Any, ...], int] = {}
        self.duplicates: list[tuple[tuple[Any, ...], int]] = []
        if root is not None:
            self.map[()] = root.start_mark.line + 1
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for k, v in node.value:
                key = k.value
                sub = path + (key,)
                if key in seen:
                    self.duplicates.append((sub, k.start_mark.line + 1))
                seen.add(key)
                self.map[sub] = k.start_mark.line + 1
                self._walk(v, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                sub = path + (i,)
                self.map[sub] = v.start_mark.line + 1
                self._walk(v, sub)

    def line(self, loc: tuple[Any, ...]) -> int | None:
        loc = tuple(loc)
        while loc:
            if loc in self.map:
                return self.map[loc]
            loc = loc[:-1]
        return self.map.get(())


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds the discriminator value / function names to loc for tagged unions.
    out: list[Any] = []
    for part in loc:
        if isinstance(part, str) and (part in ("modbus_tcp", "modbus_rtu", "mqtt", "hj212",
                                               "influxdb_v1", "influxdb_v2")
                                      or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", ""))
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err.get("type") == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown protocol {ctx.get('tag')!r}; expected {ctx.get('expected_tags')}"
    if err.get("type") == "literal_error":
        return f"{msg}, got {err.get('input')!r}"
    return msg


def describe(e: ValidationError, skip: int = 0) -> list[str]:
    """A validation error as ``field.path: message`` lines (the first ``skip`` path parts
    dropped)."""
    return [f"{format_path(_clean_loc(tuple(err['loc']))[skip:])}: {_message(err)}"
            for err in e.errors()]


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: ~20x faster


def _parse(text: str) -> tuple["_Lines", Any]:
    """Compose once (the node tree keeps line numbers), then construct the data from it. Lines
    are read before construction, which folds merge keys (``<<: *anchor``) into the mapping:
    a key that overrides a merged one is not a duplicate."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        lines = _Lines(root)
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return lines, data


def load_text(text: str, filename: str = "<string>") -> Config:
    cfg = validate_text(text, filename, Config, cross_check, "a campaign file")
    assert isinstance(cfg, Config)
    return cfg


def validate_text(text: str, filename: str, model: type[BaseModel],
                  check: Callable[[Any], list[tuple[tuple[Any, ...], str]]] | None = None,
                  what: str = "the file") -> BaseModel:
    """Parse YAML ``text`` into ``model``; every problem as ``file:line: field.path: message``."""
    try:
        lines, data = _parse(text)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise ConfigError([Problem(filename, line, "", f"YAML syntax: {e.problem}")]) from e
    except yaml.YAMLError as e:
        raise ConfigError([Problem(filename, None, "", f"YAML: {e}")]) from e
    problems = [Problem(filename, ln, format_path(p), "duplicate key") for p, ln in lines.duplicates]
    if not isinstance(data, dict):
        problems.append(Problem(filename, 1, "", f"{what} is a mapping at the top level"))
        raise ConfigError(problems)
    try:
        cfg = model.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = _clean_loc(tuple(err["loc"]))
            problems.append(Problem(filename, lines.line(loc), format_path(loc), _message(err)))
        raise ConfigError(sorted(problems, key=lambda p: p.line or 0)) from None
    for loc, msg in (check(cfg) if check else []):
        problems.append(Problem(filename, lines.line(loc), format_path(loc), msg))
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: p.line or 0))
    return cfg


def load(path: str | os.PathLike[str]) -> Config:
    """Load and validate a campaign file. Raise :class:`ConfigError` naming file:line: field."""
    return load_text(read_text(path), os.fspath(path))


def read_text(path: str | os.PathLike[str]) -> str:
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError([Problem(name, None, "", f"cannot read: {e.strerror}")]) from e
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(name, None, "", f"not UTF-8 text: {e}")]) from e
    return text
