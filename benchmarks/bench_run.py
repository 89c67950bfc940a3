"""Whole-process time and peak memory of one 24-month run, against the floor of its buyer decisions.

Usage::

    .venv/bin/python benchmarks/bench_run.py [--scenario scenarios/baseline.yaml] [--months 24]
        [--scale S] [--repeat 5] [--floor] [--json]

Each repeat starts a fresh ``python -m sim run`` process with ``--workers 1`` and
times it from outside (start-up, reading the scenario, the months, writing the
results): wall time, CPU time (user + system) and peak resident memory of that
process (``wait4``'s ``ru_maxrss``). The median and the spread are reported.

``--floor`` also measures the floor of the same run: the model is stepped once in
this process to learn, month by month, how many buyer decisions it makes and over how
many products on sale (plus the outside option); then, for each month, numpy float32
``exp`` plus ``argmax`` over a buyers x options matrix of that shape is timed (median
of 3), and the months are summed. The whole process is reported as a multiple of that.

Run it on an idle machine; the figures go in BENCHMARKS.md with the machine they were
measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import machine  # noqa: E402  (one description of the machine for every benchmark)


def run_process(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd`` to its end; its wall time (s), CPU time (s) and peak resident memory (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def month_shapes(scenario: str, end: str, scale: float | None) -> list[tuple[int, int]]:
    """(buyer decisions, options) of each month of the run: options = products on sale + the outside option."""
    sys.path.insert(0, str(ROOT))
    from sim.model.market_model import MarketModel

    model = MarketModel(scenario, scale=scale, kernel=os.environ.get("SIM_KERNEL", "numba"), end=end)
    shapes = []
    while model.running:
        t = model.t
        model.step()
        on_sale = model.calendar.open[t].any(axis=1).sum()
        shapes.append((int(model.month_decisions), int(on_sale) + 1))
    return shapes


def floor_seconds(shapes: list[tuple[int, int]], seed: int = 1) -> float:
    """Sum over the months of numpy float32 ``exp`` + ``argmax`` over a decisions x options matrix (median of 3)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for n, k in shapes:
        x = rng.standard_normal((n, k), dtype=np.float32)
        buf = np.empty_like(x)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            np.exp(x, out=buf)
            buf.argmax(axis=1)
            times.append(time.perf_counter() - t0)
        total += statistics.median(times)
        del x, buf
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--scale", type=float)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--floor", action="store_true", help="also measure the floor of the run's decisions")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from sim.scenario.load import load_scenario
    from sim.scenario.months import format_month, parse_month

    sc = load_scenario(args.scenario)
    end = format_month(parse_month(sc.start) + args.months - 1)
    load_before = os.getloadavg()[0]
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "sim", "run", args.scenario, "--workers", "1", "--quiet",
                   "--set", f"end={end}", "--out", str(Path(tmp) / "out")]  # fmt: skip
            if args.scale:
                cmd += ["--scale", str(args.scale)]
            runs.append(run_process(cmd))
    result: dict[str, Any] = {
        "scenario": args.scenario,
        "months": args.months,
        "end": end,
        "scale": args.scale or sc.scale,
        "repeat": args.repeat,
        "kernel": os.environ.get("SIM_KERNEL", "numba"),
    }
    for key in ("wall_s", "cpu_s", "peak_mb"):
        values = [r[key] for r in runs]
        result[key] = {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}
    if args.floor:
        shapes = month_shapes(args.scenario, end, args.scale)
        decisions = sum(n for n, _ in shapes)
        floor = floor_seconds(shapes)
        result["decisions"] = decisions
        result["options_per_month"] = [k for _, k in shapes]
        result["floor_s"] = round(floor, 3)
        result["floor_us_per_decision"] = round(1e6 * floor / decisions, 4)
        result["wall_over_floor"] = round(result["wall_s"]["median"] / floor, 2)
        result["cpu_over_floor"] = round(result["cpu_s"]["median"] / floor, 2)
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["machine"] = machine()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    w, c, mem = result["wall_s"], result["cpu_s"], result["peak_mb"]
    print(f"{args.months}-month run of {Path(args.scenario).name} at scale {result['scale']} ({args.repeat} processes, "
          f"load average {result['load_average'][0]} -> {result['load_average'][1]}):")  # fmt: skip
    print(f"  wall {w['median']} s (min {w['min']}, max {w['max']}); CPU {c['median']} s; peak memory {mem['median']:.0f} MB "
          f"(max {mem['max']:.0f})")  # fmt: skip
    if args.floor:
        print(f"  floor {result['floor_s']} s for {result['decisions']:,} decisions "
              f"({result['floor_us_per_decision']} us each); wall / floor {result['wall_over_floor']}x, "
              f"CPU / floor {result['cpu_over_floor']}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
