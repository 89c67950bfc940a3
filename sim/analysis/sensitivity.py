"""Global sensitivity of the headline outputs: Sobol indices (SALib) over a forecast scenario.

``sim sensitivity CALIB.yaml`` varies the free parameters of a calibration file (over their
priors) and its scenario ``levers`` (uniform over their bounds) in a Saltelli design
(``N x (factors + 2)`` points, SALib's scrambled Sobol sampler) on a forecast scenario (the
calibration's base, run to its end, or ``--scenario``), runs every point with the same seeds
(common random numbers: a factor without effect gets indices of exactly zero) through the
batch executors, and estimates first-order (S1) and total (ST) Sobol indices with 95%
bootstrap confidence intervals (Saltelli et al. 2010 estimators, ``SALib.analyze.sobol``).

Outputs, per design point (the mean over its replicates):

- ``<brand> deliveries <year>``: every year of the scenario's first target window (AITO 2026
  and 2027 in the baseline), all markets;
- ``P(<target>)``: the share of the point's runs that reach the target (0 or 1 with one replicate);
- ``share <segment>``: the segment's share of all deliveries in the target window.

A point's scenario drops any ``ensemble``: the factors are the parameters. The results folder
holds the runs (``runs/``, ``sales/``), ``design.parquet`` and ``sensitivity.json``; ``--resume``
continues a killed study. With a small ``N`` the intervals are wide: they are printed, not hidden.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.calibration_file import FreeParameter, ParameterPrior, read_calibration_file, resolve_parameters
from sim.analysis.targets import target_outcomes
from sim.runs import store
from sim.runs.batch import MAX_RUNS
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec, make_specs
from sim.scenario.load import load_scenario
from sim.scenario.months import parse_month
from sim.scenario.paths import overlapping_paths
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

#: Confidence level of the bootstrap intervals.
CONF_LEVEL = 0.95
#: Bootstrap resamples of SALib's estimator.
RESAMPLES = 200
#: Segments with a smaller mean share of deliveries are not reported.
MIN_SEGMENT_SHARE = 0.01


@dataclass(frozen=True)
class Factor:
    """An input of the study: a calibration parameter or a lever, over its prior (levers: uniform by default)."""

    parameter: FreeParameter
    kind: str  # "parameter" or "lever"

    @property
    def path(self) -> str:
        return self.parameter.path

    def value(self, u: float) -> float:
        """The value the scenario receives at unit coordinate ``u``."""
        p = self.parameter
        return p.applied(float(p.from_quantile(np.array([u]))[0]))


@dataclass
class Study:
    """A sensitivity study ready to run."""

    calibration: Path
    scenario_file: Path
    scenario: Scenario
    factors: list[Factor]
    unit: np.ndarray  # points x factors, in [0, 1]
    n: int
    replications: int
    scale: float
    seed: int

    @property
    def points(self) -> int:
        return int(self.unit.shape[0])

    def overrides(self, i: int) -> dict[str, Any]:
        return {f.path: f.value(float(u)) for f, u in zip(self.factors, self.unit[i], strict=True)}

    def specs(self, kernel: str = "numba") -> list[RunSpec]:
        """Run ``point x replications + r`` is replicate ``r`` of the point, on the same seed at every point
        (``kernel``: the runs' choice kernel)."""
        out: list[RunSpec] = []
        for i in range(self.points):
            out += make_specs(self.scenario, self.replications, seed=self.seed, scale=self.scale,
                              first_run_id=i * self.replications, overrides=self.overrides(i), point=i, kernel=kernel)
        return out

    def design_table(self) -> pd.DataFrame:
        cols: dict[str, Any] = {"point": np.arange(self.points, dtype="int64")}
        for j, f in enumerate(self.factors):
            cols[f"param:{f.path}"] = np.array([f.value(float(u)) for u in self.unit[:, j]], float)
        for j, f in enumerate(self.factors):
            cols[f"u:{f.path}"] = self.unit[:, j].astype("float64")
        return pd.DataFrame(cols)

    def problem(self) -> dict[str, Any]:
        return {"num_vars": len(self.factors), "names": [f.path for f in self.factors], "bounds": [[0.0, 1.0]] * len(self.factors)}

    def request(self) -> dict[str, Any]:
        return {
            "kind": "sensitivity",
            "scenario_hash": self.scenario.hash(),
            "factors": [[f.path, f.kind, f.parameter.low, f.parameter.high, f.parameter.prior] for f in self.factors],
            "n": self.n,
            "replications": self.replications,
            "scale": self.scale,
            "seed": self.seed,
            "design_hash": hashlib.sha256(np.ascontiguousarray(self.unit).tobytes()).hexdigest()[:16],
        }


def load_study(
    calibration: str | Path, *, scenario: str | Path | None = None, n: int = 8, replications: int = 1,
    scale: float = 200.0, seed: int | None = None, parameters: bool = True, levers: bool = True,
    extra_levers: list[str] | None = None,
) -> Study:
    """Build the design of a study.

    Args:
        calibration: a calibration file (its ``parameters`` and ``levers``).
        scenario: the scenario the points vary (default: the calibration's base, to its end).
        n: Saltelli base sample size (a power of 2); points = ``n x (factors + 2)``.
        extra_levers: more levers, ``"PATH=LOW:HIGH"``.

    Raises:
        InputError: for a bad file, path or option.
    """
    try:
        from SALib.sample import sobol as sobol_sample
    except ImportError:
        raise InputError("sim sensitivity needs SALib: pip install 'sim[sweeps]'") from None
    if n < 2 or n & (n - 1):
        raise InputError(f"--n: must be a power of 2 (at least 2), got {n}")
    path = Path(calibration)
    cfg, doc = read_calibration_file(path)
    scenario_file = Path(scenario) if scenario is not None else (path.parent / cfg.base).resolve()
    sc = load_scenario(scenario_file, {"ensemble": None})
    factors: list[Factor] = []
    if parameters:
        factors += [Factor(p, "parameter") for p in resolve_parameters(cfg.parameters, doc, sc)]
    lever_specs = list(cfg.levers) if levers else []
    for text in extra_levers or []:
        lever_specs.append(_parse_lever(text))
    factors += [Factor(p, "lever") for p in resolve_parameters(lever_specs, doc, sc, key="levers")]
    for j, message in overlapping_paths(sc.model_dump(mode="json"), [f.path for f in factors]):
        raise InputError(f"factor '{factors[j].path}' appears twice: {message} (as a parameter and as a lever?)")
    if len(factors) < 2:
        raise InputError("a Sobol study needs at least two factors (parameters and levers together)")
    runs = n * (len(factors) + 2) * replications
    if runs > MAX_RUNS:
        raise InputError(f"--n {n} x ({len(factors)} factors + 2) x {replications} replicate(s) = {runs:,} runs; "
                         f"the limit is {MAX_RUNS:,} runs in one batch")  # fmt: skip
    if not sc.targets:
        raise InputError(f"{scenario_file}: the scenario has no target, so there is no headline output")
    problem = {"num_vars": len(factors), "names": [f.path for f in factors], "bounds": [[0.0, 1.0]] * len(factors)}
    unit = np.asarray(sobol_sample.sample(problem, n, calc_second_order=False, scramble=True,
                                          seed=cfg.seed if seed is None else seed), float)
    return Study(path, scenario_file, sc, factors, unit, n, replications, scale, cfg.seed if seed is None else seed)


def _parse_lever(text: str) -> ParameterPrior:
    path, eq, bounds = text.rpartition("=")
    lo, colon, hi = bounds.partition(":")
    try:
        if not eq or not colon:
            raise ValueError
        return ParameterPrior(path=path.strip(), low=float(lo), high=float(hi))
    except ValueError:
        raise InputError(f"--lever {text!r}: expected PATH=LOW:HIGH, e.g. 'products.AITO M8.capacity.max=15000:25000'") from None


# -------------------------------------------------------------------- outputs


def headline_outputs(sales: pd.DataFrame, runs: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Headline outputs per point (mean over its runs): the target brand's deliveries per year of
    the target window, the probability of the target, and segment shares in the window."""
    t = scenario.targets[0]
    lo, hi = parse_month(t.start), parse_month(t.by)
    years = sorted({str(m // 12) for m in range(lo, hi + 1)})
    point = runs.set_index("run_id")["point"]
    ok = runs.loc[runs["status"] == "ok", "run_id"]
    window = sales[sales["run_id"].isin(ok) & sales["month"].map(lambda m: lo <= parse_month(m) <= hi)]
    per_run = pd.DataFrame(index=pd.Index(sorted(ok), name="run_id"))
    brand = window[window["brand"] == t.brand]
    by_year = brand.assign(year=brand["month"].str[:4]).groupby(["run_id", "year"])["units"].sum().unstack(fill_value=0)
    for y in years:
        per_run[f"{t.brand} deliveries {y}"] = by_year[y] if y in by_year.columns else 0.0
    oc = target_outcomes(sales[sales["run_id"].isin(ok)], t.brand, t.units, t.start, t.by).set_index("run_id")
    per_run[f"P({t.name})"] = oc["reached"].astype(float)
    seg = window.groupby(["run_id", "segment"])["units"].sum().unstack(fill_value=0)
    shares = seg.div(seg.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    for s in [x.name for x in scenario.segments]:
        if s in shares.columns and shares[s].mean() >= MIN_SEGMENT_SHARE:
            per_run[f"share {s}"] = shares[s]
    per_run = per_run.fillna(0.0)
    return per_run.groupby(point.reindex(per_run.index).to_numpy()).mean()


def sobol_indices(study: Study, outputs: pd.DataFrame) -> list[dict[str, Any]]:
    """S1 and ST with confidence half-widths per output and factor; constant outputs are marked."""
    from SALib.analyze import sobol

    problem = study.problem()
    rows = []
    for name in outputs.columns:
        y = outputs[name].reindex(range(study.points)).to_numpy(float)
        entry: dict[str, Any] = {"output": name, "mean": float(np.nanmean(y)), "sd": float(np.nanstd(y))}
        if np.isnan(y).any():
            entry["note"] = f"{int(np.isnan(y).sum())} point(s) without a result (failed runs): no indices"
        elif np.ptp(y) == 0:
            entry["note"] = "constant over the design: no variance to decompose"
        else:
            res = sobol.analyze(problem, y, calc_second_order=False, num_resamples=RESAMPLES, conf_level=CONF_LEVEL,
                                print_to_console=False, seed=study.seed)
            entry["factors"] = [
                {"factor": f.path, "kind": f.kind, "S1": float(res["S1"][j]), "S1_conf": float(res["S1_conf"][j]),
                 "ST": float(res["ST"][j]), "ST_conf": float(res["ST_conf"][j])}
                for j, f in enumerate(study.factors)
            ]
        rows.append(entry)
    return rows


def run_study(study: Study, out: Path, *, workers: int | None, executor: str, resume: bool, progress: bool,
              kernel: str = "numba") -> dict[str, Any]:
    """Run the study's points into ``out`` and return the indices (also written to ``sensitivity.json``)."""
    from sim.runs.batch import run_batch

    manifest = new_manifest(
        "sensitivity",
        label=f"sensitivity of {study.scenario.name}",
        calibration_file=str(study.calibration),
        scenario_name=study.scenario.name,
        scenario_file=str(study.scenario_file),
        scenario_hash=study.scenario.hash(),
        scenario=study.scenario.model_dump(mode="json"),
        seed=study.seed,
        replications=study.replications,
        scale=study.scale,
        design={"type": "saltelli", "n": study.n, "points": study.points, "file": store.DESIGN,
                "parameters": [{"path": f.path, "kind": f.kind} for f in study.factors]},
        request=study.request(),
    )  # fmt: skip
    design = study.design_table()
    if resume:
        from sim.runs.batch import check_resumable

        check_resumable(out, manifest)
    store.write_design(out, design)
    report = run_batch(study.specs(kernel), out, manifest, workers=workers, executor=executor, resume=resume,
                       progress=progress, design=design)
    res = store.load_results(out)
    outputs = headline_outputs(res.sales, res.runs, study.scenario)
    result = {
        "calibration": str(study.calibration),
        "scenario": str(study.scenario_file),
        "n": study.n,
        "points": study.points,
        "replications": study.replications,
        "runs": report.asked,
        "failed": report.failed,
        "scale": study.scale,
        "seed": study.seed,
        "seconds": round(report.seconds, 1),
        "conf_level": CONF_LEVEL,
        "factors": [{"path": f.path, "kind": f.kind, "prior": f.parameter.prior if f.kind == "parameter" else "uniform",
                     "low": f.parameter.low, "high": f.parameter.high, "offset": f.parameter.offset,
                     "base_value": f.parameter.base_value} for f in study.factors],
        "outputs": sobol_indices(study, outputs),
    }
    (out / "sensitivity.json").write_text(json.dumps(result, indent=1))
    return result


def format_table(result: dict[str, Any]) -> str:
    """The indices as a text table, one block per output, factors by total index."""
    lines = [f"Sobol indices ({100 * result['conf_level']:.0f}% intervals), N = {result['n']}, {result['points']} points x "
             f"{result['replications']} replicate(s) at scale {result['scale']:g}, {result['seconds']:.0f} s"]
    for o in result["outputs"]:
        lines.append(f"{o['output']}: mean {o['mean']:,.4g}, sd {o['sd']:,.3g} over the design")
        if "factors" not in o:
            lines.append(f"  {o['note']}")
            continue
        lines.append(f"  {'factor':<48} {'kind':<9} {'S1':>7} {'+-':>6} {'ST':>7} {'+-':>6}")
        for f in sorted(o["factors"], key=lambda f: -f["ST"]):
            lines.append(f"  {f['factor']:<48} {f['kind']:<9} {f['S1']:>7.3f} {f['S1_conf']:>6.3f} {f['ST']:>7.3f} {f['ST_conf']:>6.3f}")
    return "\n".join(lines)
