"""Parameter paths: the one grammar in which ``--set``, sweeps, calibration files, ensemble
members and ``MarketModel(**overrides)`` name a value of a scenario.

A path is keys joined by dots, with the items of a list named in one of three ways:

- by name: ``products.AITO M6.price``, the item whose ``name`` is ``AITO M6``;
- by index: ``products[0].price``, ``events[-1].month``;
- by selector: ``events[type=stores,market=EU,month=2027-09].count``, the one item whose
  fields have these values (compared as text), for lists of unnamed items (events, stores).

Dots inside brackets do not split a path. Paths address the scenario's data as plain
mappings and lists, before validation. Their canonical form names every list item by
index (``products[0].price``), so that two paths naming the same value have the same
canonical form (:func:`canonical_path`).

An override may be relative: a path followed by ``+=`` adds its value to the one there,
``*=`` multiplies it (``--set 'brands.AITO.appeal+=0.1'``, ``{"products.AITO M6.capacity.max*=": 1.2}``);
``+=`` on a month moves it by a whole number of months (``products.AITO M6.launch+=3``).
The operator is part of the key, so the same key works on the command line, in a sweep file and
in ``overrides=`` of the Python API (:func:`split_operator`, :func:`apply_override`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from sim.scenario.errors import did_you_mean, few
from sim.scenario.fields import REPLACES
from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import InputError, Path_, format_path

#: Operators of a relative override, written after the path: ``+=`` adds, ``*=`` multiplies.
OPERATORS = ("+=", "*=")


class PathError(InputError, ValueError):
    """A path that is not well formed, or names nothing in the data.

    ``str()`` reads as the ``--set`` option that gave it (``--set products.Z9.price: no
    item named 'Z9' at products.Z9``); ``path`` and ``reason`` are its two halves, for
    messages about a path written elsewhere (a sweep or calibration file).
    """

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"--set {path}: {reason}" if path else f"--set: {reason}")


@dataclass(frozen=True)
class Selector:
    """``[key=value,...]``: the one item of a list whose fields have these values, compared as text."""

    conditions: tuple[tuple[str, str], ...]
    text: str = field(default="", compare=False)  # as written, for messages

    def matches(self, item: Any) -> bool:
        return isinstance(item, dict) and all(
            k in item and item[k] is not None and str(item[k]) == v for k, v in self.conditions
        )

    def __str__(self) -> str:
        return f"[{self.text or ','.join(f'{k}={v}' for k, v in self.conditions)}]"


#: One step of a path: a key (or an item's name), a list index, or a selector.
Part = str | int | Selector


def parse_path(text: str) -> tuple[Part, ...]:
    """``"products.AITO M6.price"`` -> ``("products", "AITO M6", "price")``; ``"events[2].month"``
    -> ``("events", 2, "month")``; ``"stores[brand=A].count"`` -> ``("stores", Selector(...), "count")``.

    Raises:
        PathError: for an empty path or a bracket that holds neither an index nor ``key=value`` pairs.
    """
    parts: list[Part] = []
    for chunk in _split_dots(text):
        while "[" in chunk and chunk.endswith("]"):
            head, _, rest = chunk.partition("[")
            if head:
                parts.append(head)
            inside, _, chunk = rest.partition("]")
            parts.append(_bracket(text, inside))
        if chunk:
            parts.append(chunk)
    if not parts:
        raise PathError("", f"empty path in '{text}'")
    return tuple(parts)


def _split_dots(text: str) -> list[str]:
    """Split on the dots outside brackets: ``a[b=1.5].c`` -> ``["a[b=1.5]", "c"]``."""
    chunks, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "." and depth == 0:
            chunks.append(cur)
            cur = ""
        else:
            cur += ch
    chunks.append(cur)
    return chunks


def _bracket(text: str, inside: str) -> int | Selector:
    """What ``[inside]`` of path ``text`` holds: a list index or a selector."""
    try:
        return int(inside)
    except ValueError:
        pass
    if "=" not in inside:
        raise PathError(text, f"'[{inside}]' is not a list index")
    conditions = []
    for cond in inside.split(","):
        key, eq, value = cond.partition("=")
        if not eq or not key.strip():
            raise PathError(text, f"selector [{inside}]: expected key=value pairs separated by commas")
        conditions.append((key.strip(), value.strip()))
    return Selector(tuple(conditions), inside)


def _format(parts: Sequence[Part]) -> str:
    """A path written out from its parts."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else str(part) if isinstance(part, Selector) else f".{part}"
    return out.removeprefix(".")


def _walk(data: Any, parts: tuple[Part, ...], text: str, *, must_exist: bool) -> tuple[Path_, Any]:
    """Follow path ``text`` (parsed: ``parts``) through ``data``: its concrete form (keys, and list
    items by index) and the value there.

    With ``must_exist`` false, a key missing from a mapping (or holding None) is taken as
    an empty mapping, as :func:`apply_override` creates it.
    """
    out: list[str | int] = []
    node = data
    for depth, part in enumerate(parts):
        where = ".".join(str(p) for p in parts[: depth + 1])
        if isinstance(node, list) or isinstance(part, Selector):
            index = _index(node, part, str(parts[depth - 1]) if depth else "", text, where)
            out.append(index)
            node = node[index]
            continue
        if not isinstance(node, dict):
            raise PathError(text, f"cannot descend into a value at {where}")
        if isinstance(part, int):
            raise PathError(text, f"'{where}' is not a list")
        if part not in node and must_exist:
            close = did_you_mean(part, map(str, node))
            hint = f" (did you mean '{close}'?)" if close else f" (keys: {few(map(str, node))})" if node else ""
            raise PathError(text, f"no field '{part}' at {where}{hint}")
        out.append(part)
        node = node.get(part)
        if node is None and not must_exist:
            node = {}
    return tuple(out), node


def _index(items: Any, part: Part, head: str, text: str, where: str) -> int:
    """The index of the item of list ``items`` (reached by ``head``) that ``part`` names."""
    if isinstance(part, Selector):
        if not isinstance(items, list):
            raise PathError(text, f"'{head}' is not a list, so {part} cannot select from it")
        hits = [i for i, item in enumerate(items) if part.matches(item)]
        if len(hits) != 1:
            raise PathError(text, f"selector {part} matches {len(hits)} items of '{head}', not exactly one")
        return hits[0]
    if isinstance(part, int):
        if not -len(items) <= part < len(items):
            raise PathError(text, f"index {part} out of range ({len(items)} items) at {where}")
        return part % len(items)
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if part not in names:
        raise PathError(text, f"no item named '{part}' at {where}")
    return names.index(part)


def split_operator(key: str) -> tuple[str, str | None]:
    """An override's key as its path and its operator: ``"brands.AITO.appeal+="`` -> ``("brands.AITO.appeal",
    "+=")``; ``"buyers.price_sensitivity"`` -> ``("buyers.price_sensitivity", None)`` (a plain value)."""
    text = key.rstrip()
    for op in OPERATORS:
        if text.endswith(op):
            return text[: -len(op)].rstrip(), op
    return key, None


def concrete_path(data: Any, path: str) -> Path_:
    """``path`` with every list item named by its index in ``data``: ``("products", 0, "price")``
    (an operator after the path is left out: the value it changes).

    Keys missing from a mapping are allowed (a write creates them).

    Raises:
        PathError: when the path is not well formed or cannot reach into ``data``.
    """
    return _walk(data, parse_path(split_operator(path)[0]), path, must_exist=False)[0]


def canonical_path(data: Any, path: str) -> str:
    """The one name of the value ``path`` reaches in ``data``: ``products.A1.price`` and
    ``products[name=A1].price`` are both ``products[0].price`` when A1 is the first product
    (an operator after the path is kept: ``products[0].price*=``).

    Raises:
        PathError: as :func:`concrete_path`.
    """
    return format_path(concrete_path(data, path)) + (split_operator(path)[1] or "")


def overlapping_paths(data: Any, paths: Sequence[str]) -> list[tuple[int, str]]:
    """Paths of one list (``--set`` options, a sweep's or a calibration's parameters) that name the
    same value twice, under two spellings or one inside the other.

    ``products.A1.price`` and ``products[0].price`` name one value when A1 is the first product;
    ``buyers`` and ``buyers.price_sensitivity`` overlap (which one wins would depend on their order).
    Paths that do not reach into ``data`` are skipped (their own check reports them).

    Returns:
        ``(i, message)`` for each path ``i`` that repeats or overlaps an earlier one.
    """
    seen: list[tuple[Path_, str]] = []
    out: list[tuple[int, str]] = []
    for i, path in enumerate(paths):
        try:
            concrete = concrete_path(data, path)
        except PathError:
            continue
        for other, text in seen:
            n = min(len(other), len(concrete))
            if other[:n] != concrete[:n]:
                continue
            if len(other) == len(concrete):
                msg = "given twice" if text == path else f"names the same value as '{text}' ({format_path(concrete)})"
            elif len(other) < len(concrete):
                msg = f"lies inside '{text}', which sets {format_path(other)} whole; give one or the other"
            else:
                msg = f"holds '{text}' ({format_path(other)}), which is given too; give one or the other"
            out.append((i, msg))
            break
        else:
            seen.append((concrete, path))
    return out


def value_at(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``, which must exist there (an operator after the path is left out).

    Raises:
        PathError: naming the first step that finds nothing (with a "did you mean" for a misspelt key).
    """
    return _walk(data, parse_path(split_operator(path)[0]), path, must_exist=True)[1]


def resolve_selectors(data: Any, path: str) -> str:
    """``path`` with its selectors replaced by indices, its other steps (and its operator) kept:
    ``events[type=stores,market=EU,month=2027-09].count`` -> ``events[92].count``.

    Lists of unnamed items (``events``, ``stores``) can so be addressed by what they are
    rather than by a position that moves when the base scenario changes.

    Raises:
        PathError (a ValueError): when a selector matches no item or several, or the path cannot reach into ``data``.
    """
    bare, op = split_operator(path)
    parts = parse_path(bare)
    concrete = _walk(data, parts, bare, must_exist=False)[0]
    return _format([c if isinstance(p, Selector) else p for p, c in zip(parts, concrete, strict=True)]) + (op or "")


def apply_override(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at ``path`` in ``data`` (scenario data as plain mappings and lists) to ``value``,
    or, for a path ending in ``+=`` or ``*=``, add ``value`` to it or multiply it by ``value``
    (:func:`relative_value`).

    Mappings missing on the way are created; list items must exist. Writing a key of
    :data:`sim.scenario.fields.REPLACES` drops the keys of the same item it replaces.

    Raises:
        PathError: when the path is not well formed or names no item of a list, or a relative
            override has no number (or month) to change.
    """
    op = split_operator(path)[1]
    if op is not None:
        value = relative_value(value_at(data, path), op, value, path)
    concrete = concrete_path(data, path)
    node: Any = data
    for key in concrete[:-1]:
        if isinstance(node, dict) and node.get(key) is None:
            node[key] = {}
        node = node[key]
    node[concrete[-1]] = value
    if isinstance(node, dict):
        for replaced in REPLACES.get(str(concrete[-1]), ()):
            node.pop(replaced, None)


def relative_value(current: Any, op: str, value: Any, path: str) -> Any:
    """``current`` changed by ``op`` (``+=``, ``*=``) and ``value``: numbers add or multiply (whole
    numbers stay whole when both are), a month (``YYYY-MM``) moves by ``+=`` a whole number of months.

    Raises:
        PathError: for a value that is not a number, or a current value that is neither a number
            nor (for ``+=``) a month.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PathError(path, f"'{op}' needs a number, got {value!r}")
    if isinstance(current, str) and op == "+=":
        try:
            month = parse_month(current)
        except ValueError:
            month = None
        if month is not None:
            if float(value) != int(value):
                raise PathError(path, f"a month moves by whole months, got {value!r}")
            return format_month(month + int(value))
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        what = "a number or a month" if op == "+=" else "a number"
        raise PathError(path, f"'{op}' applies to {what}; the value there is {current!r}")
    return current + value if op == "+=" else current * value


def parse_set_options(texts: Sequence[str]) -> dict[str, Any]:
    """``--set`` options as overrides by path; a path given twice is an error (which would win?).

    Two spellings of one path (``products.A1.price`` and ``products[0].price``) are caught where
    the scenario is known (:func:`sim.scenario.load.load_scenario`, :func:`overlapping_paths`).
    """
    out: dict[str, Any] = {}
    for text in texts:
        path, value = parse_set_option(text)
        if path in out:
            raise InputError(f"--set {path}: given twice ({out[path]!r} and {value!r}); give it once")
        out[path] = value
    return out


def parse_set_option(text: str) -> tuple[str, Any]:
    """``"buyers.price_sensitivity=1.2"`` -> ``("buyers.price_sensitivity", 1.2)``; ``"brands.AITO.appeal+=0.1"``
    -> ``("brands.AITO.appeal+=", 0.1)`` (the key keeps its operator; the value is parsed as YAML). The
    first ``=`` outside brackets ends the path, so selectors work: ``events[type=stores,market=EU].count=60``."""
    depth, cut = 0, -1
    for i, ch in enumerate(text):  # the first '=' outside brackets: a selector's '=' belongs to the path
        depth += (ch == "[") - (ch == "]")
        if ch == "=" and depth == 0:
            cut = i
            break
    if cut < 0:
        raise InputError(f"--set '{text}': expected path=value")
    path, raw = text[:cut], text[cut + 1 :]
    if path.rstrip().endswith(("+", "*")):
        path = path.rstrip() + "="  # the operator of 'path+=value' or 'path*=value' stays in the key
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path.strip(), value
