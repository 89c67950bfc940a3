"""What ``sim dashboard`` passes to the page: the scenarios, the baseline and the default sampling.

The server process runs the Solara app by module name, so the command line hands its choices
over in environment variables (``SIM_DASHBOARD_*``), read back by :meth:`DashboardConfig.from_env`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.scenario.yamlio import InputError

#: Replicates per scenario a page run starts with.
DEFAULT_REPLICATIONS = 8
#: Real buyers per buyer agent a page run starts with: coarse, so that a run takes seconds.
DEFAULT_SCALE = 500.0
#: The baseline's file name, looked for beside the scenario.
BASELINE_NAME = "baseline.yaml"

_ENV = {
    "scenario": "SIM_DASHBOARD_SCENARIO",
    "baseline": "SIM_DASHBOARD_BASELINE",
    "replications": "SIM_DASHBOARD_REPLICATIONS",
    "scale": "SIM_DASHBOARD_SCALE",
    "seed": "SIM_DASHBOARD_SEED",
    "workers": "SIM_DASHBOARD_WORKERS",
    "kernel": "SIM_DASHBOARD_KERNEL",
    "forecast": "SIM_DASHBOARD_FORECAST",
}


@dataclass(frozen=True)
class DashboardConfig:
    """The page's starting point.

    Attributes:
        scenario: the scenario file shown first; the page offers the scenario files beside it
            (:func:`scenario_files`).
        baseline: the scenario every run is compared with, on the same seeds.
        replications: replicates per scenario (the page can change it).
        scale: real buyers per buyer agent (the page can change it).
        seed: root seed (None: the baseline's).
        workers: worker processes per run (None: all cores).
        kernel: the runs' choice kernel (``sim dashboard`` takes it from ``SIM_KERNEL``).
        forecast: a forecast folder (``sim forecast --out``) shown on the Forecast page (None: no such page).
    """

    scenario: Path
    baseline: Path
    replications: int = DEFAULT_REPLICATIONS
    scale: float = DEFAULT_SCALE
    seed: int | None = None
    workers: int | None = None
    kernel: str = "numba"
    forecast: Path | None = None

    @property
    def folder(self) -> Path:
        return self.scenario.parent

    def to_env(self) -> dict[str, str]:
        out = {
            _ENV["scenario"]: str(self.scenario),
            _ENV["baseline"]: str(self.baseline),
            _ENV["replications"]: str(self.replications),
            _ENV["scale"]: repr(float(self.scale)),
            _ENV["kernel"]: self.kernel,
        }
        if self.seed is not None:
            out[_ENV["seed"]] = str(self.seed)
        if self.workers is not None:
            out[_ENV["workers"]] = str(self.workers)
        if self.forecast is not None:
            out[_ENV["forecast"]] = str(self.forecast)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        """Read the variables :meth:`to_env` wrote; without them, the default scenario."""
        env = os.environ if env is None else env
        scenario = Path(env[_ENV["scenario"]]) if _ENV["scenario"] in env else default_scenario()
        baseline = Path(env[_ENV["baseline"]]) if _ENV["baseline"] in env else scenario.parent / BASELINE_NAME
        seed, workers, forecast = env.get(_ENV["seed"]), env.get(_ENV["workers"]), env.get(_ENV["forecast"])
        return cls(
            scenario=scenario,
            baseline=baseline,
            replications=int(env.get(_ENV["replications"], DEFAULT_REPLICATIONS)),
            scale=float(env.get(_ENV["scale"], DEFAULT_SCALE)),
            seed=int(seed) if seed else None,
            workers=int(workers) if workers else None,
            kernel=env.get(_ENV["kernel"], cls.kernel),
            forecast=Path(forecast) if forecast else None,
        )


def default_scenario() -> Path:
    """``scenarios/baseline.yaml`` of the working folder, else the one shipped with sim."""
    from sim.scenario.shipped import shipped_file

    here = Path("scenarios") / BASELINE_NAME
    if here.is_file():
        return here.resolve()
    return shipped_file(BASELINE_NAME)


def make_config(
    scenario: str | Path | None,
    baseline: str | Path | None = None,
    replications: int = DEFAULT_REPLICATIONS,
    scale: float = DEFAULT_SCALE,
    seed: int | None = None,
    workers: int | None = None,
    kernel: str = "numba",
    forecast: str | Path | None = None,
) -> DashboardConfig:
    """Check the files of ``sim dashboard`` and build its config.

    Raises:
        InputError: when the scenario or the baseline is missing or invalid, or ``forecast`` is not a
            forecast folder.
    """
    from sim.scenario.load import load_scenario

    path = Path(scenario).resolve() if scenario is not None else default_scenario()
    if not path.is_file():
        raise InputError(f"{scenario or path}: no such scenario file")
    base = Path(baseline).resolve() if baseline is not None else path.parent / BASELINE_NAME
    if not base.is_file():
        hint = "" if baseline is not None else " (the baseline is looked for beside the scenario; give --baseline FILE)"
        raise InputError(f"{base}: no such baseline scenario file{hint}")
    load_scenario(path)
    load_scenario(base)
    folder = check_forecast(forecast) if forecast is not None else None
    return DashboardConfig(path, base, replications, scale, seed, workers, kernel, folder)


def check_forecast(folder: str | Path) -> Path:
    """``folder`` resolved when it is a forecast folder (``sim forecast --out``); else :class:`InputError`."""
    from sim.runs.store import MANIFEST, read_manifest

    path = Path(folder).resolve()
    if not (path / MANIFEST).is_file():
        raise InputError(f"--forecast {folder}: no such results folder (no {MANIFEST}); make one with sim forecast")
    manifest = read_manifest(path)
    if not isinstance(manifest.get("assimilation"), dict):
        raise InputError(f"--forecast {folder}: not a forecast folder (its manifest has no assimilation; "
                         "made by sim run, not sim forecast?)")  # fmt: skip
    return path


def scenario_files(folder: Path) -> list[Path]:
    """The scenario files a page offers: the ``*.yaml`` in ``folder`` that look like scenarios, by name.

    A scenario is a mapping with a ``name`` and ``extends`` or ``products``; other YAML files
    kept beside them (a calibration or sweep set-up) are left out. Read once per set of files
    and modification times.
    """
    stamps = tuple(sorted((p.name, p.stat().st_mtime) for p in folder.glob("*.yaml") if p.is_file()))
    return [folder / name for name in _scenario_names(folder, stamps)]


@functools.lru_cache(maxsize=16)
def _scenario_names(folder: Path, stamps: tuple[tuple[str, float], ...]) -> tuple[str, ...]:
    return tuple(name for name, _ in stamps if _looks_like_scenario(folder / name))


def _looks_like_scenario(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "name" in data and ("extends" in data or "products" in data)
