"""Validation errors as the messages users see: ``file:line: field: message``.

Every input file (scenario, sweep, calibration) is validated by a pydantic model;
:func:`validate` turns its ``ValidationError`` into one located :class:`Problem` per
mistake, with a "did you mean" for a misspelt key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sim.scenario.yamlio import Document, InputError, Path_, Problem, format_path

M = TypeVar("M", bound=BaseModel)


class FieldErrors(ValueError):
    """Several problems one model validator found, each at a path below the model.

    Raised inside a validator (e.g. the scenario's cross-references), it reaches
    :func:`located_problems` as a single pydantic error and leaves as one located problem each.
    """

    def __init__(self, problems: list[tuple[Path_, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{format_path(p)}: {m}" for p, m in problems))


def did_you_mean(key: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt ``key``, if one is close."""
    close = difflib.get_close_matches(key, list(choices), n=1)
    return close[0] if close else None


def few(names: Iterable[str]) -> str:
    """The first eight of ``names`` in order, for a message: ``"a, b, c, ..."``."""
    s = sorted(names)
    return ", ".join(s[:8]) + (", ..." if len(s) > 8 else "")


def validate(model: type[M], doc: Document) -> M:
    """``doc``'s data as a ``model``.

    Raises:
        InputError: one problem per mistake, naming the file, line and field.
    """
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(located_problems(exc, doc, model)) from None


def located_problems(exc: ValidationError, doc: Document, model: type[BaseModel]) -> list[Problem]:
    """The errors of validating ``doc`` as ``model``, located in ``doc``.

    An unknown key suggests the nearest allowed one (or lists them); a wrong value says
    what it got.
    """
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldErrors):
            for p, msg in ctx_err.problems:
                out.append(Problem(msg, doc.where(loc + p), format_path(loc + p)))
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _suggestion(model, loc)
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            got = err.get("input")
            if err["type"] not in ("value_error", "assertion_error") and not isinstance(got, (dict, list)):
                msg += f", got {got!r}"
        out.append(Problem(msg, doc.where(loc), format_path(loc)))
    return out


def _suggestion(model: type[BaseModel], loc: Path_) -> str:
    """`` (did you mean 'x'?)`` or `` (allowed: ...)`` for the unknown key at ``loc`` of ``model``."""
    key = loc[-1]
    if not isinstance(key, str):
        return ""
    holder = _model_at(model, loc[:-1])
    if holder is None:
        return ""
    fields = list(holder.model_fields)
    close = did_you_mean(key, fields)
    return f" (did you mean '{close}'?)" if close else f" (allowed: {', '.join(fields)})"


def _model_at(model: type[BaseModel], path: Path_) -> type[BaseModel] | None:
    """The model that holds the keys at ``path`` of ``model`` (list items skipped), or None."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None
