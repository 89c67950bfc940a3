"""Scenario files -> a validated, frozen :class:`~sim.scenario.schema.Scenario`.

A file is read with the line of every value (:mod:`sim.scenario.yamlio`), merged over
what it ``extends`` (:mod:`sim.scenario.compose`), given the caller's overrides by path
(:mod:`sim.scenario.paths`) and validated (:mod:`sim.scenario.errors`). Every error names
the file, the line and the field, e.g.
``scenarios/m6.yaml:14: products[3].price: Input should be greater than 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.scenario.compose import NAMED_LISTS, resolve_document
from sim.scenario.errors import validate
from sim.scenario.months import parse_month
from sim.scenario.paths import (
    PathError,
    apply_override,
    concrete_path,
    overlapping_paths,
    relative_value,
    split_operator,
    value_at,
)
from sim.scenario.schema import Scenario
from sim.scenario.shipped import locate_scenario
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path


def validate_document(doc: Document) -> Scenario:
    """Validate merged scenario data into a :class:`Scenario`.

    Raises:
        InputError: one problem per mistake, located in ``doc``.
    """
    return validate(Scenario, doc)


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, merge (``extends``), override and validate a scenario file.

    Args:
        path: the YAML file, or the name of a shipped scenario (``"baseline"``, ``"m6_launch"``) when no
            file of that name is in the working folder (:mod:`sim.scenario.shipped`).
        overrides: ``{"products.AITO M6.price": 260000, "brands.AITO.appeal+=": 0.1, ...}`` applied after
            merging, in order (:func:`sim.scenario.paths.apply_override`).

    Raises:
        InputError: for any problem, naming file, line and field: also an override of ``extends``
            or of an item's name, two overrides of one value, and a product launched or an event
            dated after the scenario's ``end`` in the file itself (see :func:`after_end`).
    """
    located = locate_scenario(path)
    doc = resolve_document(located)
    overrides = overrides or {}
    check_overrides(doc.data, overrides)
    for key, value in overrides.items():
        apply_override(doc.data, *_file_override(doc, key, value))
        # Errors in an overridden value point at the override, not at the file's line.
        resolved = concrete_path(doc.data, key)
        n = len(resolved)
        for p in [p for p in doc.locations if p[:n] == resolved]:
            del doc.locations[p]
        doc.locations[resolved] = Location(f"<--set {key}>", 1)
    scenario = validate_document(doc)
    if not any(concrete_path(doc.data, key)[:1] == ("end",) for key in overrides):
        # An `end` set by the caller (--set end=, a calibration's `through`) cuts the scenario short on purpose.
        problems = after_end(scenario, doc, str(located))
        if problems:
            raise InputError(problems)
    return scenario


def check_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse overrides that would be ignored or make a scenario that says something else.

    ``extends`` is read before overrides apply (setting it would do nothing); an item's name is
    how the rest of the scenario refers to it (renaming it would orphan those references); two
    overrides of one value, under two spellings or one inside the other, would leave the winner
    to their order.

    Raises:
        InputError: each such override, with the reason.
    """
    problems: list[Problem] = []
    keys = list(overrides)
    for key in keys:
        concrete = concrete_path(data, key)
        if concrete[:1] == ("extends",):
            problems.append(Problem("cannot be set: 'extends' is read before any --set applies; write a scenario "
                                    "file that extends the one you want", Location(f"<--set {key}>", 1), key))  # fmt: skip
        elif _is_item_name(concrete):
            problems.append(Problem("cannot rename an item: its name is how the rest of the scenario refers to it; "
                                    "edit the file (or set the item's other fields)", Location(f"<--set {key}>", 1), key))  # fmt: skip
    for i, message in overlapping_paths(data, keys):
        problems.append(Problem(message, Location(f"<--set {keys[i]}>", 1), keys[i]))
    if problems:
        raise InputError(problems)


def _is_item_name(concrete: Path_) -> bool:
    """Whether ``concrete`` is the ``name`` (or store key) of an item of a list that merges by name."""
    if len(concrete) < 3 or not isinstance(concrete[-2], int):
        return False
    holder = concrete[-3]
    return isinstance(holder, str) and concrete[-1] in NAMED_LISTS.get(holder, ())


def after_end(scenario: Scenario, doc: Document, file: str) -> list[Problem]:
    """Products launched and events dated after the scenario's ``end`` in ``file`` itself: they would
    never take effect (a mistyped year, a horizon set too short).

    Items ``file`` inherits through ``extends`` are not refused: a file that ends earlier than the
    one it extends cuts it short on purpose.
    """
    end = scenario.end_index
    problems = []
    items: list[tuple[Path_, str]] = [(("products", i, "launch"), p.launch) for i, p in enumerate(scenario.products)]
    items += [(("events", i, "month"), e.month) for i, e in enumerate(scenario.events)]
    for where, month in items:
        loc = doc.where(where)
        if parse_month(month) > end and loc is not None and loc.file == file:
            what = "launched" if where[0] == "products" else "dated"
            problems.append(Problem(f"{what} {month}, after the scenario's end {scenario.end}: it would never take effect",
                                    loc, format_path(where)))  # fmt: skip
    return problems


def _file_override(doc: Document, key: str, value: Any) -> tuple[str, Any]:
    """A relative override of a value the file leaves to its default (``brands.X.appeal+=`` where the file
    gives no appeal) as the plain value it gives: the default, read from the scenario validated so far,
    changed. Any other override as it is."""
    bare, op = split_operator(key)
    if op is None:
        return key, value
    try:
        value_at(doc.data, key)
    except PathError:
        current = value_at(validate_document(doc).model_dump(mode="json"), key)
        return bare, relative_value(current, op, value, key)
    return key, value


def override_scenario(scenario: Scenario, overrides: dict[str, Any] | None, origin: str | None = None) -> Scenario:
    """``scenario`` with ``overrides`` applied (by path, in order, as :func:`load_scenario` applies them to
    a file) and validated again; ``scenario`` itself when there are none.

    Args:
        origin: what the errors name instead of a file (default ``<NAME>``).

    Raises:
        InputError: a bad path or value, located at the override.
    """
    if not overrides:
        return scenario
    data = scenario.model_dump(mode="json")
    for key, value in overrides.items():
        apply_override(data, key, value)
    return validate_document(Document(data, {}, origin or f"<{scenario.name}>"))


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sim scenario"
    return schema
