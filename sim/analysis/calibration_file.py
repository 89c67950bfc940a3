"""The calibration file of ``sim calibrate`` (and ``sim sensitivity``): its schema, and its free parameters.

A calibration file (YAML)::

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

:func:`read_calibration_file` validates it (errors name the file, line and field);
:func:`resolve_parameters` checks each parameter against the base scenario and gives a
:class:`FreeParameter` with its prior's transforms (quantiles, the unbounded coordinate ``z``
and the log prior density in it) for the sampler of :mod:`sim.analysis.abc_smc`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import stats
from scipy.special import expit, logit

from sim.analysis.fit_targets import FREQUENCY_WEIGHT
from sim.runs.sweep import point_scenario
from sim.scenario.errors import validate
from sim.scenario.paths import PathError, canonical_path, value_at
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path, load_yaml

#: A value this close to a bound is moved inside it before the logit.
EDGE = 1e-9


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
    """A calibration file, validated. Build with :func:`sim.analysis.calibrate.load_calibration`."""

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

