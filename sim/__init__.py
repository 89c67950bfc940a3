"""sim: an agent-based market simulator of China's premium car market, on Mesa.

The public names are imported on first use, so that ``import sim`` and ``import sim.cli``
do not pay for importing Mesa (the command modules that ``sim.cli`` builds its parser
from still do).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .model import MarketModel
    from .scenario import Scenario, load_scenario
    from .store import Results, load_results

#: Public name -> the module that defines it.
_LAZY = {
    "MarketModel": "model",
    "Scenario": "scenario",
    "load_scenario": "scenario",
    "Results": "store",
    "load_results": "store",
}

__all__ = ["MarketModel", "Results", "Scenario", "__version__", "load_results", "load_scenario"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
