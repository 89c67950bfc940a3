"""Ensemble calibration: approximate Bayesian computation with sequential Monte Carlo (ABC-SMC).

``sim calibrate CALIB.yaml`` fits the free parameters of a calibration file to reported
volumes and returns an *ensemble* of parameter sets with weights, not one point. A
calibration file (YAML)::

    name: calibration
    base: baseline.yaml               # relative to this file
    through: 2024-12                  # last month of data used (runs end here too)
    scale: 100                        # real buyers per buyer agent in the calibration runs
    seed: 1
    parameters:
      - {path: buyers.price_sensitivity, low: 0.4, high: 1.2}
      - {path: buyers.awareness.innovation, low: 0.005, high: 0.04, prior: loguniform}
      - {path: brands.AITO.appeal, offset: true, low: -0.6, high: 0.6, prior: normal, mean: 0, sd: 0.3}
    data:                             # the series fitted to (default: every reported brand and product)
      brands: [AITO, Li Auto, Tesla]
    method: {per_round: 40, quantile: 0.5, replications: 1}

A parameter is a path in the scenario (as ``sim run --set`` takes it, :mod:`sim.scenario.paths`) with bounds and a
prior (``uniform``, ``loguniform`` or a ``normal`` truncated to the bounds); ``offset: true``
makes the parameter a change added to the base scenario's value.

**Loss.** Targets are the reported figures through the cut-off, monthly, quarterly, annual
and cumulative (period sums), built by :func:`sim.analysis.fit_appeals.volume_targets` (conflicting
sources averaged by confidence; months without a figure are simply not targets). The
distance of a parameter set is the weighted root mean square log error
``sqrt(sum_t w_t r_t^2 / sum_t w_t)`` with ``r_t = log(max(simulated_t, 1) / reported_t)``
and ``w_t`` = confidence weight x frequency weight x brand weight.

**Method**: ABC with sequential Monte Carlo (Beaumont et al. 2009), recycling every run by
adaptive multiple importance sampling (Cornuet et al. 2012). Round 0 draws ``per_round``
parameter sets from the prior by a Latin hypercube in prior-quantile space. After each round
the tolerance is the distance of the ``k``-th best set run so far (``k = quantile x per_round``),
so it can only shrink; the population is every set within it, from any round, with importance
weight ``prior(z) / sum_r (n_r / N) q_r(z)`` (``q_r`` the density round ``r`` drew from). The
next round resamples the population by weight and perturbs in the unbounded coordinate
``z = logit((v - low) / (high - low))`` (``v`` the value, or its log for a log-uniform prior)
with a Gaussian kernel of ``kernel_scale`` x the population's weighted covariance, so that
proposals respect the bounds exactly. The last population is the ensemble. ``--budget N`` is
the total number of model runs: ``rounds x per_round x replications``.

Every round is a batch of runs through :func:`sim.runs.batch.run_batch` (any executor), stored
in ``DIR/round-NN`` with its proposals (``proposals.json``) written before it starts and its
outcome (``abc.json``) after, so ``--resume`` continues a killed calibration where it stopped.
Outputs: ``DIR/calibrated.yaml`` (an overlay that extends the base and holds the ensemble,
see :class:`sim.scenario.schema.Ensemble`) and ``DIR/fit.json`` (in-sample and, with ``--through``
before the file's ``through``, out-of-sample metrics per series).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import stats
from scipy.special import expit, logit, logsumexp

from sim.analysis.fit_appeals import CONFIDENCE_WEIGHT, FREQUENCY_WEIGHT, VolumeTarget, volume_targets
from sim.runs import store
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec, make_specs
from sim.runs.sweep import point_scenario
from sim.scenario.errors import validate
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.paths import PathError, canonical_path, parse_path, value_at
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path, load_yaml, read_bounded

#: A value this close to a bound is moved inside it before the logit.
EDGE = 1e-9
#: Ridge added to the kernel covariance (in z units squared) so that it stays positive definite.
KERNEL_RIDGE = 1e-4
#: Fewest sets a round may accept.
MIN_ACCEPTED = 3
#: Band of the reported-value coverage check (5% and 95% of the ensemble's weighted values).
BAND = (0.05, 0.95)
#: What a calibration writes in its folder (what ``--force`` replaces): the rounds, its state and outputs.
OUTPUTS = ("round-*", "calibration.json", "calibrated.yaml", "fit.json")


# ----------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterPrior(_Strict):
    """One free parameter as written in the calibration file."""

    path: str = Field(min_length=1, description="Path in the scenario, e.g. 'buyers.price_sensitivity'.")
    low: float = Field(description="Lower bound (of the offset when offset is true).")
    high: float = Field(description="Upper bound.")
    prior: Literal["uniform", "loguniform", "normal"] = "uniform"
    mean: float | None = Field(None, description="normal: mean (default: the middle of the bounds).")
    sd: float | None = Field(None, gt=0, description="normal: standard deviation (default: a quarter of the range).")
    offset: bool = Field(False, description="The parameter is added to the base scenario's value.")
    note: str = ""


class DataSpec(_Strict):
    """Which reported series the loss uses, and their weights."""

    figures: str | None = Field(None, description="Reported figures in the format of scenarios/reported/figures.csv "
                                "(default: that file), relative to the calibration file.")
    table: str | None = Field(None, description="Or a tidy CSV: brand, model, start, end, frequency, value, confidence.")
    brands: list[str] | None = Field(None, description="Fit only these brands' series (default: every brand with figures).")
    products: bool = Field(True, description="Also fit the product-level series.")
    market: str = Field("CN", description="Market whose simulated deliveries are compared.")
    frequency_weight: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict(FREQUENCY_WEIGHT),
        description="Weight of a figure by its frequency, in place of sim.analysis.fit_appeals.FREQUENCY_WEIGHT's.",
    )
    brand_weight: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="Multiplies the weight of a brand's figures."
    )

    @field_validator("frequency_weight")
    @classmethod
    def _frequencies(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(FREQUENCY_WEIGHT))
        if bad:
            raise ValueError(f"unknown frequency {bad[0]!r} (frequencies: {', '.join(FREQUENCY_WEIGHT)})")
        return v


class MethodSpec(_Strict):
    """ABC-SMC settings."""

    per_round: int = Field(40, ge=4, description="Parameter sets proposed per round.")
    quantile: float = Field(0.5, gt=0.0, lt=1.0, description="Share of a round's sets accepted (sets the tolerance).")
    replications: int = Field(1, ge=1, description="Runs per parameter set (their mean is compared).")
    kernel_scale: float = Field(
        1.0, gt=0.0, description="Perturbation covariance = this x the population's (2 is Beaumont et al.'s choice; "
        "1 concentrates faster on small budgets)."
    )


class CalibrationFile(_Strict):
    """A calibration file, validated. Build with :func:`load_calibration`."""

    name: str | None = Field(None, description="Default: the file's stem.")
    description: str = ""
    base: str = Field(description="Base scenario file, relative to the calibration file.")
    through: str = Field("2024-12", description="Last month of data used; the runs end here.")
    seed: int = Field(1, ge=0, description="Root seed of the runs and of the sampler.")
    scale: float = Field(100.0, gt=0, description="Real buyers per buyer agent in the calibration runs.")
    budget: int = Field(400, ge=8, description="Model runs in total (--budget overrides).")
    common_random_numbers: bool = Field(
        False, description="Every set runs on the same seeds (false: fresh streams, the ABC likelihood includes the noise)."
    )
    parameters: list[ParameterPrior] = Field(min_length=1)
    levers: list[ParameterPrior] = Field(
        default_factory=list, description="Scenario levers (forecast inputs) for sim sensitivity; not calibrated."
    )
    data: DataSpec = DataSpec()
    method: MethodSpec = MethodSpec()


@dataclass(frozen=True)
class FreeParameter:
    """A free parameter, resolved against the base scenario.

    ``value`` is what the sampler moves (the offset for an offset parameter); ``applied``
    is what the scenario receives.
    """

    path: str
    prior: str
    low: float
    high: float
    mean: float | None
    sd: float | None
    offset: bool
    base_value: float

    def applied(self, value: float) -> float:
        return float(self.base_value + value) if self.offset else float(value)

    def _v(self, x: np.ndarray) -> np.ndarray:
        return np.log(x) if self.prior == "loguniform" else x

    def _v_bounds(self) -> tuple[float, float]:
        if self.prior == "loguniform":
            return math.log(self.low), math.log(self.high)
        return self.low, self.high

    def from_quantile(self, u: np.ndarray) -> np.ndarray:
        """Values at prior quantiles ``u`` in [0, 1] (for the Latin hypercube of round 0)."""
        u = np.clip(u, EDGE, 1 - EDGE)
        if self.prior == "normal":
            assert self.mean is not None and self.sd is not None
            a, b = (self.low - self.mean) / self.sd, (self.high - self.mean) / self.sd
            return np.asarray(stats.truncnorm.ppf(u, a, b, loc=self.mean, scale=self.sd), float)
        lo, hi = self._v_bounds()
        v = lo + u * (hi - lo)
        return np.exp(v) if self.prior == "loguniform" else v

    def to_z(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self._v_bounds()
        u = (self._v(np.asarray(x, float)) - lo) / (hi - lo)
        return np.asarray(logit(np.clip(u, EDGE, 1 - EDGE)), float)

    def from_z(self, z: np.ndarray) -> np.ndarray:
        lo, hi = self._v_bounds()
        v = lo + expit(z) * (hi - lo)
        x = np.exp(v) if self.prior == "loguniform" else v
        return np.clip(x, self.low, self.high)

    def log_prior_z(self, z: np.ndarray) -> np.ndarray:
        """Log prior density of the z coordinate (normalised: it is mixed with the kernels' densities).

        Uniform on the value (or on its log) gives the logistic density ``u (1 - u)``; a
        truncated normal multiplies it by its density at the value times ``high - low``.
        """
        u = expit(z)
        out = np.log(np.clip(u * (1 - u), 1e-300, None))
        if self.prior == "normal":
            assert self.mean is not None and self.sd is not None
            a, b = (self.low - self.mean) / self.sd, (self.high - self.mean) / self.sd
            mass = float(stats.norm.cdf(b) - stats.norm.cdf(a))
            x = (self.from_z(z) - self.mean) / self.sd
            out = out + stats.norm.logpdf(x) - math.log(self.sd * mass) + math.log(self.high - self.low)
        return np.asarray(out, float)


@dataclass(frozen=True)
class FitTarget:
    """A reported volume in the loss (or held out): a :class:`VolumeTarget` with its frequency and final weight."""

    volume: VolumeTarget
    frequency: str
    weight: float
    in_sample: bool

    @property
    def key(self) -> str:
        return self.volume.key

    @property
    def series(self) -> str:
        return self.volume.model or self.volume.brand


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
    figures = reported if reported is not None else _load_figures(cfg.data, path, doc)
    targets = _targets(cfg, scenario, figures, fit_end, doc)
    if not any(t.in_sample for t in targets):
        raise InputError(Problem(f"no reported figures to fit through {format_month(fit_end)}", doc.where(("data",)), "data"))
    return Calibration(
        file=path, config=cfg, name=cfg.name or path.stem, base_file=base_file, scenario=scenario,
        parameters=params, targets=targets, fit_through=format_month(fit_end),
        budget=cfg.budget if budget is None else budget,
    )


def read_calibration_file(path: Path) -> tuple[CalibrationFile, Document]:
    """The calibration file validated, with its document (for the lines of later errors)."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(Problem("a calibration file must be a mapping of keys (base, parameters, ...)", Location(str(path), 1)))
    return validate(CalibrationFile, doc), doc


#: Least share of a normal prior's mass inside its bounds (below it, the truncated prior cannot be drawn from).
MIN_PRIOR_MASS = 1e-9


def prior_mass(mean: float, sd: float, low: float, high: float) -> float:
    """Share of a normal prior's mass inside ``[low, high]`` (0 where the numbers are not finite)."""
    if not all(math.isfinite(x) for x in (mean, sd, low, high)) or sd <= 0:
        return 0.0
    return float(stats.norm.cdf((high - mean) / sd) - stats.norm.cdf((low - mean) / sd))


def resolve_parameters(
    priors: list[ParameterPrior], doc: Document, scenario: Scenario, key: str = "parameters"
) -> list[FreeParameter]:
    """The file's parameters (or levers, ``key``) checked against ``scenario``: each path names a
    number there, the bounds are ordered and both give a valid scenario."""
    data = scenario.model_dump(mode="json")
    problems: list[Problem] = []
    out: list[FreeParameter] = []
    seen: dict[str, str] = {}  # canonical path -> the spelling met first
    for j, p in enumerate(priors):
        where: Path_ = (key, j)

        def bad(msg: str, sub: str = "path", where: Path_ = where) -> None:
            problems.append(Problem(msg, doc.where(where + (sub,)), format_path(where + (sub,))))

        try:
            base_value = value_at(data, p.path)
            canonical = canonical_path(data, p.path)  # two spellings of one value are one parameter
        except PathError as exc:
            bad(f"not in the base scenario: {exc.reason}")
            continue
        if canonical in seen:
            first = seen[canonical]
            bad(f"parameter '{p.path}' appears twice" + (f" (as '{first}', both {canonical})" if first != p.path else ""))
            continue
        seen[canonical] = p.path
        if canonical in ("scale", "seed"):
            bad(f"'{canonical}' is how the runs are drawn, not a parameter of the market; it cannot be fitted")
            continue
        if not isinstance(base_value, (int, float)) or isinstance(base_value, bool):
            bad(f"must name a number in the scenario, found {base_value!r}")
            continue
        if not (math.isfinite(p.low) and math.isfinite(p.high) and p.low < p.high):
            bad(f"low ({p.low}) must be below high ({p.high})", "high")
            continue
        if p.prior == "loguniform" and p.low <= 0:
            bad("a log-uniform prior needs low > 0", "low")
            continue
        if p.prior != "normal" and (p.mean is not None or p.sd is not None):
            bad("'mean' and 'sd' are for a normal prior", "prior")
            continue
        mean = sd = None
        if p.prior == "normal":
            mean = (p.low + p.high) / 2 if p.mean is None else p.mean
            sd = (p.high - p.low) / 4 if p.sd is None else p.sd
            mass = prior_mass(mean, sd, p.low, p.high)
            if not mass > MIN_PRIOR_MASS:
                bad(f"the normal prior (mean {mean:g}, sd {sd:g}) has {mass:.2g} of its mass inside [{p.low:g}, {p.high:g}]: "
                    "no set could be drawn; move the mean or widen the sd or the bounds", "mean" if p.mean is not None else "sd")
                continue
        fp = FreeParameter(p.path, p.prior, p.low, p.high, mean, sd, p.offset, float(base_value))
        for bound in (p.low, p.high):  # every value inside the bounds must give a valid scenario
            try:
                point_scenario(scenario, {p.path: fp.applied(bound)})
            except InputError as exc:
                msg = str(exc.problems[0]).split(": ", 1)[-1].replace("--set ", "")
                bad(f"the bound {bound:g} gives an invalid scenario: {msg}", "low" if bound == p.low else "high")
                break
        else:
            out.append(fp)
    if problems:
        raise InputError(problems)
    return out


# ------------------------------------------------------------------ targets


#: Columns of a tidy targets table (``data.table``).
TABLE_COLUMNS = ("brand", "model", "start", "end", "frequency", "value", "confidence")


class _Figures:
    """A stand-in for :class:`sim.analysis.reported.ReportedFigures` (``.figures``) built from a tidy table."""

    def __init__(self, figures: pd.DataFrame):
        self.figures = figures


def _load_figures(spec: DataSpec, path: Path, doc: Document) -> Any:
    from sim.analysis.reported import load_reported

    if spec.figures is not None and spec.table is not None:
        raise InputError(Problem("give 'figures' or 'table', not both", doc.where(("data",)), "data"))
    if spec.table is None:
        file = (path.parent / spec.figures).resolve() if spec.figures else None
        if file is not None and not file.is_file():
            raise InputError(Problem(f"'{spec.figures}' does not exist ({file})", doc.where(("data", "figures")), "data.figures"))
        try:
            return load_reported(file)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return read_table_file((path.parent / spec.table).resolve(), doc.where(("data", "table")))


#: Largest tidy targets table read, bytes.
MAX_TABLE_BYTES = 20_000_000


def read_table_file(file: Path, where: Location | None = None) -> _Figures:
    """Read a tidy targets CSV (:data:`TABLE_COLUMNS`; ``model`` may be empty for a brand total)."""
    if not os.path.lexists(file):
        raise InputError(Problem(f"'{file}' does not exist", where, "data.table"))
    raw = read_bounded(file, MAX_TABLE_BYTES)  # a regular file (not a FIFO or a device), bounded
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem("not UTF-8 text", Location(str(file), raw[: exc.start].count(b"\n") + 1))) from None
    rows, problems = [], []
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TABLE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{file}:1: missing column(s) {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            try:
                start, end = parse_month(row["start"]), parse_month(row["end"])
                if end < start:
                    raise ValueError(f"end {row['end']} is before start {row['start']}")
                if row["frequency"] not in FREQUENCY_WEIGHT:
                    raise ValueError(f"frequency must be one of {', '.join(FREQUENCY_WEIGHT)}, got {row['frequency']!r}")
                if row["confidence"] not in CONFIDENCE_WEIGHT:
                    raise ValueError(f"confidence must be one of {', '.join(CONFIDENCE_WEIGHT)}, got {row['confidence']!r}")
                value = float(row["value"])
                if not value > 0:
                    raise ValueError(f"value must be > 0, got {row['value']!r}")
            except ValueError as exc:
                problems.append(Problem(str(exc), Location(str(file), line)))
                continue
            rows.append({
                "line": line, "brand": row["brand"], "model": row["model"] or None, "start": format_month(start),
                "end": format_month(end), "frequency": row["frequency"], "value": value,
                "confidence": row["confidence"], "measure": "deliveries", "basis": "", "market": "CN",
            })
    if problems:
        raise InputError(problems)
    return _Figures(pd.DataFrame(rows, columns=["line", *TABLE_COLUMNS, "measure", "basis", "market"]))


def _frequency(t: VolumeTarget, figures: pd.DataFrame) -> str:
    """The frequency of a target's figures (its first line), or as its period suggests."""
    line = int(t.lines.split(",")[0])
    rows = figures[(figures["line"] == line) & (figures["brand"] == t.brand)]
    rows = rows[rows["model"] == t.model] if t.model else rows[rows["model"].isna()]
    if len(rows) and rows["frequency"].iloc[0] in FREQUENCY_WEIGHT:
        return str(rows["frequency"].iloc[0])
    s, e = parse_month(t.start), parse_month(t.end)
    if s == e:
        return "monthly"
    if e - s == 2 and s % 3 == 0:
        return "quarterly"
    if e - s == 11 and s % 12 == 0:
        return "annual"
    return "cumulative"


def _targets(cfg: CalibrationFile, scenario: Scenario, figures: Any, fit_end: int, doc: Document) -> list[FitTarget]:
    spec = cfg.data
    brands = {b.name for b in scenario.brands}
    for k, b in enumerate(spec.brands or []):
        if b not in brands:
            raise InputError(Problem(f"unknown brand '{b}'", doc.where(("data", "brands", k)), f"data.brands[{k}]"))
    for b in spec.brand_weight:
        if b not in brands:
            raise InputError(Problem(f"unknown brand '{b}'", doc.where(("data", "brand_weight", b)), f"data.brand_weight.{b}"))
    out = []
    for t in volume_targets(scenario, scenario.end, figures):
        if (spec.brands is not None and t.brand not in spec.brands) or (t.model and not spec.products):
            continue
        freq = _frequency(t, figures.figures)
        # The appeal fit's weight (confidence x frequency, series balanced), re-weighted by this file.
        ratio = spec.frequency_weight.get(freq, FREQUENCY_WEIGHT[freq]) / FREQUENCY_WEIGHT[freq]
        weight = t.weight * ratio * spec.brand_weight.get(t.brand, 1.0)
        if weight > 0:
            out.append(FitTarget(t, freq, weight, parse_month(t.end) <= fit_end))
    return out


def target_values(sales: pd.DataFrame, targets: list[FitTarget], market: str, start_index: int, n_months: int) -> pd.DataFrame:
    """Simulated units of every target per run: rows run_id, columns target keys (0 where nothing was sold).

    A target's value is its brand's (or product's) deliveries in ``market`` summed over its period.
    """
    runs = np.sort(sales["run_id"].unique()) if len(sales) else np.array([], int)
    out = np.zeros((runs.size, len(targets)))
    if runs.size and targets:
        s = sales[sales["market"] == market]
        months = {format_month(start_index + i): i for i in range(n_months)}
        mi = s["month"].map(months).to_numpy()
        ok = ~pd.isna(mi)
        s, mi = s[ok], mi[ok].astype(int)
        ri = np.searchsorted(runs, s["run_id"].to_numpy())
        units = s["units"].to_numpy(float)
        for kind in ("brand", "model"):
            names = sorted({t.volume.model or t.volume.brand for t in targets if (t.volume.model is None) == (kind == "brand")})
            if not names:
                continue
            index = {n: i for i, n in enumerate(names)}
            ki = s[kind].map(index).to_numpy()
            keep = ~pd.isna(ki)
            cube = np.zeros((runs.size, len(names), n_months + 1))
            np.add.at(cube, (ri[keep], ki[keep].astype(int), mi[keep] + 1), units[keep])
            cum = np.cumsum(cube, axis=2)
            for j, t in enumerate(targets):
                name = t.volume.brand if t.volume.model is None else t.volume.model
                if (t.volume.model is None) != (kind == "brand"):
                    continue
                a, b = parse_month(t.volume.start) - start_index, parse_month(t.volume.end) - start_index
                out[:, j] = cum[:, index[name], b + 1] - cum[:, index[name], a]
    return pd.DataFrame(out, index=pd.Index(runs, name="run_id"), columns=[t.key for t in targets])


def distances(values: np.ndarray, targets: list[FitTarget]) -> np.ndarray:
    """Weighted RMS log error of each row of ``values`` (sets x targets) against the reported values."""
    reported = np.array([t.volume.value for t in targets])
    w = np.array([t.weight for t in targets])
    r = np.log(np.maximum(values, 1.0) / reported)
    return np.asarray(np.sqrt((r**2 @ w) / w.sum()), float)


# --------------------------------------------------------------- ABC-SMC core


@dataclass
class Population:
    """Accepted parameter sets: values (sets x parameters), normalised weights, distances, the tolerance."""

    values: np.ndarray
    weights: np.ndarray
    distances: np.ndarray
    tolerance: float
    index: np.ndarray  # position of each set among all sets run so far

    @property
    def ess(self) -> float:
        """Effective sample size of the weights."""
        return float(1.0 / np.sum(self.weights**2)) if self.weights.size else 0.0


@dataclass(frozen=True)
class Proposal:
    """How a round drew its sets: from the prior (``centres`` None) or from a Gaussian kernel
    mixture in z around the previous population (``centres`` its values, ``weights`` its weights)."""

    centres: np.ndarray | None = None
    weights: np.ndarray | None = None
    cov: np.ndarray | None = None

    def as_json(self) -> dict[str, Any] | None:
        return None if self.centres is None else {"centres": self.centres, "weights": self.weights, "cov": self.cov}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Proposal:
        if d is None:
            return cls()
        return cls(np.array(d["centres"], float), np.array(d["weights"], float), np.array(d["cov"], float))


def to_z(params: list[FreeParameter], values: np.ndarray) -> np.ndarray:
    return np.column_stack([p.to_z(values[:, j]) for j, p in enumerate(params)])


def from_z(params: list[FreeParameter], z: np.ndarray) -> np.ndarray:
    return np.column_stack([p.from_z(z[:, j]) for j, p in enumerate(params)])


def log_prior(params: list[FreeParameter], z: np.ndarray) -> np.ndarray:
    """Log prior density of sets in z (independent parameters)."""
    return np.asarray(np.sum([p.log_prior_z(z[:, j]) for j, p in enumerate(params)], axis=0), float)


def log_proposal(params: list[FreeParameter], proposal: Proposal, z: np.ndarray) -> np.ndarray:
    """Log density in z of the distribution a round drew its sets from."""
    if proposal.centres is None:
        return log_prior(params, z)
    assert proposal.weights is not None and proposal.cov is not None
    zc = to_z(params, proposal.centres)
    kern = stats.multivariate_normal(mean=np.zeros(len(params)), cov=proposal.cov, allow_singular=True)
    diffs = (z[:, None, :] - zc[None, :, :]).reshape(-1, len(params))
    log_k = np.asarray(kern.logpdf(diffs), float).reshape(z.shape[0], zc.shape[0])
    return np.asarray(logsumexp(log_k + np.log(np.maximum(proposal.weights, 1e-300))[None, :], axis=1), float)


def importance_weights(params: list[FreeParameter], values: np.ndarray, proposals: list[Proposal], counts: list[int]) -> np.ndarray:
    """Normalised weights of sets drawn by several rounds: ``prior(z) / sum_r (n_r / N) q_r(z)``.

    Every set is weighed against the mixture of all rounds' proposals (the deterministic
    mixture of adaptive multiple importance sampling, Cornuet et al. 2012), so sets of every
    round can join the ensemble and no weight exceeds ``N / n_0`` times the prior's share.
    """
    if values.shape[0] == 0:
        return np.zeros(0)
    z = to_z(params, values)
    total = float(sum(counts))
    log_mix = logsumexp([math.log(n / total) + log_proposal(params, q, z) for q, n in zip(proposals, counts, strict=True)], axis=0)
    log_w = log_prior(params, z) - log_mix
    w = np.exp(log_w - log_w.max())
    return np.asarray(w / w.sum(), float)


def kernel_covariance(params: list[FreeParameter], pop: Population, scale: float) -> np.ndarray:
    """Perturbation covariance in z: ``scale`` x the population's weighted covariance, diagonal
    when the population is too small (effective size below parameters + 2) to estimate the full one."""
    z = to_z(params, pop.values)
    d = len(params)
    if z.shape[0] < 2:
        return np.eye(d)
    cov = np.atleast_2d(np.cov(z, rowvar=False, aweights=pop.weights)) if pop.ess > 1 + 1e-9 else np.atleast_2d(np.cov(z, rowvar=False))
    if pop.ess < d + 2:
        cov = np.diag(np.diag(cov))
    return np.asarray(scale * cov + KERNEL_RIDGE * np.eye(d), float)


def first_proposals(params: list[FreeParameter], n: int, rng: np.random.Generator) -> np.ndarray:
    """Round 0: ``n`` sets from the prior, a Latin hypercube in prior-quantile space."""
    import inspect

    from scipy.stats import qmc

    # scipy >= 1.15 takes rng=; older versions seed=.
    key = "rng" if "rng" in inspect.signature(qmc.LatinHypercube).parameters else "seed"
    u = qmc.LatinHypercube(len(params), **{key: rng}).random(n)
    return np.column_stack([p.from_quantile(u[:, j]) for j, p in enumerate(params)])


def next_proposals(params: list[FreeParameter], proposal: Proposal, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sets: resample the proposal's centres by weight, perturb in z with its kernel."""
    assert proposal.centres is not None and proposal.weights is not None and proposal.cov is not None
    idx = rng.choice(proposal.centres.shape[0], size=n, p=proposal.weights)
    noise = rng.multivariate_normal(np.zeros(len(params)), proposal.cov, size=n, method="cholesky")
    return from_z(params, to_z(params, proposal.centres)[idx] + noise)


def select(dist: np.ndarray, keep: int) -> tuple[float, np.ndarray]:
    """The tolerance and the sets within it: the ``keep``-th smallest distance of all sets run so far
    (at least :data:`MIN_ACCEPTED`); it can only shrink as rounds add sets. Failed runs (infinite
    distance) are never accepted."""
    finite = np.sort(dist[np.isfinite(dist)])
    if finite.size == 0:
        raise RuntimeError("every run failed; see the runs tables of the rounds' folders")
    k = min(finite.size, max(MIN_ACCEPTED, keep))
    tol = float(finite[k - 1])
    return tol, np.isfinite(dist) & (dist <= tol)


def population(params: list[FreeParameter], values: np.ndarray, dist: np.ndarray, proposals: list[Proposal],
               counts: list[int], keep: int) -> Population:
    """The accepted sets of all rounds so far, with their importance weights."""
    tol, mask = select(dist, keep)
    idx = np.flatnonzero(mask)
    w = importance_weights(params, values[idx], proposals, counts)
    return Population(values[idx], w, dist[idx], tol, idx)


# --------------------------------------------------------------- the rounds


def _round_dir(out: Path, k: int) -> Path:
    return out / f"round-{k:02d}"


def _write_json(path: Path, obj: Any) -> None:
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
    _write_json(state_file, {"request": request, "file": str(cal.file), "rounds": rounds, "per_round": per_round})
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
                _write_json(prop_file, {"round": k, "paths": [p.path for p in cal.parameters], "values": values,
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
            _write_json(done, rec)
        records.append(rec)
        best = f"{rec['best']:.4f}" if rec["best"] is not None else "-"
        print(f"round {k}: {values.shape[0]} sets, best distance {best}, tolerance {pop.tolerance:.4f}, "
              f"{pop.index.size} sets of {all_dist.size} accepted (ESS {pop.ess:.1f}), {note}", file=log)
    assert pop is not None
    total_runs = sum(int(r["runs"]) for r in records)
    return Outcome(pop, records, all_tv[pop.index], time.perf_counter() - t0, total_runs)


# ------------------------------------------------------------------- report


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    cw = cw / cw[-1]
    return float(x[order][min(int(np.searchsorted(cw, q)), x.size - 1)])


def _series_metrics(targets: list[FitTarget], sim_mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for t, s, lo, hi in zip(targets, sim_mean, low, high, strict=True):
        r = rows.setdefault(t.series, {"series": t.series, "brand": t.volume.brand, "product": t.volume.model,
                                       "targets": 0, "_ape": [], "_monthly": [], "annual": {}, "_in": 0})
        ape = abs(s / t.volume.value - 1)
        r["targets"] += 1
        r["_ape"].append(ape)
        r["_in"] += int(lo <= t.volume.value <= hi)
        if t.frequency == "monthly":
            r["_monthly"].append(ape)
        if t.frequency == "annual" or (t.volume.start.endswith("-01") and t.volume.end == t.volume.start[:4] + "-12"):
            r["annual"][t.volume.start[:4]] = round(100 * (s / t.volume.value - 1), 1)
    out = []
    for r in rows.values():
        out.append({
            "series": r["series"], "brand": r["brand"], "product": r["product"], "targets": r["targets"],
            "mape": round(100 * float(np.mean(r["_ape"])), 1),
            "mape_monthly": round(100 * float(np.mean(r["_monthly"])), 1) if r["_monthly"] else None,
            "monthly_targets": len(r["_monthly"]),
            "annual_error_pct": r["annual"],
            "band_coverage": round(r["_in"] / r["targets"], 3),
        })
    return sorted(out, key=lambda r: (r["product"] is not None, r["brand"], r["series"]))


def _sample_report(targets: list[FitTarget], values: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """Metrics of the ensemble (weighted mean and 5-95% band of its sets' values) against ``targets``."""
    if not targets:
        return {"targets": 0}
    sim_mean = weights @ values
    low = np.array([_weighted_quantile(values[:, j], weights, BAND[0]) for j in range(values.shape[1])])
    high = np.array([_weighted_quantile(values[:, j], weights, BAND[1]) for j in range(values.shape[1])])
    member_loss = distances(values, targets)
    rows = [
        {"target": t.key, "frequency": t.frequency, "reported": t.volume.value, "simulated": round(float(s), 1),
         "p5": round(float(lo), 1), "p95": round(float(hi), 1), "error_pct": round(100 * (s / t.volume.value - 1), 1),
         "weight": round(t.weight, 4), "lines": t.volume.lines}
        for t, s, lo, hi in zip(targets, sim_mean, low, high, strict=True)
    ]
    return {
        "targets": len(targets),
        "loss_of_mean": float(distances(sim_mean[None, :], targets)[0]),
        "loss_per_member": [round(float(x), 5) for x in member_loss],
        "mape": round(float(np.mean([abs(r["error_pct"]) for r in rows])), 1),
        "band_coverage": round(float(np.mean([(r["p5"] <= r["reported"] <= r["p95"]) for r in rows])), 3),
        "series": _series_metrics(targets, sim_mean, low, high),
        "figures": rows,
    }


def base_fit_cutoff(base_file: Path) -> str | None:
    """The ``--through`` month of the appeal fit that wrote ``base_file`` (or a scenario it extends), if any."""
    path: Path | None = base_file
    seen = set()
    while path is not None and path.is_file() and path not in seen:
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        head = "\n".join(line for line in text.splitlines()[:5] if line.startswith("#"))
        if "fit-appeals" in head:
            m = re.search(r"--through\s+(\d{4}-\d{2})", head)
            return m.group(1) if m else "2024-12"
        m2 = re.search(r"^extends:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(#.*)?$", text, re.M)
        path = (path.parent / m2.group(1).strip()).resolve() if m2 else None
    return None


def fit_report(cal: Calibration, outcome: Outcome) -> dict[str, Any]:
    """The content of ``fit.json``."""
    pop = outcome.population
    params = []
    for j, p in enumerate(cal.parameters):
        x = np.array([p.applied(v) for v in pop.values[:, j]])
        mean = float(pop.weights @ x)
        params.append({
            "path": p.path, "prior": p.prior, "low": p.low, "high": p.high, "mean_prior": p.mean, "sd_prior": p.sd,
            "offset": p.offset, "base_value": p.base_value, "mean": round(mean, 5),
            "sd": round(float(np.sqrt(pop.weights @ (x - mean) ** 2)), 5),
            "p5": round(_weighted_quantile(x, pop.weights, 0.05), 5),
            "p50": round(_weighted_quantile(x, pop.weights, 0.5), 5),
            "p95": round(_weighted_quantile(x, pop.weights, 0.95), 5),
        })
    fit_idx = [i for i, t in enumerate(cal.targets) if t.in_sample]
    out_idx = [i for i, t in enumerate(cal.targets) if not t.in_sample]
    base_cut = base_fit_cutoff(cal.base_file)
    fitted_before = _base_fitted_values(cal.base_file) if base_cut else 0
    honest = base_cut is None or parse_month(base_cut) <= parse_month(cal.fit_through)
    notes = []
    if not honest:
        notes.append(f"the base scenario's appeals were fitted by 'sim fit-appeals' to data through {base_cut}, after the "
                     f"cut-off {cal.fit_through}: the scores after {cal.fit_through} are NOT out of sample; use --base with "
                     f"a base fitted through {cal.fit_through}")
    return {
        "calibration": str(cal.file),
        "name": cal.name,
        "base": str(cal.base_file),
        "method": "ABC-SMC (Latin hypercube from the prior, then weighted resampling + Gaussian perturbation in logit "
                  "coordinates, tolerance the quantile of each round's distances, importance weights)",
        "distance": "weighted RMS log error sqrt(sum w r^2 / sum w), r = log(max(simulated, 1) / reported)",
        "fit_through": cal.fit_through,
        "data_through": cal.scenario.end,
        "seed": cal.config.seed,
        "scale": cal.config.scale,
        "replications": cal.config.method.replications,
        "budget": cal.budget,
        "runs": outcome.runs,
        "seconds": round(outcome.seconds, 1),
        "free_parameters": len(cal.parameters),
        "base_fitted_through": base_cut,
        "base_fitted_values": fitted_before,
        "targets_in_sample": len(fit_idx),
        "targets_out_of_sample": len(out_idx),
        "out_of_sample_is_honest": honest if out_idx else None,
        "notes": notes,
        "tolerance": pop.tolerance,
        "members": len(pop.weights),
        "ess": round(pop.ess, 2),
        "weights": {"confidence": CONFIDENCE_WEIGHT, "frequency": dict(cal.config.data.frequency_weight),
                    "brand": dict(cal.config.data.brand_weight)},
        "rounds": [{k: r[k] for k in ("round", "tolerance", "best", "median", "ess", "failed", "runs", "seconds")}
                   | {"accepted": len(r["accepted"])} for r in outcome.rounds],
        "accepted_by_round": np.bincount(_round_of(outcome), minlength=len(outcome.rounds)).tolist(),
        "parameters": params,
        "ensemble": [{"weight": round(float(w), 6), "loss": round(float(d), 5),
                      "set": {p.path: round(p.applied(v), 6) for p, v in zip(cal.parameters, row, strict=True)}}
                     for w, d, row in zip(pop.weights, pop.distances, pop.values, strict=True)],
        "in_sample": _sample_report([cal.targets[i] for i in fit_idx], outcome.final_values[:, fit_idx], pop.weights),
        "out_of_sample": _sample_report([cal.targets[i] for i in out_idx], outcome.final_values[:, out_idx], pop.weights),
    }


def _round_of(outcome: Outcome) -> np.ndarray:
    """The round each accepted set came from."""
    edges = np.cumsum([len(r["proposals"]) for r in outcome.rounds])
    return np.searchsorted(edges, outcome.population.index, side="right")


def _base_fitted_values(base_file: Path) -> int:
    """How many appeal and ageing values an appeal-fit overlay in the chain sets (calibration done before this one)."""
    path: Path | None = base_file
    while path is not None and path.is_file():
        text = path.read_text(encoding="utf-8")
        if "fit-appeals" in "\n".join(text.splitlines()[:5]):
            data = yaml.safe_load(text) or {}
            n = sum(1 for b in data.get("brands") or [] if "appeal" in b)
            n += sum(("appeal" in p) + ("ageing" in p) for p in data.get("products") or [])
            return int(n)
        m = re.search(r"^extends:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(#.*)?$", text, re.M)
        path = (path.parent / m.group(1).strip()).resolve() if m else None
    return 0


def overlay_document(cal: Calibration, outcome: Outcome, out: Path, command: str) -> str:
    """Text of ``calibrated.yaml``: extends the base, sets the ensemble's weighted means, holds the ensemble."""
    pop = outcome.population
    data = cal.scenario.model_dump(mode="json")
    means = {p.path: round(p.applied(float(pop.weights @ pop.values[:, j])), 6) for j, p in enumerate(cal.parameters)}
    doc: dict[str, Any] = {
        "name": f"{cal.name}_calibrated",
        "description": f"{cal.name}: an ensemble of {len(pop.weights)} parameter sets fitted by ABC-SMC to reported "
                       f"volumes through {cal.fit_through}; each run uses one set. Top-level values are the ensemble's "
                       "weighted means (used only where one parameter set is needed).",
        "extends": os.path.relpath(cal.base_file, out.resolve()),
    }
    doc.update(_overlay_values(data, means))
    order = np.argsort(pop.distances, kind="stable")
    doc["ensemble"] = {
        "source": f"{command} (ABC-SMC, data through {cal.fit_through}, tolerance {pop.tolerance:.4f})",
        "assign": "draw",
        "members": [
            {"weight": round(float(pop.weights[i]), 6), "loss": round(float(pop.distances[i]), 5),
             "set": {p.path: round(p.applied(float(pop.values[i, j])), 6) for j, p in enumerate(cal.parameters)}}
            for i in order
        ],
    }
    head = [
        "# Generated by the ensemble calibration (sim/ensemble.py); do not edit by hand, rerun:",
        f"#   {command}",
        f"# ABC-SMC: {len(outcome.rounds)} rounds, {outcome.runs} runs at scale {cal.config.scale:g}, "
        f"{len(cal.parameters)} free parameters, {len(cal.fit_targets)} reported figures through {cal.fit_through}; "
        f"tolerance {pop.tolerance:.4f} (weighted RMS log error), {len(pop.weights)} members (ESS {pop.ess:.1f}).",
        "# Each run draws one member (by weight, from its own seed) and applies its values; see fit.json for the fit.",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def _overlay_values(data: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    """A scenario overlay (mappings, and named list items merged by name) setting ``values`` by path.

    Paths through list indices (``events[3].price``) cannot be written this way and are skipped.
    """
    doc: dict[str, Any] = {}
    for path, value in values.items():
        parts = [p for p in parse_path(path) if isinstance(p, str)]
        if len(parts) != len(parse_path(path)):
            continue
        node: dict[str, Any] = doc
        src: Any = data
        i = 0
        while i < len(parts):
            part = parts[i]
            if i == len(parts) - 1:
                node[part] = value
                break
            child = src.get(part) if isinstance(src, dict) else None
            if isinstance(child, list):  # the next part names an item of the list
                name = parts[i + 1]
                items = node.setdefault(part, [])
                item = next((it for it in items if it.get("name") == name), None)
                if item is None:
                    item = {"name": name}
                    items.append(item)
                node = item
                src = next((it for it in child if isinstance(it, dict) and it.get("name") == name), {})
                i += 2
                continue
            node = node.setdefault(part, {})
            src = child if isinstance(child, dict) else {}
            i += 1
    return doc


def write_outputs(cal: Calibration, outcome: Outcome, out: Path, command: str) -> dict[str, Any]:
    """Write ``calibrated.yaml`` and ``fit.json``; returns the fit report."""
    report = fit_report(cal, outcome)
    report["command"] = command
    _write_json(out / "fit.json", report)
    text = overlay_document(cal, outcome, out, command)
    tmp = out / ".calibrated.yaml.tmp"
    tmp.write_text(text)
    os.replace(tmp, out / "calibrated.yaml")
    load_scenario(out / "calibrated.yaml")  # it must validate
    return report


def format_report(report: dict[str, Any]) -> str:
    """A readable summary of ``fit.json``."""
    lines = [
        f"{report['name']}: {report['free_parameters']} free parameters fitted to {report['targets_in_sample']} reported "
        f"figures through {report['fit_through']} ({report['runs']} runs, {report['seconds']:.0f} s); "
        f"{report['targets_out_of_sample']} figures after it held out.",
    ]
    if report.get("base_fitted_values"):
        lines.append(f"The base also holds {report['base_fitted_values']} appeal/ageing values fitted earlier by "
                     f"'sim fit-appeals' to data through {report['base_fitted_through']}.")
    lines.append(f"Tolerance {report['tolerance']:.4f}; ensemble of {report['members']} sets (ESS {report['ess']:.1f}).")
    lines.append("rounds: " + "; ".join(f"{r['round']}: tol {r['tolerance']:.3f}, best {r['best']:.3f}" for r in report["rounds"]))
    lines.append(f"{'parameter':<44} {'base':>9} {'prior':<34} {'mean':>9} {'5%':>9} {'95%':>9}")
    for p in report["parameters"]:
        prior = ("base + " if p["offset"] else "") + f"{p['prior']} [{p['low']:g}, {p['high']:g}]"
        lines.append(f"{p['path']:<44} {p['base_value']:>9.4g} {prior:<34} {p['mean']:>9.4g} {p['p5']:>9.4g} {p['p95']:>9.4g}")
    for label in ("in_sample", "out_of_sample"):
        s = report[label]
        if not s.get("targets"):
            continue
        lines.append(f"{label.replace('_', ' ')}: {s['targets']} figures, loss of the mean {s['loss_of_mean']:.4f}, "
                     f"MAPE {s['mape']:.1f}%, reported values in the ensemble's 90% band {100 * s['band_coverage']:.0f}%")
        lines.append(f"  {'series':<22} {'figures':>7} {'MAPE%':>7} {'monthly MAPE%':>14}  annual error %")
        for r in s["series"]:
            annual = ", ".join(f"{y} {v:+.1f}" for y, v in sorted(r["annual_error_pct"].items()))
            mm = f"{r['mape_monthly']:.1f}" if r["mape_monthly"] is not None else "-"
            lines.append(f"  {r['series']:<22} {r['targets']:>7} {r['mape']:>7.1f} {mm:>14}  {annual}")
    lines += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


__all__ = [
    "Calibration",
    "CalibrationFile",
    "FreeParameter",
    "Population",
    "select",
    "calibrate",
    "distances",
    "fit_report",
    "importance_weights",
    "load_calibration",
    "read_calibration_file",
    "resolve_parameters",
    "target_values",
    "write_outputs",
]
