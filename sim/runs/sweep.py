"""Parameter sweeps: a base scenario, parameters by path, a design, replications per point.

A sweep file (YAML)::

    name: m6_price_by_launch
    base: ../m6_launch.yaml          # relative to the sweep file
    replications: 20
    seed: 42                         # default: the base scenario's
    design: grid                     # grid | list | lhs | sobol | morris
    parameters:
      - {path: products.AITO M6.price, values: [229800, 249800, 269800]}
      - {path: products.AITO M6.launch, type: month, low: 2026-04, high: 2026-09, steps: 6}

Parameters are addressed by their path in the resolved scenario, as ``sim run
--set`` does (``products.AITO M6.price``, ``events[2].month``,
``events[type=stores,market=EU].count``; :mod:`sim.scenario.paths`). ``type`` is ``float``, ``int``, ``month``
('YYYY-MM', swept as whole months) or ``text``; by default it is inferred
(``low``/``high`` numbers are floats). A parameter gives either ``values`` or
``low`` and ``high``:

- ``grid``: every combination; ``values``, or ``low``/``high`` with ``steps``.
- ``list``: explicit ``points:``, each a mapping path -> value.
- ``lhs``: ``samples`` points of a Latin hypercube (scipy.stats.qmc).
- ``sobol``: ``samples`` (a power of 2) points of a scrambled Sobol sequence.
- ``morris``: ``trajectories`` Morris trajectories on ``levels`` levels (SALib);
  ``trajectories x (parameters + 1)`` points.

Sampled designs draw a unit coordinate ``u`` per parameter (seeded by
``design_seed``, default ``seed``) and map it to ``low + u (high - low)``
(floats), the ``floor`` of that over ``low..high`` inclusive (ints, months) or an
item of ``values``. The design table (``design.parquet``) keeps both.

Every point's scenario is validated before any run starts. Run ``point x
replications + r`` is replicate ``r`` of point ``point``; with
``common_random_numbers: true`` (the default) replicate ``r`` gets the same seed at
every point, so differences between points are paired, not noise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.runs.limits import check_agents
from sim.runs.run import RunSpec, make_specs
from sim.runs.sweep_design import Parameter, SweepFile, build_design, check_size, resolve_parameters
from sim.scenario.errors import validate
from sim.scenario.load import load_scenario, validate_document
from sim.scenario.months import format_month
from sim.scenario.paths import PathError, apply_override, overlapping_paths, parse_path, resolve_selectors
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, InputError, Location, Path_, Problem, format_path, load_yaml

#: Bad points reported before the rest are summarised.
MAX_REPORTED = 10
#: The path of the scale: swept, it is the runs' scale (``RunSpec.scale``), not a scenario value.
SCALE = "scale"
#: Top-level keys whose values change how many buyer agents a run holds.
SIZE_KEYS = ("scale", "markets", "buyers", "start", "end")


@dataclass
class Sweep:
    """A sweep ready to run: base scenario, design points and their runs."""

    file: Path
    config: SweepFile
    name: str
    base_file: Path
    scenario: Scenario
    parameters: list[Parameter]
    points: list[dict[str, Any]]
    unit: np.ndarray | None
    seed: int

    @property
    def replications(self) -> int:
        return self.config.replications

    @property
    def runs(self) -> int:
        return len(self.points) * self.config.replications

    def design_table(self) -> pd.DataFrame:
        """One row per point: ``point``, ``param:<path>`` values and, for sampled designs, ``u:<path>``."""
        cols: dict[str, Any] = {"point": np.arange(len(self.points), dtype="int64")}
        for p in self.parameters:
            cols[f"param:{p.path}"] = pd.Series([pt[p.path] for pt in self.points], dtype=p.column_dtype())
        if self.unit is not None:
            for j, p in enumerate(self.parameters):
                cols[f"u:{p.path}"] = self.unit[:, j].astype("float64")
        return pd.DataFrame(cols)

    def design_hash(self) -> str:
        text = json.dumps({"design": self.config.design, "points": self.points}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def specs(self, kernel: str = "numba") -> list[RunSpec]:
        """Runs of every point; run ``p x replications + r`` is replicate ``r`` of point ``p`` (``kernel``: the
        runs' choice kernel)."""
        r = self.config.replications
        crn = self.config.common_random_numbers
        out: list[RunSpec] = []
        targets = {p.path: p.target or p.path for p in self.parameters}
        for p, point in enumerate(self.points):
            overrides = {targets[k]: v for k, v in point.items()}
            # A swept scale is the runs' scale (as sim run --scale), not a value inside the scenario.
            scale = overrides.pop(SCALE, self.config.scale)
            out += make_specs(
                self.scenario,
                r,
                seed=self.seed,
                scale=scale,
                first_run_id=p * r,
                overrides=overrides,
                point=p,
                first_stream=0 if crn else p * r,
                kernel=kernel,
            )
        return out

    def request(self) -> dict[str, Any]:
        """What identifies this batch (a resumed folder must have asked the same)."""
        return {
            "kind": "sweep",
            "scenario_hash": self.scenario.hash(),
            "seed": self.seed,
            "replications": self.config.replications,
            "scale": self.config.scale,
            "design": self.config.design,
            "design_hash": self.design_hash(),
            "points": len(self.points),
            "common_random_numbers": self.config.common_random_numbers,
        }

    def manifest(self) -> dict[str, Any]:
        """Manifest fields of this sweep (for :func:`sim.runs.manifest.new_manifest`)."""
        design: dict[str, Any] = {
            "type": self.config.design,
            "points": len(self.points),
            "hash": self.design_hash(),
            "file": "design.parquet",
            "parameters": [
                {"path": p.path, "target": p.target or p.path, "type": p.type, "values": list(p.values) if p.values is not None else None,
                 "low": _bound_out(p, p.low), "high": _bound_out(p, p.high)}
                for p in self.parameters
            ],
        }
        if self.unit is not None:
            # SALib's problem for the u:<path> columns (e.g. SALib.analyze.morris.analyze).
            design["salib_problem"] = {
                "num_vars": len(self.parameters),
                "names": [f"u:{p.path}" for p in self.parameters],
                "bounds": [[0.0, 1.0]] * len(self.parameters),
            }
        return {
            "kind": "sweep",
            "label": self.name,
            "sweep_name": self.name,
            "sweep_file": str(self.file),
            "sweep": self.config.model_dump(mode="json"),
            "scenario_name": self.scenario.name,
            "scenario_file": str(self.base_file),
            "scenario_hash": self.scenario.hash(),
            "scenario": self.scenario.model_dump(mode="json"),
            "seed": self.seed,
            "replications": self.config.replications,
            "scale": self.config.scale or self.scenario.scale,
            "common_random_numbers": self.config.common_random_numbers,
            "design": design,
            "request": self.request(),
        }


def _bound_out(p: Parameter, v: float | None) -> Any:
    if v is None:
        return None
    return format_month(int(v)) if p.type == "month" else (int(v) if p.type == "int" else v)


# ------------------------------------------------------------------ loading


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file, build its design and validate every point's scenario.

    Raises:
        InputError: naming the file, line and field, for any problem.
    """
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(Problem("a sweep file must be a mapping of keys (base, design, parameters, ...)", Location(str(path), 1)))
    cfg = validate(SweepFile, doc)
    base_file = (path.parent / cfg.base).resolve()
    if not base_file.is_file():
        raise InputError(Problem(f"base scenario '{cfg.base}' does not exist ({base_file})", doc.where(("base",)), "base"))
    params = resolve_parameters(cfg, doc)
    check_size(cfg, params, doc)
    scenario = load_scenario(base_file)
    params = _resolve_targets(params, scenario, cfg, doc)
    points, unit = build_design(cfg, params, doc, scenario.seed if cfg.seed is None else cfg.seed)
    _check_points(scenario, params, points, cfg, doc)
    return Sweep(
        file=path,
        config=cfg,
        name=cfg.name or path.stem,
        base_file=base_file,
        scenario=scenario,
        parameters=params,
        points=points,
        unit=unit,
        seed=scenario.seed if cfg.seed is None else cfg.seed,
    )



def _resolve_targets(params: list[Parameter], scenario: Scenario, cfg: SweepFile, doc: Document) -> list[Parameter]:
    """Resolve each parameter's selectors and check that its path reaches into the base scenario, that
    no two parameters name one value (under two spellings, or one inside the other), and that neither
    the seed nor, twice, the scale is swept."""
    data = scenario.model_dump(mode="json")
    out, problems = [], []

    def where(j: int) -> Path_:
        return ("parameters", j, "path") if "parameters" in doc.data else ("points", 0)

    for j, p in enumerate(params):
        try:
            target = resolve_selectors(data, p.path)
        except PathError as exc:
            problems.append(Problem(f"{exc.path}: {exc.reason}", doc.where(where(j)), format_path(where(j))))
            continue
        if target == "seed":
            problems.append(Problem("the seed cannot be swept: every run's seed comes from the sweep's 'seed' and "
                                    "its replicate; for more random draws raise 'replications'",
                                    doc.where(where(j)), format_path(where(j))))  # fmt: skip
        elif target == SCALE and cfg.scale is not None:
            problems.append(Problem("the scale is swept and also set by the sweep's 'scale'; give one or the other",
                                    doc.where(where(j)), format_path(where(j))))  # fmt: skip
        out.append(dataclasses.replace(p, target=target))
    for j, message in overlapping_paths(data, [p.path for p in params]):
        problems.append(Problem(f"parameter '{params[j].path}' {message}", doc.where(where(j)), format_path(where(j))))
    if problems:
        raise InputError(problems)
    return out


def point_scenario(base: Scenario, overrides: dict[str, Any], base_json: str | None = None) -> Scenario:
    """The scenario of one design point, as a worker builds it (see ``MarketModel``).

    Args:
        overrides: values by resolved path (:func:`sim.scenario.paths.resolve_selectors`).
    """
    data = json.loads(base_json) if base_json is not None else base.model_dump(mode="json")
    for path, value in overrides.items():
        apply_override(data, path, value)
    return validate_document(Document(data, {}, f"<{base.name}>"))


def _check_points(
    base: Scenario, params: list[Parameter], points: list[dict[str, Any]], cfg: SweepFile, doc: Document
) -> None:
    """Validate every point's scenario, and the buyer agents its runs would hold (:mod:`sim.runs.limits`);
    a bad point is an error before any run starts."""
    base_json = json.dumps(base.model_dump(mode="json"))
    targets = {p.path: p.target or p.path for p in params}
    # Points that change the market's size, its months or the scale are checked one by one; else the base once.
    sizes = any(str(parse_path(t)[0]) in SIZE_KEYS for t in targets.values())
    if not sizes:
        try:
            check_agents(base, cfg.scale, option="scale")
        except InputError as exc:
            raise InputError(Problem(str(exc), doc.where(("scale",) if cfg.scale is not None else ("base",)),
                                     "scale" if cfg.scale is not None else "base")) from None  # fmt: skip
    bad: list[Problem] = []
    n_bad = 0
    for i, pt in enumerate(points):
        overrides = {targets[k]: v for k, v in pt.items()}
        try:
            scenario = point_scenario(base, overrides, base_json)
            if sizes:
                check_agents(scenario, overrides.get(SCALE, cfg.scale), option="scale")
        except InputError as exc:
            n_bad += 1
            if len(bad) < MAX_REPORTED:
                where = ("points", i) if cfg.design == "list" else ("parameters",)
                values = ", ".join(f"{k}={v!r}" for k, v in pt.items())
                for p in exc.problems:
                    text = str(p).removeprefix(f"<{base.name}>: ").replace("--set ", "")
                    bad.append(Problem(f"point {i} ({values}): {text}", doc.where(where), format_path(where)))
    if n_bad > MAX_REPORTED:
        bad.append(Problem(f"... {n_bad - MAX_REPORTED} more bad points of {len(points)}", doc.where(("parameters",))))
    if bad:
        raise InputError(bad)
