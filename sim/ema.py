"""The EMA Workbench adapter: an ``ema_workbench.Model`` of sim, from a sweep or a calibration file.

Needs the optional extra ``ema`` (``pip install 'sim[ema]'``)::

    import sim.ema
    from ema_workbench import MultiprocessingEvaluator, Samplers, perform_experiments

    model = sim.ema.ema_model(sim.scenario_path("calibration"), end="2025-12", scale=500)
    if __name__ == "__main__":
        with MultiprocessingEvaluator(model) as evaluator:
            experiments, outcomes = perform_experiments(model, 16, uncertainty_sampling=Samplers.LHS,
                                                        evaluator=evaluator)

The model's **uncertainties** are the file's parameters, its **levers** the calibration file's
``levers`` (or the sweep parameters named in ``levers=``), each named by its path made an identifier
(``buyers_price_sensitivity``) and passed to the runs under the path itself (its ``variable_name``):

- a calibration parameter is a real number over its bounds with its prior (uniform, log-uniform,
  or the normal truncated to the bounds); an ``offset: true`` parameter is a relative override
  (``brands.AITO.appeal+=``, EMA name ``brands_AITO_appeal_plus``): an offset from the fitted value;
- a sweep parameter given by ``low`` and ``high`` (or a grid's ``steps``) is a real or whole number
  over that range, a month parameter is a categorical of every month of its range (``"2026-03"``...),
  one given by ``values`` a categorical of those values;
- a product's ``launch`` carries its deliveries along: the product gets the ``delivery_lag`` its file
  gives (``delivery_start - launch``) unless it has one, so a later launch delivers later.

Its **outcomes** are :func:`sim.outcomes`'s numeric columns (each brand's deliveries per year, each
target's delivered / reached / months to reach / shortfall, each segment's share per year), each the
mean over the experiment's replicates (so a ``_reached`` outcome is the probability of the target).

An experiment runs ``replications`` replicates of the root ``seed``: every experiment on the same
seeds (common random numbers: differences between experiments are the parameters', not noise), or,
with ``common_random_numbers=False``, on seeds derived from the experiment's values. Either way the
numbers depend on the experiment only, so the sequential and the multiprocessing evaluators give
identical results. The runs pin BLAS to one thread (as every batch of sim does).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.calibration_file import FreeParameter, read_calibration_file, resolve_parameters
from sim.analysis.outcomes import ID_COLUMNS, run_outcomes
from sim.api import outcomes as sim_outcomes
from sim.api import simulate_batch
from sim.model.observe import column_name
from sim.runs.run import SALES_COLUMNS
from sim.runs.sweep import Parameter, load_sweep
from sim.scenario.load import load_scenario, override_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.paths import concrete_path, split_operator, value_at
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError, load_yaml

try:
    with warnings.catch_warnings():
        # ema_workbench warns at import that ipyparallel (one of its evaluators) is not installed.
        warnings.filterwarnings("ignore", message=".*ipyparallel.*")
        import ema_workbench as ema
except ImportError as exc:  # pragma: no cover - the extra is installed where this module is used
    raise ImportError("sim.ema needs the EMA Workbench: pip install 'sim[ema]'") from exc

__all__ = ["SimExperiment", "ema_model", "outcome_names"]


@dataclass(frozen=True)
class SimExperiment:
    """The function an ``ema_workbench.Model`` calls: one experiment's runs, their mean outcomes.

    Picklable (the multiprocessing evaluator sends it to its workers). Called with the experiment's
    values by override key (``{"buyers.price_sensitivity": 0.9, "brands.AITO.appeal+=": 0.1}``).

    Attributes:
        scenario: the base scenario, resolved (with the fixed overrides).
        outcomes: the outcome columns returned, in order.
        replications: runs per experiment.
        seed: root seed of every experiment's runs.
        scale: real buyers per buyer agent (None: the scenario's).
        kernel: the choice kernel of the runs (None: ``SIM_KERNEL``, else numba).
        common_random_numbers: every experiment on the same seeds (else seeds from the experiment's values).
        selection: the keyword arguments of :func:`sim.outcomes` (brands, years, targets, shares).
    """

    scenario: Scenario
    outcomes: tuple[str, ...]
    replications: int = 1
    seed: int = 0
    scale: float | None = None
    kernel: str | None = None
    common_random_numbers: bool = True
    selection: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, **values: Any) -> dict[str, float]:
        overrides = {key: _plain(v) for key, v in values.items()}
        seed = self.seed if self.common_random_numbers else _experiment_seed(self.seed, overrides)
        res = simulate_batch(self.scenario, replications=self.replications, seed=seed, scale=self.scale,
                             overrides=overrides, kernel=self.kernel)  # fmt: skip
        table = sim_outcomes(res, **self.selection)
        return {name: _mean(table[name]) for name in self.outcomes}


def ema_model(
    file: str | Path,
    *,
    name: str | None = None,
    scenario: str | Path | Scenario | None = None,
    overrides: Mapping[str, Any] | None = None,
    end: str | None = None,
    replications: int = 1,
    seed: int | None = None,
    scale: float | None = None,
    kernel: str | None = None,
    common_random_numbers: bool = True,
    levers: Iterable[str] = (),
    brands: Iterable[str] | None = None,
    years: Iterable[int | str] | None = None,
    targets: bool = True,
    shares: bool = True,
) -> ema.Model:
    """An ``ema_workbench.Model`` of sim whose uncertainties and levers are a sweep or calibration file's.

    Args:
        file: a sweep file (``sim sweep``) or a calibration file (``sim calibrate``), or the name of a
            shipped one (``"calibration"``, ``"sweeps/m6_price_by_launch"``).
        name: the model's name, letters and digits (default: those of the file's stem).
        scenario: the base scenario (default: the file's ``base``; a calibration's without its ensemble).
        overrides: fixed scenario values by path, applied to the base before anything else.
        end: the runs' last month (``YYYY-MM``): shorter runs, for a quick exploration.
        replications: runs per experiment (their mean is the outcome); not a sweep's ``replications``,
            which are per design point of ``sim sweep``.
        seed: root seed (default: the file's, else the scenario's).
        scale: real buyers per buyer agent (default: the sweep's or the scenario's; a calibration's own).
        kernel: the choice kernel (default: ``SIM_KERNEL``, else numba).
        common_random_numbers: every experiment on the same seeds (default) or on seeds of its own.
        levers: paths of the sweep's parameters that are levers rather than uncertainties.
        brands, years, targets, shares: which outcomes (as :func:`sim.outcomes`).

    Raises:
        InputError: a bad file, path or value (located, as the commands say it).
    """
    path = _shipped_or_path(file)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(f"{path}: not a sweep or calibration file (a mapping of keys)")
    fixed = {**({"end": end} if end is not None else {}), **dict(overrides or {})}
    if "design" in doc.data:
        base, uncertainties, lever_params, file_seed, file_scale = _from_sweep(path, scenario, fixed, set(levers))
    else:
        if levers:
            raise InputError("levers=: a calibration file names its levers itself (its 'levers')")
        base, uncertainties, lever_params, file_seed, file_scale = _from_calibration(path, scenario, fixed)
    coupled = _coupled_dates(base, [p.variable_name[0] for p in [*uncertainties, *lever_params]])
    base = override_scenario(base, coupled, f"<{base.name} with coupled dates>")
    selection: dict[str, Any] = {"brands": None if brands is None else list(brands),
                                 "years": None if years is None else list(years), "targets": targets, "shares": shares}  # fmt: skip
    names = outcome_names(base, **selection)
    _check_names([p.name for p in [*uncertainties, *lever_params]])
    root = seed if seed is not None else file_seed if file_seed is not None else base.seed
    function = SimExperiment(base, tuple(names), replications, root, scale if scale is not None else file_scale, kernel,
                             common_random_numbers, selection)  # fmt: skip
    model = ema.Model(name or re.sub(r"[^0-9A-Za-z]", "", path.stem) or "sim", function=function)  # EMA: letters, digits
    model.uncertainties = uncertainties
    model.levers = lever_params
    model.outcomes = [ema.ScalarOutcome(n) for n in names]
    return model


def outcome_names(
    scenario: Scenario,
    *,
    brands: Iterable[str] | None = None,
    years: Iterable[int | str] | None = None,
    targets: bool = True,
    shares: bool = True,
) -> list[str]:
    """The numeric columns :func:`sim.outcomes` gives for runs of ``scenario`` (known before any run)."""
    runs = pd.DataFrame({"run_id": pd.Series([], dtype="int64"), "status": pd.Series([], dtype=object)})
    sales = pd.DataFrame({c: [] for c in SALES_COLUMNS})
    table = run_outcomes(runs, sales, scenario.model_dump(mode="json"), brands=brands, years=years, targets=targets,
                         shares=shares)  # fmt: skip
    return [c for c in table.columns if c not in ID_COLUMNS and not c.endswith("_month_reached")]


# --------------------------------------------------------------------------- the files


def _shipped_or_path(file: str | Path) -> Path:
    p = Path(file)
    if p.is_file():
        return p
    from sim.scenario.shipped import scenario_path

    return scenario_path(file)


def _from_sweep(
    path: Path, scenario: str | Path | Scenario | None, fixed: dict[str, Any], levers: set[str]
) -> tuple[Scenario, list[Any], list[Any], int | None, float | None]:
    """Base scenario, uncertainties, levers, seed and scale of a sweep file."""
    sweep = load_sweep(path)
    unknown = levers - {p.path for p in sweep.parameters}
    if unknown:
        raise InputError(f"levers=: not parameters of {path}: {', '.join(sorted(unknown))}")
    base = _base(scenario, sweep.scenario, fixed)
    ranged = {sp.path for sp in sweep.config.parameters if sp.steps is not None}
    params = [_sweep_parameter(p, p.path in ranged) for p in sweep.parameters]
    unc = [e for p, e in zip(sweep.parameters, params, strict=True) if p.path not in levers]
    lev = [e for p, e in zip(sweep.parameters, params, strict=True) if p.path in levers]
    return base, unc, lev, sweep.seed, sweep.config.scale


def _sweep_parameter(p: Parameter, ranged: bool) -> Any:
    """A sweep parameter as an EMA parameter (see the module docstring)."""
    key = p.target or p.path
    ident = column_name(p.path)
    if p.values is not None and not ranged:
        return ema.CategoricalParameter(ident, list(p.values), variable_name=key)
    if p.values is not None:  # a grid over low..high in steps: its range
        ends = [parse_month(v) for v in p.values] if p.type == "month" else list(p.values)
        lo, hi = float(min(ends)), float(max(ends))
    else:
        assert p.low is not None and p.high is not None
        lo, hi = p.low, p.high
    if p.type == "month":
        return ema.CategoricalParameter(ident, [format_month(i) for i in range(int(lo), int(hi) + 1)], variable_name=key)
    if p.type == "int":
        return ema.IntegerParameter(ident, int(lo), int(hi), variable_name=key)
    return ema.RealParameter(ident, lo, hi, variable_name=key)


def _from_calibration(
    path: Path, scenario: str | Path | Scenario | None, fixed: dict[str, Any]
) -> tuple[Scenario, list[Any], list[Any], int | None, float | None]:
    """Base scenario, uncertainties (the parameters), levers, seed and scale of a calibration file."""
    cfg, doc = read_calibration_file(path)
    default = (path.parent / cfg.base).resolve()
    base = _base(scenario if scenario is not None else default, None, {"ensemble": None, **fixed})
    unc = [_calibration_parameter(p) for p in resolve_parameters(cfg.parameters, doc, base)]
    lev = [_calibration_parameter(p) for p in resolve_parameters(cfg.levers, doc, base, key="levers")]
    return base, unc, lev, cfg.seed, cfg.scale


def _calibration_parameter(p: FreeParameter) -> Any:
    """A calibration parameter (or lever) over its prior; an offset one as a relative override."""
    from scipy import stats

    key = p.path + ("+=" if p.offset else "")
    ident = column_name(key)
    if p.prior == "uniform":
        return ema.RealParameter(ident, p.low, p.high, variable_name=key)
    if p.prior == "loguniform":
        dist = stats.loguniform(p.low, p.high)
    else:
        assert p.mean is not None and p.sd is not None
        dist = stats.truncnorm((p.low - p.mean) / p.sd, (p.high - p.mean) / p.sd, loc=p.mean, scale=p.sd)
    return ema.RealParameter.from_dist(ident, dist, variable_name=key)


def _base(scenario: str | Path | Scenario | None, loaded: Scenario | None, fixed: dict[str, Any]) -> Scenario:
    """The base scenario with the fixed overrides."""
    if scenario is None:
        assert loaded is not None
        return override_scenario(loaded, fixed)
    if isinstance(scenario, Scenario):
        return override_scenario(scenario, fixed)
    return load_scenario(scenario, fixed)


def _coupled_dates(base: Scenario, keys: list[str]) -> dict[str, Any]:
    """``delivery_lag`` overrides for the products whose launch an experiment moves (see the module docstring)."""
    data = base.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key in keys:
        concrete = concrete_path(data, split_operator(key)[0])
        if len(concrete) != 3 or concrete[0] != "products" or concrete[2] != "launch":
            continue
        product = value_at(data, f"products[{concrete[1]}]")
        if product.get("delivery_lag") is None:
            first = product.get("delivery_start") or product["launch"]
            out[f"products[{concrete[1]}].delivery_lag"] = parse_month(first) - parse_month(product["launch"])
    return out


def _check_names(names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InputError(f"two parameters give the EMA name '{n}'")
        seen.add(n)


# --------------------------------------------------------------------------- values


def _plain(value: Any) -> Any:
    """numpy scalars (as EMA's samplers give them) as Python numbers; other values as they are."""
    return value.item() if isinstance(value, np.generic) else value


def _experiment_seed(seed: int, overrides: Mapping[str, Any]) -> int:
    """A root seed of an experiment's own, from the root seed and the experiment's values."""
    text = json.dumps([seed, sorted((k, repr(v)) for k, v in overrides.items())])
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16)


def _mean(column: pd.Series) -> float:
    """An outcome over the experiment's runs: the mean (a share for a yes/no outcome), NaN without a value."""
    values = pd.to_numeric(column.astype("Float64"), errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan
