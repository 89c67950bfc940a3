"""A scenario's replicates as one batch written to a results folder, for commands that run scenarios
themselves (the backtest, the forecast) rather than through ``sim run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.runs import store
from sim.runs.batch import BatchReport, run_batch
from sim.runs.manifest import new_manifest
from sim.runs.run import make_specs
from sim.scenario.schema import Scenario


def run_request(scenario: Scenario, seed: int, replications: int, scale: float | None) -> dict[str, Any]:
    """What a batch of :func:`run_scenario` asks for, as its manifest records it (a folder holding another
    request is another batch)."""
    return {"kind": "run", "scenario_hash": scenario.hash(), "seed": seed, "replications": replications,
            "scale": scale or scenario.scale}


def run_scenario(
    scenario: Scenario,
    out: str | Path,
    *,
    replications: int,
    seed: int,
    scale: float | None = None,
    kernel: str = "numba",
    workers: int | None = None,
    executor: str = "processes",
    resume: bool = False,
    progress: bool = False,
    label: str | None = None,
    **fields: Any,
) -> BatchReport:
    """Run ``replications`` replicates of ``scenario`` into the results folder ``out``.

    The folder is what ``sim run`` writes (manifest, runs, sales), so ``sim compare``, ``sim
    report`` and ``sim plot`` read it. With ``resume`` a folder holding the same request
    continues where it stopped; otherwise the folder must be new or empty.

    Args:
        fields: more manifest entries (what asked for the batch).
    """
    path = store.prepare_output(out, resume=resume and Path(out).exists())
    specs = make_specs(scenario, replications, seed=seed, scale=scale, kernel=kernel)
    used_scale = scale or scenario.scale
    manifest = new_manifest(
        "run",
        scenario_name=scenario.name,
        scenario_file=None,
        scenario_hash=scenario.hash(),
        scenario=scenario.model_dump(mode="json"),
        overrides={},
        seed=seed,
        replications=replications,
        scale=used_scale,
        check=False,
        label=label or scenario.name,
        request=run_request(scenario, seed, replications, scale),
        **fields,
    )  # fmt: skip
    return run_batch(
        specs, path, manifest, workers=workers, progress=progress, executor=executor,
        resume=resume and (path / store.MANIFEST).exists(),
    )  # fmt: skip
