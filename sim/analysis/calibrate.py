"""Ensemble calibration: approximate Bayesian computation with sequential Monte Carlo (ABC-SMC).

``sim calibrate CALIB.yaml`` fits the free parameters of a calibration file to reported
volumes and returns an *ensemble* of parameter sets with weights, not one point.

The calibration file and its free parameters are read by :mod:`sim.analysis.calibration_file`;
the loss (the reported volumes and the distance) is :mod:`sim.analysis.calibration_targets`; the
sampler (ABC with sequential Monte Carlo) :mod:`sim.analysis.abc_smc`; the outputs
:mod:`sim.analysis.calibration_outputs`. This module loads a calibration (:func:`load_calibration`)
and runs its rounds (:func:`calibrate`).

Every round is a batch of runs through :func:`sim.runs.batch.run_batch` (any executor), stored
in ``DIR/round-NN`` with its proposals (``proposals.json``) written before it starts and its
outcome (``abc.json``) after, so ``--resume`` continues a killed calibration where it stopped.
Outputs: ``DIR/calibrated.yaml`` (an overlay that extends the base and holds the ensemble,
see :class:`sim.scenario.schema.Ensemble`) and ``DIR/fit.json`` (in-sample and, with ``--through``
before the file's ``through``, out-of-sample metrics per series).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.abc_smc import Population, Proposal, first_proposals, kernel_covariance, next_proposals, population
from sim.analysis.calibration_file import CalibrationFile, FreeParameter, read_calibration_file, resolve_parameters
from sim.analysis.calibration_targets import FitTarget, distances, load_figures, select_targets, target_values
from sim.runs import store
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec, make_specs
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError, Problem

#: What a calibration writes in its folder (what ``--force`` replaces): the rounds, its state and outputs.
OUTPUTS = ("round-*", "calibration.json", "calibrated.yaml", "fit.json")


@dataclass
class Calibration:
    """A calibration ready to run: base scenario (ending at the data's last month), parameters, targets."""

    file: Path
    config: CalibrationFile
    name: str
    base_file: Path
    scenario: Scenario
    parameters: list[FreeParameter]
    targets: list[FitTarget]
    fit_through: str
    budget: int

    @property
    def fit_targets(self) -> list[FitTarget]:
        return [t for t in self.targets if t.in_sample]

    @property
    def holdout_targets(self) -> list[FitTarget]:
        return [t for t in self.targets if not t.in_sample]

    def plan(self) -> tuple[int, int]:
        """``(rounds, per_round)`` within the budget: at least two rounds."""
        m, r = self.config.method.per_round, self.config.method.replications
        rounds = self.budget // (m * r)
        if rounds < 2:
            m = self.budget // (2 * r)
            rounds = 2
        if m < 4:
            raise InputError(f"--budget {self.budget}: too small; ABC-SMC needs at least {8 * r} runs "
                             f"(two rounds of 4 sets x {r} replication(s))")
        return rounds, m

    def request(self) -> dict[str, Any]:
        """What identifies this calibration (a resumed folder must have asked the same)."""
        cfg = self.config.model_dump(mode="json", exclude={"budget", "levers", "description"})
        return {
            "kind": "calibration",
            "config_hash": hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16],
            "scenario_hash": self.scenario.hash(),
            "targets_hash": hashlib.sha256(
                json.dumps([[t.key, t.volume.value, t.weight, t.in_sample] for t in self.targets]).encode()
            ).hexdigest()[:16],
            "budget": self.budget,
            "through": self.fit_through,
        }


def load_calibration(
    path: str | Path, *, through: str | None = None, budget: int | None = None, base: str | Path | None = None,
    reported: Any = None,
) -> Calibration:
    """Read and validate a calibration file and everything it names.

    Args:
        through: fit to data through this month only (at most the file's ``through``); the
            figures after it, up to the file's ``through``, are scored out of sample.
        budget: total model runs (default: the file's).
        base: use this base scenario instead of the file's (e.g. one fitted on less data).
        reported: reported figures (for tests; default: the file's ``data``).

    Raises:
        InputError: naming the file, line and field, for any problem.
    """
    path = Path(path)
    cfg, doc = read_calibration_file(path)
    try:
        data_end = parse_month(cfg.through)
    except ValueError as exc:
        raise InputError(Problem(str(exc), doc.where(("through",)), "through")) from None
    fit_end = data_end
    if through is not None:
        try:
            fit_end = parse_month(through)
        except ValueError as exc:
            raise InputError(f"--through {through}: {exc}") from None
        if fit_end > data_end:
            raise InputError(f"--through {through}: after the file's 'through' ({cfg.through}), the last month of data it may use")
    base_file = Path(base).resolve() if base is not None else (path.parent / cfg.base).resolve()
    if not base_file.is_file():
        where = doc.where(("base",)) if base is None else None
        raise InputError(Problem(f"base scenario '{base or cfg.base}' does not exist ({base_file})", where, "base"))
    scenario = load_scenario(base_file, {"end": format_month(data_end), "ensemble": None})
    if fit_end < scenario.start_index:
        raise InputError(f"--through {through}: before the scenario's start ({scenario.start})")
    params = resolve_parameters(cfg.parameters, doc, scenario)
    figures = reported if reported is not None else load_figures(cfg.data, path, doc)
    targets = select_targets(cfg, scenario, figures, fit_end, doc)
    if not any(t.in_sample for t in targets):
        raise InputError(Problem(f"no reported figures to fit through {format_month(fit_end)}", doc.where(("data",)), "data"))
    return Calibration(
        file=path, config=cfg, name=cfg.name or path.stem, base_file=base_file, scenario=scenario,
        parameters=params, targets=targets, fit_through=format_month(fit_end),
        budget=cfg.budget if budget is None else budget,
    )


# --------------------------------------------------------------- the rounds


def _round_dir(out: Path, k: int) -> Path:
    return out / f"round-{k:02d}"


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` (numpy values included) as JSON, whole: a temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _round_specs(cal: Calibration, k: int, values: np.ndarray, per_round: int, kernel: str) -> list[RunSpec]:
    r = cal.config.method.replications
    specs: list[RunSpec] = []
    for i, row in enumerate(values):
        over = {p.path: p.applied(v) for p, v in zip(cal.parameters, row, strict=True)}
        stream = 0 if cal.config.common_random_numbers else (k * per_round + i) * r
        specs += make_specs(cal.scenario, r, seed=cal.config.seed, scale=cal.config.scale, first_run_id=i * r,
                            overrides=over, point=i, first_stream=stream, kernel=kernel)
    return specs


def _design(cal: Calibration, values: np.ndarray) -> pd.DataFrame:
    cols: dict[str, Any] = {"point": np.arange(values.shape[0], dtype="int64")}
    for j, p in enumerate(cal.parameters):
        cols[f"param:{p.path}"] = np.array([p.applied(v) for v in values[:, j]], float)
    return pd.DataFrame(cols)


def _run_round(cal: Calibration, out: Path, k: int, values: np.ndarray, per_round: int, *, workers: int | None,
               executor: str, kernel: str, progress: bool) -> np.ndarray:
    """Run (or finish) round ``k``'s batch; returns the target values per set (sets x targets)."""
    from sim.runs.batch import run_batch

    rd = _round_dir(out, k)
    resume = (rd / store.MANIFEST).is_file()
    store.prepare_output(rd, resume=True)
    specs = _round_specs(cal, k, values, per_round, kernel)
    manifest = new_manifest(
        "calibration-round",
        label=f"{cal.name} round {k}",
        scenario_name=cal.scenario.name,
        scenario_hash=cal.scenario.hash(),
        scenario=cal.scenario.model_dump(mode="json"),
        seed=cal.config.seed,
        scale=cal.config.scale,
        replications=cal.config.method.replications,
        request={**cal.request(), "kind": "calibration-round", "round": k,
                 "proposals_hash": hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]},
    )  # fmt: skip
    design = _design(cal, values)
    store.write_design(rd, design)
    run_batch(specs, rd, manifest, workers=workers, executor=executor, resume=resume, progress=progress, design=design)
    return set_values(cal, rd, values.shape[0])


def set_values(cal: Calibration, rd: Path, n_sets: int) -> np.ndarray:
    """Mean target values per parameter set of a round folder (sets x targets; NaN for a set with a failed run)."""
    res = store.load_results(rd)
    per_run = target_values(res.sales, cal.targets, cal.config.data.market, cal.scenario.start_index, cal.scenario.n_months)
    runs = res.runs.set_index("run_id")
    vals = per_run.reindex(runs.index, fill_value=0.0).to_numpy()
    bad = (runs["status"] != "ok").to_numpy()
    point = runs["point"].to_numpy().astype(int)
    out = np.full((n_sets, len(cal.targets)), np.nan)
    for i in range(n_sets):
        sel = point == i
        if sel.any() and not bad[sel].any():
            out[i] = vals[sel].mean(axis=0)
    return out


@dataclass
class Outcome:
    """What :func:`calibrate` returns: the final population and every round's record."""

    population: Population
    rounds: list[dict[str, Any]]
    final_values: np.ndarray  # target values of the accepted sets (sets x targets)
    seconds: float
    runs: int


def calibrate(
    cal: Calibration, out: Path, *, workers: int | None = None, executor: str = "processes", kernel: str = "numba",
    resume: bool = False, progress: bool = True, log: Any = sys.stderr,
) -> Outcome:
    """Run ABC-SMC round by round into ``out``, resuming finished and half-finished rounds.

    ``kernel`` is the runs' choice kernel (:class:`sim.runs.run.RunSpec`).

    Returns:
        The accepted sets of all rounds (within the last tolerance) and the record of every round.
    """
    t0 = time.perf_counter()
    rounds, per_round = cal.plan()
    keep = math.ceil(cal.config.method.quantile * per_round)
    state_file = out / "calibration.json"
    request = cal.request()
    if resume and state_file.is_file():
        old = json.loads(state_file.read_text()).get("request", {})
        diffs = [f"{k}: stored {old.get(k)!r}, asked {v!r}" for k, v in request.items() if old.get(k) != v]
        if diffs:
            raise InputError(f"{out}: cannot resume: the folder holds a different calibration:\n  " + "\n  ".join(diffs))
    write_json(state_file, {"request": request, "file": str(cal.file), "rounds": rounds, "per_round": per_round})
    fit_idx = [i for i, t in enumerate(cal.targets) if t.in_sample]
    fit_targets = [cal.targets[i] for i in fit_idx]
    d = len(cal.parameters)
    all_values, all_dist = np.zeros((0, d)), np.zeros(0)
    all_tv = np.zeros((0, len(cal.targets)))
    proposals: list[Proposal] = []
    counts: list[int] = []
    records: list[dict[str, Any]] = []
    pop: Population | None = None
    for k in range(rounds):
        rd = _round_dir(out, k)
        rd.mkdir(parents=True, exist_ok=True)
        done = rd / "abc.json"
        if done.is_file():
            rec = json.loads(done.read_text())
            values = np.array(rec["proposals"], float)
            proposal = Proposal.from_json(rec["proposal"])
            dist = np.array([np.inf if x is None else x for x in rec["distances"]], float)
            tv = np.array([[np.nan if x is None else x for x in row] for row in rec["target_values"]], float)
            note = "stored"
        else:
            prop_file = rd / "proposals.json"
            if prop_file.is_file():
                stored = json.loads(prop_file.read_text())
                values, proposal = np.array(stored["values"], float), Proposal.from_json(stored["proposal"])
            else:
                rng = np.random.default_rng([cal.config.seed, k])
                if pop is None:
                    proposal = Proposal()
                    values = first_proposals(cal.parameters, per_round, rng)
                else:
                    proposal = Proposal(pop.values, pop.weights, kernel_covariance(cal.parameters, pop, cal.config.method.kernel_scale))
                    values = next_proposals(cal.parameters, proposal, per_round, rng)
                write_json(prop_file, {"round": k, "paths": [p.path for p in cal.parameters], "values": values,
                                        "proposal": proposal.as_json()})
            t_round = time.perf_counter()
            tv = _run_round(cal, out, k, values, per_round, workers=workers, executor=executor, kernel=kernel,
                            progress=progress)
            dist = np.full(values.shape[0], np.inf)
            ok = ~np.isnan(tv).any(axis=1)
            if not ok.any():
                errors = store.read_table(rd, "runs")["error"]
                last = str(errors.iloc[0]).strip().splitlines()[-1] if len(errors) else "?"
                raise RuntimeError(f"every run of round {k} failed, the first with: {last} (tracebacks in {rd}/runs)")
            dist[ok] = distances(tv[ok][:, fit_idx], fit_targets)
            rec = {
                "round": k, "paths": [p.path for p in cal.parameters], "proposals": values, "proposal": proposal.as_json(),
                "distances": [None if not np.isfinite(x) else float(x) for x in dist],
                "failed": int((~ok).sum()), "runs": int(values.shape[0] * cal.config.method.replications),
                "seconds": round(time.perf_counter() - t_round, 2),
                "target_values": [[None if np.isnan(x) else float(x) for x in row] for row in tv],
            }
            note = f"{rec['seconds']:.0f} s"
        all_values = np.vstack([all_values, values])
        all_dist = np.concatenate([all_dist, dist])
        all_tv = np.vstack([all_tv, tv])
        proposals.append(proposal)
        counts.append(values.shape[0])
        pop = population(cal.parameters, all_values, all_dist, proposals, counts, keep)
        finite = dist[np.isfinite(dist)]
        rec.update({"tolerance": pop.tolerance, "accepted": pop.index, "weights": pop.weights, "ess": pop.ess,
                    "best": float(finite.min()) if finite.size else None,
                    "median": float(np.median(finite)) if finite.size else None})
        if not done.is_file():
            write_json(done, rec)
        records.append(rec)
        best = f"{rec['best']:.4f}" if rec["best"] is not None else "-"
        print(f"round {k}: {values.shape[0]} sets, best distance {best}, tolerance {pop.tolerance:.4f}, "
              f"{pop.index.size} sets of {all_dist.size} accepted (ESS {pop.ess:.1f}), {note}", file=log)
    assert pop is not None
    total_runs = sum(int(r["runs"]) for r in records)
    return Outcome(pop, records, all_tv[pop.index], time.perf_counter() - t0, total_runs)

