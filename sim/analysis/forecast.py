"""``sim forecast``: a forecast that starts from what is known.

1. The figures: the project's reported figures (``scenarios/reported/figures.csv``) and any files an
   analyst adds (:func:`read_figures`: a bad row of an added file, an unknown brand or product, a
   figure dated after the origin, is an error naming its file, line and column; nothing is dropped
   in silence).
2. The filter (:mod:`sim.analysis.assimilation`) runs the scenario's history as particles and
   weighs them by the figures dated from the first month the fit did not see (the scenario's
   ``uncertainty.start``) to the origin (``--through``, or the last month with such figures).
3. The forecast: replicates drawn from the particles by their final weights (systematic
   resampling) continue from their states to the scenario's end, each with its own streams
   (:attr:`sim.runs.run.RunSpec.start`). They are a results folder like ``sim run``'s (``sim compare``,
   ``report`` and ``plot`` read it), with the particle of each replicate in the runs table and the
   assimilation (the figures, the ESS of every month, the resampling months) in the manifest.
   ``before/`` holds replicates drawn by the weights before the last month's figures: what those
   figures changed.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.assimilation import FilterResult, ParticleFilter, normalised, systematic_resample
from sim.analysis.observations import Observation, describe, observations
from sim.analysis.reported import load_reported
from sim.model.draws import first_uncertain_month
from sim.runs import store
from sim.runs.batch import BatchReport, run_batch
from sim.runs.executors import executor_slots, make_executor
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError, Location, Problem

#: Spawn-key head of the replicates' draw of particles.
CHOICE_STREAM = 2**32 - 6
#: The forecast's assimilation, in the manifest.
ASSIMILATION = "assimilation"


#: Reasons for an unusable row that only say the row holds no figure (a searched-for figure not found).
INFORMATIONAL = ("not found", "informational")


def _row_keys(figures: pd.DataFrame) -> set[tuple[Any, ...]]:
    """What identifies a row of a figures file: its date, entity, metric and value as written."""
    return set(zip(figures["date"], figures["entity"], figures["metric"], figures["raw_value"], strict=True))


def _column(reason: str) -> str:
    """The column a reason for an unusable row is about."""
    r = reason.lower()
    for key, column in (("value", "value"), ("period", "date"), ("date", "date"), ("entity", "entity"),
                        ("brand", "entity"), ("unit", "unit"), ("confidence", "confidence")):  # fmt: skip
        if key in r:
            return column
    return "metric"


def read_figures(scenario: Scenario, added: Sequence[str | Path] = (), *, origin: int | None = None,
                 project: bool = True) -> pd.DataFrame:
    """The reported figures to assimilate: the project's file and the added ones, with a ``file`` column.

    Rows of an added file must all be usable, name a brand or product of the scenario when they are
    volumes, and be dated no later than ``origin``; otherwise every bad row is reported (file, line,
    column, why) in one :class:`InputError`.
    """
    tables = []
    own = load_reported()
    if project:
        tables.append(own.figures.assign(file=own.path.name))
    # Rows of the project's own file, copied into an added one, were checked there.
    known = _row_keys(own.figures) | set(zip(own.unusable["date"], own.unusable["entity"], own.unusable["metric"],
                                             own.unusable["value"], strict=True))  # fmt: skip
    brands = {b.name for b in scenario.brands}
    products = {p.name for p in scenario.products}
    problems: list[Problem] = []
    for path in added:
        try:
            rf = load_reported(path)
        except ValueError as exc:  # ReportedFileError: the file is not a readable table
            raise InputError(str(exc)) from None
        for _, u in rf.unusable.iterrows():
            reason = str(u["reason"])
            if reason.startswith(INFORMATIONAL) or (u["date"], u["entity"], u["metric"], u["value"]) in known:
                continue
            problems.append(Problem(f"cannot use this row: {reason}", Location(str(path), int(u["line"])), _column(reason)))
        f = rf.figures
        for _, row in f.iterrows():
            if (row["date"], row["entity"], row["metric"], row["raw_value"]) in known:
                continue  # a row of the project's own file, copied: already checked there
            where = Location(str(path), int(row["line"]))
            if row["brand"] is not None and row["brand"] not in brands:
                problems.append(Problem(f"brand '{row['brand']}' is not in scenario {scenario.name!r}", where, "entity"))
            elif isinstance(row["model"], str) and row["model"] not in products:
                problems.append(Problem(f"product '{row['model']}' is not in scenario {scenario.name!r}", where, "entity"))
            elif row["brand"] is None and row["measure"] in ("deliveries", "sales", "retail", "registrations", "cumulative"):
                problems.append(Problem(f"'{row['entity']}' names no brand or product of the model", where, "entity"))
            if origin is not None and parse_month(row["end"]) > origin:
                problems.append(Problem(f"dated {row['end']}, after the forecast's origin {format_month(origin)} "
                                        "(move --through or the row)", where, "date"))  # fmt: skip
        tables.append(f.assign(file=Path(path).name))
    if problems:
        raise InputError(problems)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def default_origin(scenario: Scenario, figures: pd.DataFrame) -> int:
    """The last month with a figure to assimilate (at least the month before the first uncertain one)."""
    first = first_uncertain_month(scenario)
    obs = observations(figures, scenario, after=first - 1, through=scenario.end_index)
    return max([first - 1, *(o.end for o in obs)])


def branched_specs(scenario: Scenario, result: FilterResult, folder: Path, replications: int, seed: int, *,
                   weights: np.ndarray, scale: float | None, kernel: str, first_run: int = 0,
                   stream: int = 0) -> list[RunSpec]:
    """Replicates drawn from the particles by ``weights``, each continuing its particle's state with its own streams.

    Replicate ``r`` has the seed identity ``(seed, spawn_key=(r,))`` as replicate ``r`` of ``sim run``
    (so two scenarios forecast with the same seed share their replicates' streams); the particles
    are drawn by systematic resampling from the stream ``(seed, (CHOICE_STREAM, stream))``.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(CHOICE_STREAM, stream))))
    idx = systematic_resample(weights, replications, rng)
    entropy = int(np.random.SeedSequence(seed).entropy)  # type: ignore[arg-type]
    return [
        RunSpec(run_id=first_run + r, replicate=r, entropy=entropy, spawn_key=(r,), scenario=scenario, scale=scale,
                kernel=kernel, start=str(folder / f"p{int(p):05d}.npz"), member=result.particles[int(p)].member,
                particle=int(p))
        for r, p in enumerate(idx)
    ]  # fmt: skip


def keep_particles(result: FilterResult, folder: Path) -> None:
    """Move the particles' states at the origin to ``folder`` (``pNNNNN.npz``) and drop the filter's steps."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(result.particles):
        target = folder / f"p{i:05d}.npz"
        shutil.copyfile(p.state, target)
        p.state = str(target)


def run_forecast(
    scenario: Scenario,
    out: str | Path,
    *,
    scenario_file: str,
    figures: pd.DataFrame,
    figures_files: Sequence[str],
    origin: int,
    particles: int,
    replications: int,
    seed: int,
    before: int,
    scale: float | None = None,
    kernel: str = "numba",
    workers: int | None = None,
    executor: str = "processes",
    progress: bool = True,
    log: Any = sys.stderr,
) -> tuple[BatchReport, dict[str, Any]]:
    """Filter, then forecast (see the module docstring); returns the batch's report and the assimilation's record."""
    out = Path(out)
    first = first_uncertain_month(scenario)
    obs: list[Observation] = observations(figures, scenario, after=first - 1, through=origin)
    work = out / ".filter"
    ex = make_executor(workers, executor) if executor != "serial" else None
    try:
        pf = ParticleFilter(scenario, obs, particles=particles, seed=seed, origin=origin, folder=work, scale=scale,
                            kernel=kernel, executor=ex, slots=executor_slots(ex) if ex is not None else 1, log=log)  # fmt: skip
        result = pf.run()
    finally:
        if ex is not None:
            ex.shutdown(wait=True)
    keep_particles(result, out / "particles")
    shutil.rmtree(work, ignore_errors=True)
    w_after, w_before = normalised(result.log_weights), normalised(result.log_weights_before)
    record: dict[str, Any] = {
        "origin": format_month(origin),
        "first_uncertain_month": format_month(first),
        "particles": particles,
        "figures_files": list(figures_files),
        "observations": describe(obs),
        "assimilated": result.observations,
        "ess": {k: round(v, 2) for k, v in result.ess.items()},
        "final_ess": round(float(1.0 / np.sum(w_after**2)), 2),
        "resampled": result.resampled,
        "tempered": result.tempered,
        "particle_members": [p.member for p in result.particles],
        "particle_weights": [round(float(x), 8) for x in w_after],
        "notes": result.notes,
    }
    specs = branched_specs(scenario, result, out / "particles", replications, seed, weights=w_after, scale=scale,
                           kernel=kernel)  # fmt: skip
    used_scale = scale or scenario.scale
    manifest = new_manifest(
        "forecast", scenario_name=scenario.name, scenario_file=scenario_file, scenario_hash=scenario.hash(),
        scenario=scenario.model_dump(mode="json"), overrides={}, seed=seed, replications=replications, scale=used_scale,
        check=False, assimilation=record,
        request={"kind": "forecast", "scenario_hash": scenario.hash(), "seed": seed, "replications": replications,
                 "scale": used_scale, "particles": particles, "origin": format_month(origin)},
    )  # fmt: skip
    report = run_batch(specs, out, manifest, workers=workers, progress=progress, executor=executor)
    if before > 0 and result.observations:
        last = result.observations[-1]["month"]
        # ``out`` was checked empty, or given with --force, by the caller: a before/ left by an earlier forecast
        # there is replaced with the rest of it
        shutil.rmtree(out / "before", ignore_errors=True)
        folder = store.prepare_output(out / "before")
        specs_b = branched_specs(scenario, result, out / "particles", before, seed, weights=w_before, scale=scale,
                                 kernel=kernel, stream=1)  # fmt: skip
        man_b = {**manifest, "label": f"{scenario.name}, before the figures of {last}", "replications": before,
                 "request": {**manifest["request"], "replications": before, "before": last}}  # fmt: skip
        run_batch(specs_b, folder, man_b, workers=workers, progress=progress, executor=executor)
    return report, record
