"""The sweep file: a grid over any :class:`~specdyn.config.RunConfig` keys, parsed and checked strictly
(every problem is one line naming the key and its line) before anything runs or is written::

    [base]                 # RunConfig keys every cell shares (as in a --config file)
    suite = "suite.jsonl"
    max_new_tokens = 64

    [grid]                 # one dimension per key: a list of values; the cells are all combinations
    tree = ["static:depth=3,branch=2", "static:depth=4,branch=1"]
    drafter = ["model", "lookup"]

    [[grid.pair]]          # a linked dimension: each table sets several keys together
    draft = "qwen2.5-coder-0.5b-instruct"
    target = "qwen2.5-coder-1.5b-instruct"

The grid is generic over RunConfig's fields: a key added to RunConfig can be swept with no change here.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from specdyn.config import RunConfig, checked_values, merge
from specdyn.errors import SpecdynError
from specdyn.files import read_text
from specdyn.pipeline import check_limits, resolve_models

TABLES = ("base", "grid")
KEYS = frozenset(f.name for f in fields(RunConfig))
_HEADER = re.compile(r"^\s*\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


@dataclass(frozen=True)
class Dimension:
    """One axis of the grid: its name (a RunConfig key, or a linked dimension's name) and its values,
    each the RunConfig keys it sets, with the file line it was given on."""

    name: str
    values: list[dict]
    lines: list[int | None]

    def label(self, i: int) -> str:
        value = self.values[i]
        if list(value) == [self.name]:
            return str(value[self.name])
        return ", ".join(f"{k}={v}" for k, v in value.items())


@dataclass(frozen=True)
class Cell:
    """One combination: the label of its value on every dimension, and its (resolved) config."""

    index: int
    values: dict[str, str]
    config: RunConfig

    @property
    def title(self) -> str:
        return title(self.values)


def title(values: dict[str, str]) -> str:
    """``key=value, ...`` of a cell's dimension values."""
    return ", ".join(f"{k}={v}" for k, v in values.items())


@dataclass(frozen=True)
class Sweep:
    path: Path
    dimensions: list[Dimension]
    cells: list[Cell]


@dataclass(frozen=True)
class Lines:
    """Finds the line a key was written on, for error messages (tomllib reports syntax errors only)."""

    path: Path
    text: str

    def find(self, table: str, key: str | None, item: int | None = None) -> int | None:
        """The line of ``key`` in ``table`` (its ``item``-th ``[[table]]`` for arrays of tables), else of
        the table's header; None when not found (e.g. a dotted key)."""
        current, seen, header = "", -1, None
        for n, line in enumerate(self.text.splitlines(), 1):
            match = _HEADER.match(line)
            if match:
                current = re.sub(r"[\s\"']", "", match[2])
                seen += current == table and bool(match[1])
                if current == table and (item is None or seen == item) and header is None:
                    header = n
                continue
            if key is not None and current == table and (item is None or seen == item) and _sets(line, key):
                return n
        return header

    def error(self, line: int | None, message: str) -> SpecdynError:
        where = f"{self.path} line {line}" if line else str(self.path)
        return SpecdynError(f"{where}: {message}")


def _sets(line: str, key: str) -> bool:
    return re.match(rf"^\s*([\"']?){re.escape(key)}\1\s*=", line) is not None


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file: every cell's config is built (specs parsed, model folders resolved)."""
    path = Path(path)
    lines = Lines(path, read_text(path, "sweep file"))
    try:
        raw = tomllib.loads(lines.text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecdynError(f"{path} is not valid TOML: {exc}") from None
    for key in raw:
        if key not in TABLES:
            raise lines.error(lines.find("", key) or lines.find(key, None),
                              f"unknown table or key {key!r} (a sweep file has [base] and [grid])")
    base_keys = _table(lines, raw, "base", required=False)
    base = _base_config(lines, base_keys)
    dims = _dimensions(lines, _table(lines, raw, "grid", required=True), base, set(base_keys))
    cells = _cells(lines, base, dims)
    _refuse_duplicates(lines, cells)
    return Sweep(path, dims, cells)


def _table(lines: Lines, raw: dict, name: str, required: bool) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise lines.error(lines.find("", name), f"{name} must be a table ([{name}])")
    if required and not value:
        raise lines.error(lines.find(name, None), f"[{name}] is empty: give at least one key = [values]")
    return value


def _base_config(lines: Lines, base: dict) -> RunConfig:
    """The [base] settings over RunConfig's defaults, key by key so an error names its key's line."""
    config = RunConfig()
    for key, value in base.items():
        line = lines.find("base", key)
        _checked(lines, line, {key: value}, "[base]")
        try:
            config = merge(config, {key: value})
        except SpecdynError as exc:
            raise lines.error(line, f"[base] {key}: {exc}") from None
    return config


def _dimensions(lines: Lines, grid: dict, base: RunConfig, base_keys: set[str]) -> list[Dimension]:
    """The grid's dimensions, each value checked; a key may be swept once and not also set in [base]."""
    dims, owner = [], {k: "[base]" for k in base_keys}
    for name, value in grid.items():
        dim = _linked(lines, name, value) if _is_tables(value) else _plain(lines, name, value)
        for key in {k for v in dim.values for k in v}:
            if key in owner:
                raise lines.error(dim.lines[0], f"{key} is set twice (in {owner[key]} and [grid] {name}); keep one")
            owner[key] = f"[grid] {name}"
        for i, settings in enumerate(dim.values):
            _check_applies(lines, dim.lines[i], base, settings, name)
        dims.append(dim)
    return dims


def _is_tables(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _plain(lines: Lines, name: str, value) -> Dimension:
    line = lines.find("grid", name)
    if name not in KEYS:
        raise lines.error(line, f"unknown config key {name!r} in [grid] (known: {', '.join(sorted(KEYS))}; or "
                          f"[[grid.NAME]] tables that set several keys together)")
    if not isinstance(value, list) or not value:
        raise lines.error(line, f"{name} must be a non-empty list of values, got {value!r}")
    for v in value:
        _checked(lines, line, {name: v})
    return Dimension(name, [{name: v} for v in value], [line] * len(value))


def _linked(lines: Lines, name: str, tables: list[dict]) -> Dimension:
    if name in KEYS:
        raise lines.error(lines.find(f"grid.{name}", None) or lines.find("grid", name),
                          f"{name} is a config key: give it a list of values, not tables")
    line_of = [lines.find(f"grid.{name}", None, i) or lines.find("grid", name) for i in range(len(tables))]
    for table, line in zip(tables, line_of):
        if not table:
            raise lines.error(line, f"[[grid.{name}]] is empty: set at least one config key")
        if set(table) != set(tables[0]):
            raise lines.error(line, f"every [[grid.{name}]] must set the same keys ({', '.join(tables[0])})")
        _checked(lines, line, table, name)
    return Dimension(name, tables, line_of)


def _checked(lines: Lines, line: int | None, settings: dict, where: str = "[grid]") -> None:
    try:
        checked_values(RunConfig, settings, where)
    except SpecdynError as exc:
        raise lines.error(line, str(exc)) from None


def _check_applies(lines: Lines, line: int | None, base: RunConfig, settings: dict, name: str) -> None:
    """One grid value over [base]: its specs parse and it is consistent with the base on its own."""
    try:
        merge(base, settings, origin=f"[grid] {name}")
    except SpecdynError as exc:
        raise lines.error(line, f"{name} = {_shown(settings, name)}: {exc}") from None


def _shown(settings: dict, name: str) -> str:
    return repr(settings[name]) if list(settings) == [name] else repr(settings)


def _cells(lines: Lines, base: RunConfig, dims: list[Dimension]) -> list[Cell]:
    cells = []
    for index, choice in enumerate(itertools.product(*(range(len(d.values)) for d in dims))):
        values = {d.name: d.label(i) for d, i in zip(dims, choice)}
        settings = {k: v for d, i in zip(dims, choice) for k, v in d.values[i].items()}
        try:
            config = resolve_models(merge(base, settings))
            check_limits(config, config.trees())
        except SpecdynError as exc:
            where = ", ".join(str(d.lines[i]) for d, i in zip(dims, choice) if d.lines[i])
            raise SpecdynError(f"{lines.path} lines {where}: cell {title(values)}: {exc}") from None
        cells.append(Cell(index, values, config))
    return cells


def cell_identity(cell: Cell) -> str:
    """What makes two cells the same run: the canonical settings and resolved trees."""
    return json.dumps({"config": cell.config.to_json(), "trees": cell.config.trees_record()}, sort_keys=True)


def _refuse_duplicates(lines: Lines, cells: list[Cell]) -> None:
    seen: dict[str, Cell] = {}
    for cell in cells:
        key = cell_identity(cell)
        if key in seen:
            raise SpecdynError(f"{lines.path}: cells {seen[key].title} and {cell.title} are the same run "
                               "(a value is listed twice, perhaps spelled differently)")
        seen[key] = cell
