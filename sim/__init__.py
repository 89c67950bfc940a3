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
    from sim.model.market_model import MarketModel
    from sim.runs.store import Results, load_results
    from sim.scenario.load import load_scenario
    from sim.scenario.schema import Scenario

#: Public name -> the module that defines it.
_LAZY = {
    "MarketModel": "sim.model.market_model",
    "Scenario": "sim.scenario.schema",
    "load_scenario": "sim.scenario.load",
    "Results": "sim.runs.store",
    "load_results": "sim.runs.store",
}

__all__ = ["MarketModel", "Results", "Scenario", "__version__", "load_results", "load_scenario"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
