"""sim: an agent-based market simulator of China's premium car market, on Mesa."""

from __future__ import annotations

__version__ = "0.1.0"

from .model import MarketModel  # noqa: E402
from .scenario import Scenario, load_scenario  # noqa: E402
from .store import Results, load_results  # noqa: E402

__all__ = ["MarketModel", "Results", "Scenario", "__version__", "load_results", "load_scenario"]
