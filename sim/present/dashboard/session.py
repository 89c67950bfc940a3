"""The dashboard's state: its configuration, the scenarios' levers and each browser session's choices.

Module-level ``solara.reactive`` variables are kept by the Solara server per browser session, so
two people on the same server each have their scenario, levers and results. The lever sets, the
finished batches (:class:`~sim.present.dashboard.runner.BatchCache`) and the worker processes
(:class:`~sim.present.dashboard.runner.WorkerPool`) are shared: they depend only on the files and on
what is asked.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import solara

from sim.present.dashboard.config import DashboardConfig
from sim.present.dashboard.levers import LeverSet, load_levers
from sim.present.dashboard.runner import BatchCache, WorkerPool
from sim.scenario.yamlio import InputError

CONFIG = DashboardConfig.from_env()
CACHE = BatchCache()
POOL = WorkerPool(CONFIG.workers)  # worker processes shared by the sessions, started at the first run
SCALES = sorted({100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0, float(CONFIG.scale)})
_LEVER_SETS: dict[tuple[str, float, float], LeverSet] = {}
_lock = threading.Lock()


def lever_set(path: str) -> LeverSet:
    """The levers of a scenario file (cached by path and the modification times of it and the baseline)."""
    try:
        key = (path, Path(path).stat().st_mtime, Path(CONFIG.baseline).stat().st_mtime)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    with _lock:
        if key not in _LEVER_SETS:
            _LEVER_SETS[key] = load_levers(path)
        return _LEVER_SETS[key]


def _baseline_seed() -> int:
    try:
        return int(lever_set(str(CONFIG.baseline)).scenario.seed)
    except InputError:
        return 0


# ----------------------------------------------------------------------------- session state

scenario_file = solara.reactive(str(CONFIG.scenario))
lever_values: solara.Reactive[dict[str, Any]] = solara.reactive({})
replications = solara.reactive(int(CONFIG.replications))
scale = solara.reactive(float(CONFIG.scale))
seed = solara.reactive(int(CONFIG.seed) if CONFIG.seed is not None else _baseline_seed())
progress = solara.reactive((0, 0))
cancel_event: solara.Reactive[threading.Event | None] = solara.reactive(None)
request_error = solara.reactive("")
shown_brands: solara.Reactive[list[str]] = solara.reactive([])
runs_started = solara.reactive(0)


def current_overrides() -> tuple[LeverSet, dict[str, Any]]:
    """The current scenario's lever set and the overrides its lever values give."""
    ls = lever_set(scenario_file.value)
    return ls, ls.overrides({k: v for k, v in lever_values.value.items() if k in ls.by_key()})
