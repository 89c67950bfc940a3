"""JSON files the presentation reads beside results folders: a decomposition, a backtest's summary.

:func:`read_json_object` reads one as a JSON object; whatever is wrong with it (unreadable, not
JSON, not an object) is an :class:`~sim.scenario.yamlio.InputError` naming the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.scenario.yamlio import InputError


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``what`` names it in messages (``a decomposition (sim decompose)``).

    Raises:
        InputError: the file cannot be read, is not JSON, or holds no JSON object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({what}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: not {what}: expected a JSON object, got {type(data).__name__}")
    return data
