"""The sweep file and its design: parameters resolved to values or bounds, and the design's points.

:func:`resolve_parameters` reads each parameter of a :class:`SweepFile` (type, values or
bounds), :func:`check_size` refuses a design too large to build, and :func:`build_design`
gives its points (and, for sampled designs, their unit coordinates). :mod:`sim.runs.sweep`
turns the points into runs.
"""

from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.runs.batch import MAX_RUNS
from sim.scenario.fields import PlainName
from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path

DESIGNS = ("grid", "list", "lhs", "sobol", "morris")
ParamType = Literal["float", "int", "month", "text"]
#: Most points a sweep may have (a guard against a grid exploding by mistake).
MAX_POINTS = 100_000
#: Bad points reported before the rest are summarised.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSpec(_Strict):
    """One swept parameter as written in the sweep file."""

    path: str = Field(min_length=1, description="Path in the scenario, e.g. 'products.AITO M6.price'.")
    type: ParamType | None = Field(None, description="float, int, month ('YYYY-MM') or text; default inferred.")
    values: list[Any] | None = Field(None, min_length=1, description="Values to sweep (grid, or items for sampled designs).")
    low: int | float | str | None = Field(None, description="Lower bound (inclusive).")
    high: int | float | str | None = Field(None, description="Upper bound (inclusive).")
    steps: int | None = Field(None, ge=2, description="grid only: evenly spaced values from low to high.")


class SweepFile(_Strict):
    """A sweep file, validated. Build with :func:`load_sweep`."""

    name: PlainName | None = Field(None, description="Default: the file's stem.")
    description: str = ""
    base: str = Field(description="Base scenario file, relative to the sweep file.")
    replications: int = Field(1, ge=1, description="Runs per design point.")
    seed: int | None = Field(None, ge=0, description="Root seed of the runs (default: the base scenario's).")
    design_seed: int | None = Field(None, ge=0, description="Seed of lhs/sobol/morris sampling (default: seed).")
    scale: float | None = Field(None, gt=0, description="Real buyers per buyer agent (default: the scenario's).")
    common_random_numbers: bool = Field(True, description="Replicate r gets the same seed at every point.")
    design: Literal["grid", "list", "lhs", "sobol", "morris"]
    samples: int | None = Field(None, ge=1, le=MAX_POINTS, description="lhs, sobol: number of points.")
    trajectories: int | None = Field(None, ge=1, le=MAX_POINTS, description="morris: number of trajectories.")
    levels: int | None = Field(None, ge=2, description="morris: grid levels (default 4).")
    scramble: bool = Field(True, description="lhs, sobol: scramble (randomise) the design.")
    parameters: list[ParameterSpec] = Field(default_factory=list)
    points: list[dict[str, Any]] | None = Field(None, min_length=1, description="list: the points.")


@dataclass(frozen=True)
class Parameter:
    """A swept parameter, resolved: numeric bounds (months as month indices) or values.

    ``path`` is the parameter's name as written (column ``param:<path>``); ``target`` is
    the same path with list selectors replaced by indices, as applied to the scenario.
    """

    path: str
    type: str
    values: tuple[Any, ...] | None
    low: float | None = None
    high: float | None = None
    target: str = ""

    def from_unit(self, u: float) -> Any:
        """Map a unit coordinate in [0, 1] to a value of this parameter."""
        if self.values is not None:
            n = len(self.values)
            return self.values[min(int(math.floor(u * n)), n - 1)]
        assert self.low is not None and self.high is not None
        if self.type == "float":
            return float(self.low + u * (self.high - self.low))
        lo, hi = int(self.low), int(self.high)
        v = min(lo + int(math.floor(u * (hi - lo + 1))), hi)
        return format_month(v) if self.type == "month" else v

    def column_dtype(self) -> str:
        return {"float": "float64", "int": "int64"}.get(self.type, "string")



def check_size(cfg: SweepFile, params: list[Parameter], doc: Document) -> None:
    """Refuse a design of more than :data:`MAX_POINTS` points or :data:`MAX_RUNS` runs before building it."""
    if cfg.design == "grid":
        points, key = math.prod(len(p.values or ()) for p in params), "parameters"
    elif cfg.design == "list":
        points, key = len(cfg.points or ()), "points"
    elif cfg.design == "morris":
        points, key = (cfg.trajectories or 0) * (len(params) + 1), "trajectories"
    else:
        points, key = cfg.samples or 0, "samples"
    if points > MAX_POINTS:
        raise InputError(Problem(f"the design has {points:,} points; the limit is {MAX_POINTS:,}", doc.where((key,)), key))
    if points * cfg.replications > MAX_RUNS:
        raise InputError(
            Problem(
                f"{points:,} points x {cfg.replications:,} replications = {points * cfg.replications:,} runs; "
                f"the limit is {MAX_RUNS:,} runs in one batch",
                doc.where(("replications",)),
                "replications",
            )
        )


def _is_month(v: Any) -> bool:
    try:
        parse_month(v)
    except ValueError:
        return False
    return True


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _infer_type(spec: ParameterSpec) -> str:
    given = [v for v in (*(spec.values or ()), spec.low, spec.high) if v is not None]
    if given and all(isinstance(v, str) for v in given):
        return "month" if all(_is_month(v) for v in given) else "text"
    if spec.values is not None and all(isinstance(v, int) and not isinstance(v, bool) for v in spec.values):
        return "int"
    return "float"


def _convert(value: Any, kind: str) -> Any:
    """A value as parameter type ``kind``; raises ValueError with a readable message."""
    if kind == "month":
        parse_month(value)
        return str(value).strip()
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"expected a number, got {value!r}")
    if kind == "int":
        if float(value) != int(value):
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    return float(value)


def resolve_parameters(cfg: SweepFile, doc: Document) -> list[Parameter]:
    problems: list[Problem] = []
    specs = list(cfg.parameters)
    if cfg.design == "list" and not specs and cfg.points:
        specs = [ParameterSpec.model_validate({"path": k}) for k in cfg.points[0]]
        inferred_from_points = True
    else:
        inferred_from_points = False
    if not specs:
        problems.append(Problem("a sweep needs at least one parameter", doc.where(("parameters",)), "parameters"))
    out: list[Parameter] = []
    seen: set[str] = set()
    for j, sp in enumerate(specs):
        where = ("parameters", j)
        loc = doc.where(where) if not inferred_from_points else doc.where(("points", 0))

        def bad(msg: str, sub: str | None = None, loc: Location | None = loc, where: Path_ = where) -> None:
            full = where + ((sub,) if sub else ())
            problems.append(Problem(msg, doc.where(full) if sub else loc, format_path(full)))

        if sp.path in seen:
            bad(f"parameter '{sp.path}' appears twice", "path")
        seen.add(sp.path)
        has_range = sp.low is not None or sp.high is not None
        if cfg.design == "list":
            if sp.values is not None or has_range or sp.steps is not None:
                bad("with design 'list' a parameter gives only 'path' (and 'type'); values come from 'points'")
            values = [pt.get(sp.path) for pt in (cfg.points or []) if sp.path in pt]
            kind = sp.type or _infer_type(ParameterSpec.model_validate({"path": sp.path, "values": values or None}))
            out.append(Parameter(sp.path, kind, None))
            continue
        if (sp.values is None) == (not has_range):
            bad("give either 'values' or 'low' and 'high'")
            continue
        if has_range and (sp.low is None or sp.high is None):
            bad("give both 'low' and 'high'", "high" if sp.high is None else "low")
            continue
        if sp.steps is not None and (cfg.design != "grid" or not has_range):
            bad("'steps' is for a grid over 'low'..'high'", "steps")
        kind = sp.type or _infer_type(sp)
        if sp.values is not None:
            vals = []
            for k, v in enumerate(sp.values):
                try:
                    vals.append(_convert(v, kind))
                except ValueError as exc:
                    problems.append(Problem(f"{exc} (type {kind})", doc.where(where + ("values", k)), format_path(where + ("values", k))))
            if len(set(map(str, vals))) != len(vals):
                bad("values repeat", "values")
            out.append(Parameter(sp.path, kind, tuple(vals)))
            continue
        if kind == "text":
            bad("a text parameter needs 'values', not 'low' and 'high'")
            continue
        try:
            lo_v, hi_v = _convert(sp.low, kind), _convert(sp.high, kind)
        except ValueError as exc:
            bad(f"{exc} (type {kind})")
            continue
        lo = float(parse_month(lo_v)) if kind == "month" else float(lo_v)
        hi = float(parse_month(hi_v)) if kind == "month" else float(hi_v)
        if not lo < hi:
            bad(f"low ({sp.low}) must be below high ({sp.high})", "high")
            continue
        if cfg.design == "grid":
            if sp.steps is None:
                bad("a grid needs 'values', or 'low' and 'high' with 'steps'")
                continue
            grid = np.linspace(lo, hi, sp.steps)
            if kind == "float":
                vals = [float(x) for x in grid]
            else:
                ints = sorted({int(round(x)) for x in grid})
                vals = [format_month(i) if kind == "month" else i for i in ints]
            out.append(Parameter(sp.path, kind, tuple(vals)))
            continue
        out.append(Parameter(sp.path, kind, None, lo, hi))
    _check_design_keys(cfg, doc, problems)
    if problems:
        raise InputError(problems)
    return out


def _check_design_keys(cfg: SweepFile, doc: Document, problems: list[Problem]) -> None:
    used = {
        "grid": set(),
        "list": {"points"},
        "lhs": {"samples", "scramble"},
        "sobol": {"samples", "scramble"},
        "morris": {"trajectories", "levels"},
    }[cfg.design]
    data = doc.data
    for key in ("samples", "trajectories", "levels", "points", "scramble"):
        if key in data and key not in used:
            problems.append(Problem(f"not used by design '{cfg.design}'", doc.where((key,)), key))
    needs = {"lhs": "samples", "sobol": "samples", "morris": "trajectories", "list": "points"}.get(cfg.design)
    if needs and getattr(cfg, needs) is None:
        problems.append(Problem(f"design '{cfg.design}' needs '{needs}'", doc.where(("design",)), needs))
    if cfg.design == "sobol" and cfg.samples is not None and cfg.samples & (cfg.samples - 1):
        problems.append(Problem(f"must be a power of 2 for a Sobol design, got {cfg.samples}", doc.where(("samples",)), "samples"))


# ------------------------------------------------------------------- designs


def _qmc_seed(cls: type, seed: int) -> dict[str, Any]:
    # scipy >= 1.15 takes rng=; older versions seed=.
    params = inspect.signature(cls).parameters
    return {"rng": np.random.default_rng(seed)} if "rng" in params else {"seed": seed}


def _unit_design(cfg: SweepFile, d: int, seed: int) -> np.ndarray:
    """The design's points in the unit cube, shape (points, parameters)."""
    from scipy.stats import qmc

    if cfg.design == "lhs":
        assert cfg.samples is not None
        return qmc.LatinHypercube(d, scramble=cfg.scramble, **_qmc_seed(qmc.LatinHypercube, seed)).random(cfg.samples)
    if cfg.design == "sobol":
        assert cfg.samples is not None
        engine = qmc.Sobol(d, scramble=cfg.scramble, **_qmc_seed(qmc.Sobol, seed))
        return engine.random_base2(int(math.log2(cfg.samples)))
    try:
        from SALib.sample import morris
    except ImportError:
        raise InputError("design 'morris' needs SALib: pip install 'sim[sweeps]'") from None
    assert cfg.trajectories is not None
    problem = {"num_vars": d, "names": [f"x{j}" for j in range(d)], "bounds": [[0.0, 1.0]] * d}
    return np.asarray(morris.sample(problem, cfg.trajectories, num_levels=cfg.levels or 4, seed=seed), float)


def build_design(
    cfg: SweepFile, params: list[Parameter], doc: Document, run_seed: int
) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    if cfg.design == "grid":
        combos = itertools.product(*(p.values or () for p in params))
        return [{p.path: v for p, v in zip(params, combo, strict=True)} for combo in combos], None
    if cfg.design == "list":
        return _list_points(cfg, params, doc), None
    seed = run_seed if cfg.design_seed is None else cfg.design_seed
    unit = _unit_design(cfg, len(params), seed)
    points = [{p.path: p.from_unit(float(u)) for p, u in zip(params, row, strict=True)} for row in unit]
    return points, unit


def _list_points(cfg: SweepFile, params: list[Parameter], doc: Document) -> list[dict[str, Any]]:
    problems: list[Problem] = []
    paths = [p.path for p in params]
    out = []
    for i, pt in enumerate(cfg.points or []):
        where = ("points", i)
        if set(pt) != set(paths):
            missing, extra = sorted(set(paths) - set(pt)), sorted(set(pt) - set(paths))
            msg = "every point sets the same parameters" + (f"; missing {missing}" if missing else "") + (
                f"; not a parameter: {extra}" if extra else ""
            )
            problems.append(Problem(msg, doc.where(where), format_path(where)))
            continue
        row = {}
        for p in params:
            try:
                row[p.path] = _convert(pt[p.path], p.type)
            except ValueError as exc:
                problems.append(Problem(f"{exc} (type {p.type})", doc.where(where + (p.path,)), f"{format_path(where)}.{p.path}"))
        out.append(row)
    if problems:
        raise InputError(problems)
    return out


