"""Shared paths, fixtures and helpers for the market-engine tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TINY = DATA / "tiny.yaml"
BAD = DATA / "bad"

# Property tests draw small cases; the model and numpy make timing deadlines meaningless.
settings.register_profile("sim", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sim"))


def sim_command(*args: str) -> list[str]:
    """The command line of ``python -m sim ARGS`` with the interpreter running the tests."""
    return [sys.executable, "-m", "sim", *args]


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: no debug tracebacks, no colour, warnings as errors."""
    env = dict(os.environ)
    env.pop("SIM_DEBUG", None)
    env["PYTHONWARNINGS"] = "error"
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
