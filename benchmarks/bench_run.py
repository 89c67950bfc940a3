"""Whole-process time of one 24-month run (start-up, set-up, run, writing results).

Usage::

    .venv/bin/python benchmarks/bench_run.py [--scenario scenarios/baseline.yaml] [--months 24]
        [--scale S] [--repeat 5] [--json]

Each repeat starts a fresh ``python -m sim run`` process with ``--workers 1`` and
times it from outside; the median and the spread are reported. Run it on an idle
machine; the figures go in BENCHMARKS.md with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import machine  # noqa: E402  (one description of the machine for every benchmark)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--scale", type=float)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from sim.months import format_month, parse_month
    from sim.scenario import load_scenario

    sc = load_scenario(args.scenario)
    end = format_month(parse_month(sc.start) + args.months - 1)
    times = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "sim", "run", args.scenario, "--workers", "1", "--quiet",
                   "--set", f"end={end}", "--out", str(Path(tmp) / "out")]
            if args.scale:
                cmd += ["--scale", str(args.scale)]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
    result = {
        "scenario": args.scenario,
        "months": args.months,
        "scale": args.scale or sc.scale,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "repeat": args.repeat,
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.months}-month run of {Path(args.scenario).name} at scale {result['scale']}: "
              f"median {result['median_s']} s (min {result['min_s']}, max {result['max_s']}) over {args.repeat} processes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
