"""Safe YAML reading with the line of every value, and the errors users see.

Every scenario, sweep and calibration file goes through :func:`load_yaml`, which
returns plain Python data plus a map from each value's path (``("products", 3,
"price")``) to the file and line it was written on. Errors are
:class:`InputError`: one line per problem, ``file:line: field: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Largest input file read, in bytes (a scenario is a few hundred kB at most).
MAX_FILE_BYTES = 5_000_000
#: Deepest nesting of mappings and lists accepted.
MAX_DEPTH = 40
#: Most YAML nodes (after alias expansion) accepted in one file.
MAX_NODES = 200_000

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Location:
    """Where a value was written: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Problem:
    """One thing wrong with an input file."""

    message: str
    location: Location | None = None
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


class InputError(Exception):
    """Bad input file(s). ``str()`` gives one line per problem; the CLI exits 2."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(path: Path_) -> str:
    """``("products", 3, "price")`` -> ``products[3].price``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Document:
    """A parsed YAML file: data plus the location of each path in it."""

    data: Any
    locations: dict[Path_, Location] = field(default_factory=dict)
    file: str = ""

    def where(self, path: Path_) -> Location | None:
        """Location of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while True:
            if path in self.locations:
                return self.locations[path]
            if not path:
                return None
            path = path[:-1]


class _Builder:
    """Turns a composed YAML node tree into Python data, recording lines."""

    def __init__(self, file: str):
        self.file = file
        self.locations: dict[Path_, Location] = {}
        self.nodes = 0
        self.constructor = yaml.constructor.SafeConstructor()

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InputError(
                Problem(
                    f"more than {MAX_NODES:,} values (after expanding aliases); "
                    "is this an alias bomb?",
                    self.loc(node),
                    format_path(path),
                )
            )
        if depth > MAX_DEPTH:
            raise InputError(
                Problem(f"nested deeper than {MAX_DEPTH} levels", self.loc(node), format_path(path))
            )
        self.locations.setdefault(path, self.loc(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise InputError(Problem(f"not allowed: tag {node.tag}", self.loc(node), format_path(path)))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            self.constructor.flatten_mapping(node)
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise InputError(
                        Problem(
                            f"keys must be text, got {key!r}",
                            self.loc(key_node),
                            format_path(path),
                        )
                    )
                if key in out:
                    raise InputError(
                        Problem(
                            f"key '{key}' appears twice", self.loc(key_node), format_path(path)
                        )
                    )
                self.locations[path + (key,)] = self.loc(key_node)
                out[key] = self.build(value_node, path + (key,), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [
                self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)
            ]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise InputError(
                Problem(f"not allowed: {(exc.problem or 'unsupported YAML tag').strip()}", self.loc(node), format_path(path))
            ) from None


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


def load_yaml(path: str | Path, *, allow_empty: bool = False) -> Document:
    """Read a YAML file safely (no Python tags, bounded size, depth and aliases).

    Raises:
        InputError: naming the file and line, for any problem.
    """
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(Problem("file not found", Location(name, 1))) from None
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror}", Location(name, 1))) from None
    if path.is_dir():
        raise InputError(Problem("is a folder, not a file", Location(name, 1)))
    if size > MAX_FILE_BYTES:
        raise InputError(
            Problem(f"file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}", Location(name, 1))
        )
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise InputError(Problem("binary data (NUL bytes), not YAML text", Location(name, 1)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(Problem("not UTF-8 text", Location(name, line))) from None
    return parse_yaml(text, name, allow_empty=allow_empty)


def parse_yaml(text: str, name: str = "<string>", *, allow_empty: bool = False) -> Document:
    """Parse YAML text; see :func:`load_yaml`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError(Problem(f"nested deeper than {MAX_DEPTH} levels", Location(name, 1))) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        msg = (exc.problem or "invalid YAML").strip()
        if exc.context:
            msg = f"{exc.context.strip()}: {msg}"
        raise InputError(Problem(f"YAML syntax error: {msg}", Location(name, line))) from None
    except yaml.YAMLError as exc:
        raise InputError(Problem(f"YAML error: {exc}", Location(name, 1))) from None
    if node is None:
        if allow_empty:
            return Document({}, {(): Location(name, 1)}, name)
        raise InputError(Problem("file is empty", Location(name, 1)))
    builder = _Builder(name)
    try:
        data = builder.build(node, (), 0)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise InputError(
            Problem(f"not allowed: {(exc.problem or 'unsupported YAML tag').strip()}", Location(name, line))
        ) from None
    except RecursionError:
        raise InputError(Problem("nested too deeply", Location(name, 1))) from None
    return Document(data, builder.locations, name)
