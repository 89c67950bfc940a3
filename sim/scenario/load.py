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

from sim.scenario.compose import resolve_document
from sim.scenario.errors import validate
from sim.scenario.paths import apply_override, concrete_path
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, Location


def validate_document(doc: Document) -> Scenario:
    """Validate merged scenario data into a :class:`Scenario`.

    Raises:
        InputError: one problem per mistake, located in ``doc``.
    """
    return validate(Scenario, doc)


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, merge (``extends``), override and validate a scenario file.

    Args:
        path: the YAML file.
        overrides: ``{"products.AITO M6.price": 260000, ...}`` applied after merging.

    Raises:
        InputError: for any problem, naming file, line and field.
    """
    doc = resolve_document(path)
    for key, value in (overrides or {}).items():
        apply_override(doc.data, key, value)
        # Errors in an overridden value point at the override, not at the file's line.
        resolved = concrete_path(doc.data, key)
        n = len(resolved)
        for p in [p for p in doc.locations if p[:n] == resolved]:
            del doc.locations[p]
        doc.locations[resolved] = Location(f"<--set {key}>", 1)
    return validate_document(doc)


def scenario_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sim scenario"
    return schema
