"""Run a scenario and its baseline on the same seeds, in memory, with progress.

The dashboard's batches are small (a few replicates at a coarse scale) and live only as long as
the page: they are not written to disk. Each run is :func:`sim.runs.chunks.run_chunk` of one spec,
exactly as ``sim run`` executes it, so a dashboard result equals the ``sim run`` command it shows
(same scenario, seed, replicates and scale) run for run. The tables are wrapped in a
:class:`sim.runs.store.Results` (path ``<dashboard:NAME>``, a manifest with the resolved scenario and
the seed), which is what :mod:`sim.analysis.compare` reads.

Finished batches (with no failed run) are kept in a small cache keyed by scenario hash, seed,
replicates and scale, so moving a lever reruns only the scenario, never the unchanged baseline.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.runs.chunks import run_chunk
from sim.runs.executors import SerialExecutor, make_executor
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec, make_specs
from sim.runs.store import Completeness, Results
from sim.scenario.schema import Scenario

#: Batches kept in memory (scenario and baseline of the last few requests).
CACHE_SIZE = 8

Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """The batch was cancelled before it finished."""


@dataclass(frozen=True)
class BatchKey:
    """What identifies a batch: the resolved scenario and the sampling."""

    scenario_hash: str
    seed: int
    replications: int
    scale: float


@dataclass
class Pair:
    """A scenario and its baseline, run on the same seeds."""

    scenario: Results
    baseline: Results
    seconds: float
    runs_done: int
    from_cache: int


class BatchCache:
    """The last :data:`CACHE_SIZE` batches, least recently used first out. Thread-safe."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[BatchKey, Results] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: BatchKey) -> Results | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: BatchKey, results: Results) -> None:
        with self._lock:
            self._items[key] = results
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class WorkerPool:
    """Worker processes kept from one batch to the next, so that their start-up is paid once.

    Args:
        workers: processes (None: all cores; 1: runs in the calling process, no pool).

    A pool that broke (a worker killed) is replaced at the next batch. Thread-safe.
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers
        self._ex: Executor | None = None
        self._lock = threading.Lock()

    def executor(self) -> Executor:
        with self._lock:
            if self._ex is None or getattr(self._ex, "_broken", False):
                self._ex = make_executor(self.workers, "processes")
            return self._ex

    def reset(self) -> None:
        """Drop the processes (after a failure); the next batch starts new ones."""
        with self._lock:
            ex, self._ex = self._ex, None
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            ex, self._ex = self._ex, None
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)


def batch_key(scenario: Scenario, seed: int, replications: int, scale: float) -> BatchKey:
    return BatchKey(scenario.hash(), int(seed), int(replications), float(scale))


def results_in_memory(
    scenario: Scenario, runs: pd.DataFrame, sales: pd.DataFrame, seed: int, scale: float, overrides: dict[str, Any],
    kernel: str = "numba",
) -> Results:
    """Wrap a batch's tables as :class:`Results`, with the manifest fields :mod:`sim.analysis.compare` reads."""
    manifest = new_manifest(
        "run",
        command=["sim", "dashboard"],
        scenario_name=scenario.name,
        scenario_hash=scenario.hash(),
        scenario=scenario.model_dump(mode="json"),
        overrides=dict(overrides),
        seed=int(seed),
        replications=int(runs["replicate"].nunique()) if len(runs) else 0,
        scale=float(scale),
        kernel=kernel,
    )
    runs = runs.sort_values("run_id", kind="stable").reset_index(drop=True)
    key = [c for c in ("run_id", "month", "market", "model") if c in sales.columns]
    sales = sales.sort_values(key, kind="stable").reset_index(drop=True) if len(sales) else sales
    failed = int((runs["status"] != "ok").sum()) if len(runs) else 0
    # Every asked run is here (a cancelled batch raises instead); failed runs are counted, as for a folder.
    done = Completeness(asked=len(runs), finished=len(runs), failed=failed, status="complete")
    return Results(Path(f"<dashboard:{scenario.name}>"), manifest, runs, sales, completeness=done)


def run_pair(
    scenario: Scenario,
    baseline: Scenario,
    *,
    seed: int,
    replications: int,
    scale: float,
    overrides: dict[str, Any] | None = None,
    workers: int | None = None,
    pool: WorkerPool | None = None,
    cache: BatchCache | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    kernel: str = "numba",
) -> Pair:
    """Run ``scenario`` and ``baseline`` with ``replications`` replicates each on the root ``seed``.

    Replicate ``r`` of both draws the same random numbers (common random numbers), so that
    :func:`sim.analysis.pair_comparison.compare_pair` pairs them. Batches found in ``cache`` are not rerun.

    Args:
        scenario, baseline: resolved scenarios (overrides already applied to ``scenario``).
        seed: root seed of both batches.
        replications: replicates per scenario.
        scale: real buyers per buyer agent.
        overrides: recorded in the scenario's manifest (what the levers set).
        workers: worker processes (default: all cores; 1 runs in this process), started for
            this batch and stopped after it; ignored when ``pool`` is given.
        pool: worker processes kept between batches.
        cache: finished batches to reuse, and to add these to.
        progress: called with (runs finished, runs to do) after every run.
        cancel: set it to stop: runs not started are dropped, the results of runs in flight
            are ignored.
        kernel: the runs' choice kernel (one per page: the cache does not tell kernels apart).

    Raises:
        Cancelled: when ``cancel`` was set before the batch finished.
    """
    t0 = time.perf_counter()
    keys = {
        "scenario": batch_key(scenario, seed, replications, scale),
        "baseline": batch_key(baseline, seed, replications, scale),
    }
    configs = {"scenario": (scenario, dict(overrides or {})), "baseline": (baseline, {})}
    found: dict[str, Results] = {}
    for role, key in keys.items():
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            found[role] = hit
    todo_roles = [r for r in ("scenario", "baseline") if r not in found]
    if todo_roles == ["scenario", "baseline"] and keys["scenario"] == keys["baseline"]:
        todo_roles = ["scenario"]  # the scenario is the baseline: run it once
    specs: dict[str, list[RunSpec]] = {
        r: make_specs(configs[r][0], replications, seed=seed, scale=scale, kernel=kernel) for r in todo_roles
    }
    own = pool is None
    pool = pool or WorkerPool(workers)
    try:
        tables = _execute(specs, pool, progress, cancel)
    finally:
        if own:
            pool.shutdown()
    for role in todo_roles:
        runs, sales = tables[role]
        sc, ov = configs[role]
        found[role] = results_in_memory(sc, runs, sales, seed, scale, ov, kernel)
        if cache is not None and (runs["status"] == "ok").all():  # a failed run is not kept: Run tries again
            cache.put(keys[role], found[role])
    if "baseline" not in found:
        found["baseline"] = found["scenario"]
    runs_done = sum(len(s) for s in specs.values())
    return Pair(found["scenario"], found["baseline"], time.perf_counter() - t0, runs_done, 2 - len(todo_roles))


def _execute(
    specs: dict[str, list[RunSpec]],
    pool: WorkerPool,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Run every role's specs, one run per task, on the pool; tables per role."""
    total = sum(len(s) for s in specs.values())
    got: dict[str, list[tuple[pd.DataFrame, pd.DataFrame]]] = {r: [] for r in specs}
    done_count = 0
    reported = -1

    def tick() -> None:
        nonlocal reported
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if progress is not None and done_count != reported:
            reported = done_count
            progress(done_count, total)

    tick()
    if total == 0:
        return {}
    ex = pool.executor()
    if isinstance(ex, SerialExecutor):  # runs at submit: go one by one to report progress
        for role, role_specs in specs.items():
            for spec in role_specs:
                got[role].append(run_chunk([spec]))
                done_count += 1
                tick()
    else:
        role_of: dict[Future[Any], str] = {}
        try:
            for role, role_specs in specs.items():
                for spec in role_specs:
                    role_of[ex.submit(run_chunk, [spec])] = role
            pending = set(role_of)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    got[role_of[fut]].append(fut.result())
                    done_count += 1
                tick()
        except BrokenProcessPool:
            pool.reset()
            raise
        except BaseException:
            for fut in role_of:
                fut.cancel()
            raise
    return {
        r: (pd.concat([x[0] for x in parts], ignore_index=True), pd.concat([x[1] for x in parts], ignore_index=True))
        for r, parts in got.items()
    }
