"""Run the benchmarks of BENCHMARKS.md and print their figures (``make bench``).

Usage::

    python benchmarks/run_all.py                      # the commands of BENCHMARKS.md (several minutes)
    python benchmarks/run_all.py --only decision run  # some of them (names below)
    python benchmarks/run_all.py --quick              # the same code on tiny inputs, in under a minute
    python benchmarks/run_all.py --json               # one JSON document on stdout

Each benchmark is a command of BENCHMARKS.md, run as its own process (with the interpreter running this
script, in the project's root, with ``--json`` added) so that one benchmark's imports and memory do not
colour the next one's figures:

* ``decision``: microseconds per buyer decision, naive Mesa agents against the compiled kernel, the numpy
  fallback and the floor (``sim bench``);
* ``run``: a 24-month baseline run as a whole process at the default scale (``benchmarks/bench_run.py``);
* ``run-full-scale``: the same at one agent per buyer, against the floor of its decisions;
* ``batch``: runs per second against workers, and the parent's memory over 10,000 runs
  (``benchmarks/bench_batch.py``).

The headline figures of each are printed, with the wall time the benchmark took and the load average
before and after (figures from a loaded machine are slower; BENCHMARKS.md records the load with each).

``--quick`` runs every benchmark on tiny inputs (``tests/data/tiny.yaml``, 2,000 buyers, one repeat): its
figures mean nothing, but every line of the benchmark code runs. ``tests/test_benchmarks.py`` runs it so,
in the normal test suite, so that the benchmarks cannot rot between two measurements.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY = "tests/data/tiny.yaml"

Figures = dict[str, float]


def _decision_figures(result: dict[str, Any]) -> Figures:
    """Per population size: microseconds per decision of each path, and the two ratios BENCHMARKS.md states."""
    out: Figures = {}
    for s in result["sizes"]:
        n = s["n_buyers"]
        out.update({f"{k}[{n}]": s[k] for k in ("naive_us", "fast_us", "numpy_us", "floor_us")})
        out[f"naive_over_fast[{n}]"] = s["naive_us"] / s["fast_us"]
        out[f"fast_over_floor[{n}]"] = s["fast_us"] / s["floor_us"]
    return out


def _run_figures(result: dict[str, Any]) -> Figures:
    """Wall time (median, min, max), CPU time and peak memory of the run; with ``--floor``, the floor and ratios."""
    out: Figures = {
        "wall_s": result["wall_s"]["median"],
        "wall_s_min": result["wall_s"]["min"],
        "wall_s_max": result["wall_s"]["max"],
        "cpu_s": result["cpu_s"]["median"],
        "peak_mb": result["peak_mb"]["median"],
    }
    if "decisions" in result:
        out.update({k: result[k] for k in ("decisions", "floor_us_per_decision", "wall_over_floor", "cpu_over_floor")})
    return out


def _batch_figures(result: dict[str, Any]) -> Figures:
    """Runs per second and a run's model time per worker count; the parent's peak memory over the many runs."""
    out: Figures = {}
    for r in result["throughput"]["results"]:
        w = r["workers"]
        out.update({f"{k}[{w}]": r[k] for k in ("runs_per_second", "mean_run_seconds", "projected_1000_runs_minutes")})
    if "memory" in result:
        m = result["memory"]
        out.update({"memory_runs": m["runs"], "parent_vmhwm_mb": m["parent_vmhwm_mb"], "parent_maxrss_mb": m["parent_maxrss_mb"]})
    return out


@dataclass(frozen=True)
class Benchmark:
    """One command of BENCHMARKS.md: its arguments after the interpreter, in full and on tiny inputs.

    Attributes:
        name: what ``--only`` selects it by.
        section: the section of BENCHMARKS.md its figures belong in.
        full: the documented command (without ``--json``, which is added).
        quick: the same code on tiny inputs.
        figures: the headline figures of its JSON result.
    """

    name: str
    section: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    figures: Callable[[dict[str, Any]], Figures]


BENCHMARKS = (
    Benchmark(
        "decision",
        "Per buyer-decision: sim bench",
        ("-m", "sim", "bench", "--buyers", "10000", "100000", "500000", "--repeat", "5"),
        ("-m", "sim", "bench", "--buyers", "2000", "--repeat", "1"),
        _decision_figures,
    ),
    Benchmark(
        "run",
        "One run as a whole process",
        ("benchmarks/bench_run.py", "--repeat", "5"),
        ("benchmarks/bench_run.py", "--scenario", TINY, "--months", "2", "--repeat", "1"),
        _run_figures,
    ),
    Benchmark(
        "run-full-scale",
        "One full-scale run as a whole process",
        ("benchmarks/bench_run.py", "--scale", "1", "--repeat", "5", "--floor"),
        ("benchmarks/bench_run.py", "--scenario", TINY, "--months", "2", "--scale", "20", "--repeat", "1", "--floor"),
        _run_figures,
    ),
    Benchmark(
        "batch",
        "Batches",
        ("benchmarks/bench_batch.py",),
        ("benchmarks/bench_batch.py", "--scenario", TINY, "--scale", "100", "--runs", "2", "--workers", "1",
         "--memory-runs", "4", "--memory-workers", "1"),  # fmt: skip
        _batch_figures,
    ),
)
NAMES = [b.name for b in BENCHMARKS]


def run_benchmark(bench: Benchmark, quick: bool) -> dict[str, Any]:
    """Run one benchmark to its end; its command, wall time (s), JSON result and headline figures.

    A benchmark that fails is reported with its exit status and the end of its error output instead.
    """
    args = [*(bench.quick if quick else bench.full), "--json"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    # stderr passes through: the benchmarks say there what they are measuring.
    done = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    entry: dict[str, Any] = {
        "section": bench.section,
        "command": " ".join(["python", *args]),
        "seconds": round(time.perf_counter() - t0, 2),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "exit_status": done.returncode,
    }
    if done.returncode != 0:
        return entry
    entry["result"] = json.loads(done.stdout)
    entry["figures"] = bench.figures(entry["result"])
    return entry


def _format(value: float) -> str:
    if not math.isfinite(value) or value == int(value):
        return f"{value:,.0f}" if math.isfinite(value) else str(value)
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"


def print_summary(report: dict[str, Any]) -> None:
    """The headline figures of each benchmark, one per line."""
    for name, entry in report["benchmarks"].items():
        print(f"\n{name} ({entry['section']}): {entry['command']}")
        print(f"  took {entry['seconds']} s, load average {entry['load_average'][0]} -> {entry['load_average'][1]}")
        if entry["exit_status"] != 0:
            print(f"  FAILED with exit status {entry['exit_status']}")
            continue
        width = max(len(k) for k in entry["figures"])
        for key, value in entry["figures"].items():
            print(f"  {key:<{width}}  {_format(value)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny inputs: checks that the benchmarks run, in seconds")
    ap.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=f"run only these ({', '.join(NAMES)})")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    report: dict[str, Any] = {"quick": args.quick, "benchmarks": {}}
    for bench in chosen:
        print(f"== {bench.name}", file=sys.stderr, flush=True)
        report["benchmarks"][bench.name] = run_benchmark(bench, args.quick)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_summary(report)
    return 1 if any(e["exit_status"] != 0 for e in report["benchmarks"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
