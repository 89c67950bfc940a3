"""sim: an agent-based market simulator of China's premium car market, on Mesa.

Used from Python (see the README, "Using sim from Python")::

    import sim
    res = sim.simulate("baseline", seed=1, replicate=0)      # one run in memory
    table = sim.outcomes(res)                                 # one row of scalar outcomes per run

The public names are imported on first use, so that ``import sim`` and ``import sim.cli``
do not pay for importing Mesa (the command that runs does).

``from sim import *`` gives the names of :data:`__all__`. ``sim.Scenario``, ``sim.load_results``
and ``sim.outcomes`` are left out of it on purpose: the EMA Workbench exports a ``Scenario`` and a
``load_results`` of its own, and its examples name their results ``outcomes``; use them as
``sim.Scenario``, ``sim.load_results``, ``sim.outcomes``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from sim.api import RunFailed, simulate, simulate_batch
    from sim.api import outcomes as outcomes  # public, kept out of __all__ (see above)
    from sim.model.market_model import MarketModel
    from sim.model.warmup import warmup
    from sim.runs.store import Results
    from sim.runs.store import load_results as load_results
    from sim.scenario.load import load_scenario
    from sim.scenario.schema import Scenario as Scenario
    from sim.scenario.shipped import scenario_path

#: Public name -> the module that defines it.
_LAZY = {
    "MarketModel": "sim.model.market_model",
    "Scenario": "sim.scenario.schema",
    "load_scenario": "sim.scenario.load",
    "scenario_path": "sim.scenario.shipped",
    "Results": "sim.runs.store",
    "load_results": "sim.runs.store",
    "simulate": "sim.api",
    "simulate_batch": "sim.api",
    "outcomes": "sim.api",
    "RunFailed": "sim.api",
    "warmup": "sim.model.warmup",
}

__all__ = [
    "MarketModel",
    "Results",
    "RunFailed",
    "__version__",
    "load_scenario",
    "scenario_path",
    "simulate",
    "simulate_batch",
    "warmup",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
