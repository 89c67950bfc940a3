"""sim as a library: runs in memory, their outcomes, the shipped scenarios.

``import sim`` gives these functions (imported on first use):

- :func:`simulate`: one run in memory, the numbers of replicate ``replicate`` of
  ``sim run SCENARIO --seed SEED`` (the same seed identity, the same ensemble member, the same
  choice kernel, BLAS pinned to one thread as every batch runs), as a :class:`~sim.runs.store.Results`;
- :func:`simulate_batch`: replicates ``0..R-1`` the same way, serially or on worker processes;
- :func:`outcomes`: one row of scalar outcomes per run (:mod:`sim.analysis.outcomes`);
- :func:`scenario_path`: the file of a shipped scenario.

A ``scenario`` is a file, the name of a shipped scenario (``"baseline"``, ``"m6_launch"``) or a
loaded :class:`~sim.scenario.schema.Scenario`; ``overrides`` are values by parameter path
(``{"products.AITO M6.price": 260000, "brands.AITO.appeal+=": 0.1}``), as ``--set`` gives them.
Nothing is written to disk.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.outcomes import run_outcomes
from sim.model.kernels import resolve_kernel
from sim.runs.batch import BLAS_THREADS, executor_slots, make_executor, run_chunk
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec, make_specs
from sim.runs.store import Results
from sim.scenario.load import load_scenario, override_scenario
from sim.scenario.schema import Scenario
from sim.scenario.shipped import scenario_path
from sim.scenario.yamlio import InputError

__all__ = ["RunFailed", "outcomes", "scenario_path", "simulate", "simulate_batch"]

#: What ``scenario`` may be: a file, a shipped scenario's name, or a loaded scenario.
ScenarioLike = Scenario | str | Path
#: Chunks of runs per worker slot of a parallel batch (balances the load, bounds the overhead).
CHUNKS_PER_SLOT = 4


class RunFailed(RuntimeError):
    """A run of :func:`simulate` failed; the message holds its traceback, ``results`` its tables."""

    def __init__(self, message: str, results: Results):
        super().__init__(message)
        self.results = results


def simulate(
    scenario: ScenarioLike,
    *,
    seed: int | None = None,
    replicate: int = 0,
    scale: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    kernel: str | None = None,
    check: bool = False,
) -> Results:
    """One run in memory: replicate ``replicate`` of ``sim run SCENARIO --seed SEED``, bit for bit.

    Args:
        scenario: a scenario file, a shipped scenario's name or a :class:`Scenario`.
        seed: root seed (default: the scenario's, as ``sim run``).
        replicate: which replicate of the seed (its spawned stream, ``SeedSequence(seed, spawn_key=(replicate,))``).
        scale: real buyers per buyer agent (default: the scenario's).
        overrides: scenario values by path, applied in order (``--set``).
        kernel: the choice kernel, ``"numba"`` or ``"numpy"`` (default: ``SIM_KERNEL``, else numba, as ``sim run``).
        check: assert the accounting invariants every month (``sim run --check``).

    Returns:
        The run's tables (``.runs``: one row, ``.sales``) and a manifest, as :func:`sim.load_results` gives
        them for a folder ``sim run`` wrote.

    Raises:
        InputError: a bad scenario, override or argument.
        RunFailed: the run failed (an invariant with ``check``, an error in the model).
    """
    if isinstance(replicate, bool) or not isinstance(replicate, int) or replicate < 0:
        raise InputError(f"replicate must be a whole number >= 0, got {replicate!r}")
    sc, origin = _scenario(scenario, overrides)
    chosen = _kernel(kernel)
    seed = sc.seed if seed is None else seed
    # Replicate r of a batch: the r-th spawned stream, with the batch's run id and replicate number.
    spec = dataclasses.replace(
        make_specs(sc, 1, seed=seed, scale=scale, first_stream=replicate, check=check, kernel=chosen)[0],
        run_id=replicate,
        replicate=replicate,
    )
    runs, sales = run_chunk([spec])  # BLAS_THREADS (one) thread, as every batch runs
    res = _results(sc, origin, overrides, [spec], runs, sales, seed=seed, scale=scale, kernel=chosen, api="simulate",
                   replicate=replicate)  # fmt: skip
    if (runs["status"] != "ok").any():
        raise RunFailed(f"{sc.name}, replicate {replicate} of seed {seed} failed:\n{runs['error'].iloc[0]}", res)
    return res


def simulate_batch(
    scenario: ScenarioLike,
    *,
    replications: int = 1,
    seed: int | None = None,
    scale: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    kernel: str | None = None,
    check: bool = False,
    executor: str | Executor = "serial",
    workers: int | None = None,
) -> Results:
    """Replicates ``0..replications-1`` in memory: the numbers of ``sim run SCENARIO -r R --seed SEED``.

    A run that fails is a row of ``.runs`` with status ``failed`` and its traceback, as in a stored batch.

    Args:
        replications: how many replicates.
        executor: ``"serial"`` (this process), ``"processes"`` (local worker processes; call from under
            ``if __name__ == "__main__":`` in a script), ``"dask"`` or ``"dask://HOST:PORT"``, or a
            ``concurrent.futures.Executor`` of yours (left running). The numbers do not depend on it.
        workers: worker processes of ``"processes"`` or ``"dask"`` (default: all cores).
        scenario, seed, scale, overrides, kernel, check: as :func:`simulate`.

    Raises:
        InputError: a bad scenario, override or argument.
    """
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise InputError(f"replications must be a whole number >= 1, got {replications!r}")
    sc, origin = _scenario(scenario, overrides)
    chosen = _kernel(kernel)
    seed = sc.seed if seed is None else seed
    specs = make_specs(sc, replications, seed=seed, scale=scale, check=check, kernel=chosen)
    ex = executor if isinstance(executor, Executor) else make_executor(workers, executor)
    try:
        size = max(1, math.ceil(len(specs) / (CHUNKS_PER_SLOT * executor_slots(ex))))
        futures = [ex.submit(run_chunk, specs[i : i + size]) for i in range(0, len(specs), size)]
        parts = [f.result() for f in futures]
    finally:
        if ex is not executor:
            ex.shutdown(wait=True)
    runs = pd.concat([p[0] for p in parts], ignore_index=True)
    sales = pd.concat([p[1] for p in parts], ignore_index=True)
    return _results(sc, origin, overrides, specs, runs, sales, seed=seed, scale=scale, kernel=chosen,
                    api="simulate_batch")  # fmt: skip


def outcomes(
    results: Results,
    *,
    brands: Iterable[str] | None = None,
    years: Iterable[int | str] | None = None,
    targets: bool = True,
    shares: bool = True,
) -> pd.DataFrame:
    """One row per run of ``results`` (from :func:`simulate`, :func:`simulate_batch` or :func:`sim.load_results`),
    one column per scalar outcome: each brand's deliveries per year, each target's delivered / reached /
    month reached / months to reach / shortfall, each segment's share of deliveries per year
    (:mod:`sim.analysis.outcomes`). Column names are Python identifiers (``deliveries_AITO_2026``,
    ``AITO_second_million_reached``, ``share_300_400k_2026``), as the EMA Workbench wants them.

    Args:
        brands: only these brands' deliveries (default: all the scenario's).
        years: only these calendar years (default: all the scenario covers).
        targets: the targets' columns.
        shares: the segments' columns.

    Raises:
        ValueError: a brand or year the scenario does not have.
        InputError: results without their scenario in the manifest.
    """
    scenario = results.manifest.get("scenario")
    if not isinstance(scenario, dict):
        raise InputError(f"{results.path}: the manifest holds no scenario; cannot tell its brands, years and targets")
    return run_outcomes(results.runs, results.sales, scenario, brands=brands, years=years, targets=targets, shares=shares)


# --------------------------------------------------------------------------- helpers


def _scenario(scenario: ScenarioLike, overrides: Mapping[str, Any] | None) -> tuple[Scenario, str | None]:
    """The resolved scenario and the file it was read from (None for a :class:`Scenario` given)."""
    if isinstance(scenario, Scenario):
        return override_scenario(scenario, dict(overrides or {})), None
    if not isinstance(scenario, (str, Path)):
        raise InputError(f"scenario must be a file, a shipped scenario's name or a Scenario, got {type(scenario).__name__}")
    return load_scenario(scenario, dict(overrides or {})), str(scenario)


def _kernel(kernel: str | None) -> str:
    """The runs' choice kernel: ``kernel``, else ``SIM_KERNEL``, else numba (as the command line chooses it)."""
    if kernel is not None:
        return resolve_kernel(kernel)
    env = os.environ.get("SIM_KERNEL")
    return resolve_kernel(env, origin="SIM_KERNEL") if env else "numba"


def _results(
    scenario: Scenario, origin: str | None, overrides: Mapping[str, Any] | None, specs: list[RunSpec],
    runs: pd.DataFrame, sales: pd.DataFrame, *, seed: int, scale: float | None, kernel: str, api: str, **fields: Any,
) -> Results:
    """Tables held in memory as :class:`Results`, sorted as a results folder reads them, with a manifest
    like the one ``sim run`` writes."""  # fmt: skip
    used_scale = scale or scenario.scale
    manifest = new_manifest(
        "run",
        api=f"sim.{api}",
        scenario_name=scenario.name,
        scenario_file=origin,
        scenario_hash=scenario.hash(),
        scenario=scenario.model_dump(mode="json"),
        overrides=dict(overrides or {}),
        seed=seed,
        replications=len(specs),
        scale=used_scale,
        check=specs[0].check,
        kernel=kernel,
        blas_threads=BLAS_THREADS,
        **fields,
    )
    runs = runs.sort_values("run_id", kind="stable").reset_index(drop=True)
    key = [c for c in ("run_id", "month", "market", "model") if c in sales.columns]
    sales = sales.sort_values(key, kind="stable").reset_index(drop=True) if len(sales) else sales
    return Results(Path(f"<sim.{api}:{scenario.name}>"), manifest, runs, sales)
