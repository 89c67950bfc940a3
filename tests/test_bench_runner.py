"""The benchmarks of BENCHMARKS.md still run: ``benchmarks/run_all.py --quick`` gives every headline figure.

``make bench`` runs the same script in full. Nothing here is timed: the figures of a quick run (tiny inputs,
one repeat) mean nothing; what is checked is that each benchmark runs to its end and reports the figures
BENCHMARKS.md quotes, so that the benchmark code cannot rot between two measurements.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT, cli_env

#: The headline figures of each benchmark on the quick inputs (2,000 buyers; one worker).
EXPECTED = {
    "decision": {
        f"{k}[2000]" for k in ("naive_us", "fast_us", "numpy_us", "floor_us", "naive_over_fast", "fast_over_floor")
    },
    "run": {"wall_s", "wall_s_min", "wall_s_max", "cpu_s", "peak_mb"},
    "run-full-scale": {
        "wall_s", "wall_s_min", "wall_s_max", "cpu_s", "peak_mb",
        "decisions", "floor_us_per_decision", "wall_over_floor", "cpu_over_floor",
    },
    "batch": {
        "runs_per_second[1]", "mean_run_seconds[1]", "projected_1000_runs_minutes[1]",
        "memory_runs", "parent_vmhwm_mb", "parent_maxrss_mb",
    },
}  # fmt: skip


@pytest.mark.slow
def test_every_benchmark_runs_and_reports_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--json"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["quick"] is True
    assert list(report["benchmarks"]) == list(EXPECTED)
    for name, entry in report["benchmarks"].items():
        assert entry["exit_status"] == 0 and entry["command"].endswith("--json"), name
        figures = entry["figures"]
        assert set(figures) == EXPECTED[name], name
        assert all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in figures.values()), (name, figures)
    decision = report["benchmarks"]["decision"]["figures"]
    assert all(decision[f"{k}[2000]"] > 0 for k in ("naive_us", "fast_us", "numpy_us", "floor_us"))
    run = report["benchmarks"]["run-full-scale"]
    assert run["result"]["months"] == 2 and len(run["result"]["options_per_month"]) == 2
    assert run["figures"]["decisions"] > 0 and run["figures"]["wall_s"] > 0 and run["figures"]["peak_mb"] > 0
    batch = report["benchmarks"]["batch"]
    assert batch["result"]["throughput"]["results"][0]["failed"] == 0
    assert batch["figures"]["memory_runs"] == 4 and batch["result"]["memory"]["finished"] == 4
