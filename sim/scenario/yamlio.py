"""Safe YAML reading with the line of every value, and the errors users see.

Every scenario, sweep and calibration file goes through :func:`load_yaml`, which
returns plain Python data plus a map from each value's path (``("products", 3,
"price")``) to the file and line it was written on. Errors are
:class:`InputError`: one line per problem, ``file:line: field: message``.
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
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
        self.seen: set[int] = set()
        self.constructor = yaml.constructor.SafeConstructor()

    def _key_location(self, path: Path_) -> Location | None:
        """Where the nearest key on ``path`` was written (list items of an alias carry the anchor's line)."""
        path = tuple(path)
        while path and not isinstance(path[-1], str):
            path = path[:-1]
        return self.locations.get(path)

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)

    def build(self, node: yaml.Node, path: Path_, depth: int, alias_at: Path_ | None = None) -> Any:
        """Python data of ``node`` at ``path``; ``alias_at`` is where an enclosing alias was used."""
        self.nodes += 1
        if alias_at is None and id(node) in self.seen:
            alias_at = path  # a node met twice is an alias: *name written here
        self.seen.add(id(node))
        if self.nodes > MAX_NODES:
            where = alias_at if alias_at is not None else path
            raise InputError(
                Problem(
                    f"more than {MAX_NODES:,} values after expanding aliases; is this an alias bomb?",
                    self._key_location(where) or self.loc(node),
                    format_path(where),
                )
            )
        if depth > MAX_DEPTH:
            raise InputError(
                Problem(f"nested deeper than {MAX_DEPTH} levels", self.loc(node), format_path(path[:3]))
            )
        self.locations.setdefault(path, self.loc(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise InputError(Problem(f"not allowed: tag {_short_tag(node.tag)}", self.loc(node), format_path(path)))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            try:
                self.constructor.flatten_mapping(node)  # YAML merge keys (<<)
            except yaml.constructor.ConstructorError as exc:
                raise InputError(
                    Problem(f"merge key '<<': {(exc.problem or 'invalid').strip()}", self.loc(node), format_path(path))
                ) from None
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    hint = f" (write it in quotes: '{key_node.value}')" if isinstance(key_node, yaml.ScalarNode) else ""
                    raise InputError(
                        Problem(
                            f"keys must be text, got {key!r}{hint}", self.loc(key_node), format_path(path + (str(key),))
                        )
                    )
                if key in out:
                    raise InputError(
                        Problem(
                            f"key '{key}' appears twice", self.loc(key_node), format_path(path)
                        )
                    )
                self.locations[path + (key,)] = self.loc(key_node)
                out[key] = self.build(value_node, path + (key,), depth + 1, alias_at)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [
                self.build(item, path + (i,), depth + 1, alias_at) for i, item in enumerate(node.value)
            ]
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise InputError(
                Problem(f"not allowed: {(exc.problem or 'unsupported YAML tag').strip()}", self.loc(node), format_path(path))
            ) from None
        if isinstance(value, _dt.date):
            # An unquoted 2024-01-05 is a YAML timestamp; no field takes a date object, so keep
            # the text and let the field say what it expects (a month is 'YYYY-MM').
            return value.isoformat()
        return value


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    A FIFO, a device or a socket is refused before a byte is read (its size says nothing of
    what reading it would give, and opening a FIFO waits for a writer), and no more than
    ``limit + 1`` bytes are ever read, even from a file that grows while it is read.

    Raises:
        InputError: naming the file and line 1: missing, a folder, not a regular file, larger
            than ``limit``, or unreadable.
    """
    name = str(path)

    def refuse(message: str) -> InputError:
        return InputError(Problem(message, Location(name, 1)))

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # non-blocking: opening a FIFO must not wait
    except FileNotFoundError:
        raise refuse("file not found") from None
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise refuse("is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise refuse("is not a regular file (a FIFO, a device or a socket); give a file")
        if st.st_size > limit:
            raise refuse(f"file is {st.st_size:,} bytes; the limit is {limit:,}")
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise refuse(f"file is over {limit:,} bytes (it grew while read); the limit is {limit:,}")
    return raw


def load_yaml(path: str | Path, *, allow_empty: bool = False) -> Document:
    """Read a YAML file safely (a regular file; no Python tags; bounded size, depth and aliases).

    Raises:
        InputError: naming the file and line, for any problem.
    """
    path = Path(path)
    name = str(path)
    raw = read_bounded(path, MAX_FILE_BYTES)
    if b"\x00" in raw:
        raise InputError(Problem("binary data (NUL bytes), not YAML text", Location(name, 1)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(Problem("not UTF-8 text", Location(name, line))) from None
    return parse_yaml(text, name, allow_empty=allow_empty)


class _TooManyNodes(Exception):
    def __init__(self, line: int):
        self.line = line


class _CountingComposer(yaml.composer.Composer):
    """PyYAML's composer, stopping after :data:`MAX_NODES` nodes (a file of millions of tiny
    values would otherwise take minutes to compose before the builder could refuse it)."""

    composed = 0
    check_event: Any  # from the parser it is mixed with
    peek_event: Any

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            self.composed += 1
            if self.composed > MAX_NODES:
                mark = self.peek_event().start_mark
                raise _TooManyNodes(mark.line + 1 if mark is not None else 1)
        return super().compose_node(parent, index)


class _Loader(_CountingComposer, yaml.SafeLoader):
    """The safe loader, in Python."""


_fast_loader: Any = None
try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _FastLoader(_CountingComposer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """The safe loader on libyaml's parser (about ten times faster); the composer stays Python's."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _fast_loader = _FastLoader
except ImportError:  # PyYAML built without libyaml
    pass


def _compose(text: str) -> Any:
    """The node tree of ``text``: with libyaml when it parses the text, else (and for the error
    messages, which then read the same everywhere) with the Python parser."""
    if _fast_loader is not None:
        try:
            return yaml.compose(text, Loader=_fast_loader)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=_Loader)


def parse_yaml(text: str, name: str = "<string>", *, allow_empty: bool = False) -> Document:
    """Parse YAML text; see :func:`load_yaml`."""
    try:
        node = _compose(text)
    except _TooManyNodes as exc:
        raise InputError(
            Problem(f"more than {MAX_NODES:,} values; the limit is {MAX_NODES:,}", Location(name, exc.line))
        ) from None
    except RecursionError:
        raise InputError(Problem(f"nested deeper than {MAX_DEPTH} levels", Location(name, 1))) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and any(e in (exc.problem or "") for e in ("end of stream", "<stream end>")):
            mark = exc.context_mark  # an unclosed quote or bracket: where it opened, not the file's end
        line = mark.line + 1 if mark is not None else 1
        msg = (exc.problem or "invalid YAML").strip()
        if exc.context:
            msg = f"{exc.context.strip()}: {msg}"
        if exc.context_mark is not None and exc.context_mark.line + 1 != line:
            msg += f" (from line {exc.context_mark.line + 1})"
        field_ = format_path(_path_at_error(text))
        raise InputError(Problem(f"YAML syntax error: {msg}", Location(name, line), field_)) from None
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


def _path_at_error(text: str) -> Path_:
    """The path of the value the YAML parser was reading when it met a syntax error.

    Replays the parser's events up to the error, tracking in each open mapping the key
    whose value is being read and in each open list the item's index; ``()`` when the
    error comes before any key.
    """
    # Each open container: [is_mapping, key (None between keys) or item index, reading a value].
    stack: list[list[Any]] = []

    def value_starts() -> None:
        if stack:
            top = stack[-1]
            if not top[0]:
                top[1] += 1
            top[2] = True

    def value_ends() -> None:
        if stack:
            top = stack[-1]
            top[2] = False
            if top[0]:
                top[1] = None

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            top = stack[-1] if stack else None
            waiting_for_key = top is not None and top[0] and top[1] is None
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if waiting_for_key:
                    assert top is not None
                    top[1] = str(getattr(event, "value", "*"))
                else:
                    value_starts()
                    value_ends()
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if waiting_for_key:
                    return tuple(_open_path(stack))  # a complex key: name its mapping only
                value_starts()
                is_mapping = isinstance(event, yaml.MappingStartEvent)
                stack.append([is_mapping, None if is_mapping else -1, False])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                if stack:
                    stack.pop()
                value_ends()
    except yaml.YAMLError:
        pass
    return tuple(_open_path(stack))


def _open_path(stack: list[list[Any]]) -> list[str | int]:
    path: list[str | int] = []
    for i, (is_mapping, where, reading) in enumerate(stack):
        last = i == len(stack) - 1
        if is_mapping and where is not None:
            path.append(where)
        elif not is_mapping and where >= 0 and (reading or not last):
            path.append(where)
    return path
