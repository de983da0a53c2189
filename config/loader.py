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

from cpaudit.config.models import Config, cross_check


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


# Bounds on what a campaign file may hold, so that ``cpaudit check`` answers in bounded time and
# memory whatever it is given. A campaign of 2,000 devices with 50 registers each, one flow
# mapping per register as in config/examples, is 9.7 MB of YAML and ~1.5 M values, and checking
# it takes 23 s and 800 MB (measured, the same as before these bounds: YAML composition, pydantic
# and pint's unit parsing); the limits allow about that and refuse beyond it with the limit
# named (a larger file is not read further).
MAX_BYTES = 16 * 1024 * 1024     # [B] a file above this is refused before it is parsed
MAX_DEPTH = 64                   # nesting levels; a campaign file needs ~8 (libyaml's composer
#                                  recurses in C: 100,000 open brackets end the process)
MAX_VALUES = 4_000_000           # values after expanding aliases (a "billion laughs" file
#                                  expands 600 bytes into 10^9 values)
MAX_DIGITS = 64                  # digits of an integer (Python refuses int("1" * 4301) anyway)


class _Refused(Exception):
    """A structural problem found before or while constructing: line and message."""

    def __init__(self, line: int | None, message: str, node: yaml.Node | None = None) -> None:
        super().__init__(message)
        self.line, self.message, self.node = line, message, node
        self.path: tuple[Any, ...] = ()


class _Lines:
    """Field path → line number, read from PyYAML's node tree (1-based lines) on demand.

    Aliases make the tree a graph: nothing here expands them. :meth:`line` follows a field
    path down the nodes (O(depth)); :func:`_expanded_size` bounds the expansion before anything
    walks the data."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root
        self.duplicates: list[tuple[tuple[Any, ...], int]] = []
        if root is not None:
            self._find_duplicates(root)

    def _find_duplicates(self, root: yaml.Node) -> None:
        seen_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
        while stack:
            node, path = stack.pop()
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.MappingNode):
                keys: set[Any] = set()
                for k, v in node.value:
                    key = k.value if isinstance(k, yaml.ScalarNode) else id(k)
                    sub = path + (key,)
                    if key in keys and key != "<<":
                        self.duplicates.append((sub, k.start_mark.line + 1))
                    keys.add(key)
                    stack.append((v, sub))
            elif isinstance(node, yaml.SequenceNode):
                for i, v in enumerate(node.value):
                    stack.append((v, path + (i,)))
        self.duplicates.reverse()

    @staticmethod
    def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node, int] | None:
        """The node under ``part`` and the line that names it, or None."""
        if isinstance(node, yaml.SequenceNode):
            if isinstance(part, int) and 0 <= part < len(node.value):
                v = node.value[part]
                return v, v.start_mark.line + 1
            return None
        if not isinstance(node, yaml.MappingNode):
            return None
        merged: list[yaml.Node] = []
        for k, v in reversed(node.value):      # the last of duplicate keys wins, as in the data
            if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                return v, k.start_mark.line + 1
            if isinstance(k, yaml.ScalarNode) and k.value == "<<":
                merged += v.value if isinstance(v, yaml.SequenceNode) else [v]
        for m in merged:
            if isinstance(m, yaml.MappingNode):
                for k, v in m.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        return v, k.start_mark.line + 1
        return None

    def line(self, loc: tuple[Any, ...]) -> int | None:
        if self.root is None:
            return None
        node, line = self.root, self.root.start_mark.line + 1
        for part in tuple(loc)[:MAX_DEPTH + 1]:
            hit = self._child(node, part)
            if hit is None:
                break
            node, line = hit
        return line

    def path_of(self, target: yaml.Node) -> tuple[Any, ...]:
        """The first field path that reaches ``target`` (each node visited once)."""
        if self.root is None:
            return ()
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(self.root, ())]
        while stack:
            node, path = stack.pop()
            if node is target:
                return path
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                for k, v in reversed(node.value):
                    if k is target:
                        return path + (k.value if isinstance(k, yaml.ScalarNode) else "?",)
                    stack.append((v, path + (k.value if isinstance(k, yaml.ScalarNode)
                                              else "?",)))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((v, path + (i,)) for i, v in reversed(list(enumerate(node.value))))
        return ()


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, from the parser's events (which do not recurse),
    before the composer (which does, in C) sees it."""
    depth = 0
    loader = _Loader(text)
    try:
        while loader.check_event():
            ev = loader.get_event()
            if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = ev.start_mark
                    raise _Refused(mark.line + 1 if mark is not None else None,
                                   f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> dict[int, int]:
    """How many values the document holds once its aliases are expanded (each anchored node
    counted once per use), computed over the node graph in time linear in its size. A node
    that contains itself (``&a [*a]``, ``&a {<<: *a}``) is refused."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            kids = [n for kv in node.value for n in kv]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if done:
            on_path.discard(id(node))
            size[id(node)] = min(MAX_VALUES + 1, 1 + sum(size[id(k)] for k in kids))
            continue
        if id(node) in size:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        for k in kids:
            if id(k) in on_path:
                raise _Refused(k.start_mark.line + 1, "an alias refers to a node that contains "
                               "it (a recursive anchor or a mapping that merges itself)", k)
            if id(k) not in size:
                stack.append((k, False))
    return size


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


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: ~20x faster


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, with the scalars that Python refuses to build (an impossible date, an
    integer of 5,000 digits) turned into a YAML error at their node instead of a traceback."""


def _guard(build: Callable[[Any, yaml.Node], Any], what: str
           ) -> Callable[[Any, yaml.Node], Any]:
    def construct(self: Any, node: yaml.Node) -> Any:
        if what == "an integer":
            digits = sum(c.isdigit() for c in str(node.value))
            if digits > MAX_DIGITS:
                raise _Refused(node.start_mark.line + 1, f"an integer of {digits} digits (at "
                               f"most {MAX_DIGITS})", node)
        try:
            return build(self, node)
        except (ValueError, OverflowError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise _Refused(node.start_mark.line + 1,
                           f"{node.value!r} is not {what}: {e}", node) from None
    return construct


for _tag, _what in (("timestamp", "a valid date or time"), ("int", "an integer"),
                    ("float", "a number"), ("bool", "a boolean")):
    _full = f"tag:yaml.org,2002:{_tag}"
    _Loader.add_constructor(_full, _guard(_Base.yaml_constructors[_full], _what))


def _parse(text: str) -> tuple["_Lines", Any]:
    """Compose once (the node tree keeps line numbers), then construct the data from it. Lines
    are read before construction, which folds merge keys (``<<: *anchor``) into the mapping:
    a key that overrides a merged one is not a duplicate. The nesting depth and the expanded
    size are bounded first (MAX_DEPTH, MAX_VALUES)."""
    _check_depth(text)
    loader = _Loader(text)
    lines = _Lines(None)
    try:
        root = loader.get_single_node()
        lines = _Lines(root)
        if root is not None:
            size = _expanded_size(root)
            if size[id(root)] > MAX_VALUES:
                # name the top-level key that holds the most
                at: yaml.Node = root
                if isinstance(root, yaml.MappingNode) and root.value:
                    at = max(root.value, key=lambda kv: size[id(kv[1])])[0]
                raise _Refused(at.start_mark.line + 1, f"aliases expand the file beyond "
                               f"{MAX_VALUES:,} values (anchors used inside anchors: a "
                               "'billion laughs' file?)", at)
        data = loader.construct_document(root) if root is not None else None
    except _Refused as e:
        if e.node is not None:
            e.path = lines.path_of(e.node)
        raise
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
    except _Refused as e:
        raise ConfigError([Problem(filename, e.line, format_path(e.path), e.message)]) from None
    except RecursionError:
        raise ConfigError([Problem(filename, None, "", "YAML: nested too deeply")]) from None
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark is not None else None
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
            if err.get("type") == "bool_as_number":     # config.models.Strict
                loc += (err.get("ctx", {}).get("field", ""),)
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
    """The file as text: UTF-8 (a byte-order mark allowed), at most MAX_BYTES (a larger file,
    or a device such as /dev/zero, is refused after reading MAX_BYTES + 1 bytes)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError([Problem(name, None, "", f"cannot read: {e.strerror}")]) from e
    if len(raw) > MAX_BYTES:
        raise ConfigError([Problem(name, None, "", f"larger than {MAX_BYTES // 2**20} MiB: "
                                   "not a campaign file")])
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError([Problem(name, 1, "", "UTF-16 text; save the file as UTF-8")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        col = e.start - raw.rfind(b"\n", 0, e.start)
        raise ConfigError([Problem(name, line, "", f"not UTF-8 text: byte "
                                   f"0x{raw[e.start]:02x} at column {col}")]) from None
