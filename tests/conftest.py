"""Shared paths, fixtures and helpers for the market-engine tests.

The tiny market, ``tests/data/tiny.yaml`` (three products of two brands, one market, 12 months), is the
scenario most tests run; it is defined there once. Tests reach it through:

* :data:`TINY`, its path (for the command line and for ``extends:``);
* the ``tiny`` fixture, the validated :class:`~sim.scenario.schema.Scenario`, read once a session;
* :func:`tiny_scenario`, a variant by ``--set``-style overrides (``{"products.A1.price": 260000}``);
* :func:`tiny_child`, a variant as a scenario file that ``extends`` it;
* :func:`tiny_document`, a fresh copy of it as plain data, to change before writing it out.

Test modules import the constants and helpers (``from conftest import TINY, tiny_scenario``); pytest puts
this folder on ``sys.path`` (the tests are not a package), so that import finds this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TINY = DATA / "tiny.yaml"
#: The tiny market with more buyers and plants that never bind, for the calibration and validation tests.
CALIB_TINY = DATA / "calib_tiny.yaml"
BAD = DATA / "bad"

# Property tests draw small cases; the model and numpy make timing deadlines meaningless.
settings.register_profile("sim", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sim"))


def sim_command(*args: str) -> list[str]:
    """The command line of ``python -m sim ARGS`` with the interpreter running the tests."""
    return [sys.executable, "-m", "sim", *args]


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: no debug tracebacks, no colour, warnings as errors, this checkout's ``sim``."""
    env = dict(os.environ)
    env.pop("SIM_DEBUG", None)
    env["PYTHONWARNINGS"] = "error"
    # The code under test, whatever the working folder (the environment may have another checkout installed).
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_sim(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sim ARGS`` as a subprocess and return its exit status and output."""
    return subprocess.run(sim_command(*args), cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout)


def start_sim(*args: str, cwd: Path = ROOT) -> subprocess.Popen[str]:
    """Start ``python -m sim ARGS`` without waiting (to run several commands at once)."""
    return subprocess.Popen(
        sim_command(*args), cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="session")
def sim_cli():
    """``sim_cli(*args)`` runs ``python -m sim ARGS`` and returns the completed process."""
    return run_sim


@pytest.fixture(scope="session")
def sim_start():
    """``sim_start(*args)`` starts ``python -m sim ARGS`` and returns the running process."""
    return start_sim


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    """Path of tests/data/tiny.yaml."""
    return TINY


@pytest.fixture(scope="session")
def tiny() -> Scenario:
    """The tiny test scenario (three products, two brands, one market, 12 months)."""
    return load_scenario(TINY)


def tiny_scenario(overrides: dict[str, Any] | None = None) -> Scenario:
    """The tiny market, validated, with ``overrides`` applied by path as ``--set`` would.

    Args:
        overrides: parameter path -> value, e.g. ``{"products.A1.price": 260000, "end": "2024-06"}``.
    """
    return load_scenario(TINY, overrides)


def tiny_child(folder: Path, name: str, body: str = "") -> Path:
    """Write ``folder/NAME.yaml``, a scenario named ``name`` that extends the tiny market, and return its path.

    The file starts ``name: NAME`` (line 1) and ``extends: .../tiny.yaml`` (line 2); ``body`` (YAML text,
    each line ending in a newline) follows from line 3, so that errors in it are located at fixed lines.
    """
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nextends: {TINY}\n{body}")
    return path


def tiny_document() -> dict[str, Any]:
    """The tiny market's file as plain data (mappings and lists), a new copy at each call."""
    data: dict[str, Any] = yaml.safe_load(TINY.read_text())
    return data


def sales_table_of(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A sales table (:func:`sim.runs.run.sales_frame`) of synthetic rows, each a mapping of columns to values.

    A row gives every key column (:data:`sim.runs.run.KEY_COLUMNS`) and the measures a test reads; a measure
    it leaves out is 0. The columns come from the model's declaration (:data:`sim.model.observe.SALES_MEASURES`),
    so these tables keep the sales table's layout when a column is added.
    """
    from sim.runs.run import KEY_COLUMNS, SALES_COLUMNS, sales_frame

    rows = list(rows)
    return sales_frame({c: [r[c] if c in KEY_COLUMNS else r.get(c, 0) for r in rows] for c in SALES_COLUMNS})
