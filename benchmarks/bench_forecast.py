"""Benchmark of ``sim forecast``: 1,000 replicates of 2026-01..2027-12 branched from an assimilated history.

Usage::

    python benchmarks/bench_forecast.py                    # the goal: N = 200 particles, R = 1,000 replicates
    python benchmarks/bench_forecast.py --json
    python benchmarks/bench_forecast.py --particles 20 --replications 20 --scale 200   # a quick look

Runs ``sim forecast scenarios/baseline.yaml --particles N --replications R --before 0 --workers W`` as a
whole command in a fresh process (start-up, the parameter sets' histories, the filter, the branched
replicates and the writing of the tables all count), and reports its wall time, the time of each phase
(from the command's own progress lines), and the peak resident memory of the parent process (``VmHWM``;
the workers are separate processes and not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1
from sim.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
print("BENCH", rc, time.perf_counter() - t0, hwm(), file=sys.stderr)
"""


def measure(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "forecast"
        cmd = [sys.executable, "-c", _CHILD, "forecast", args.scenario, "--particles", str(args.particles),
               "--replications", str(args.replications), "--before", "0", "--workers", str(args.workers),
               "--out", str(out), "--quiet"]  # fmt: skip
        if args.scale:
            cmd += ["--scale", str(args.scale)]
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        line = [x for x in done.stderr.splitlines() if x.startswith("BENCH ")]
        if done.returncode != 0 or not line:
            raise SystemExit(f"the forecast failed:\n{done.stderr[-3000:]}")
        _, rc, inside, kb = line[-1].split()
        manifest = json.loads((out / "manifest.json").read_text())
    return {
        "command": " ".join(cmd[3:]).replace(str(out), "OUT"),
        "particles": args.particles,
        "replications": args.replications,
        "workers": args.workers,
        "wall_seconds": round(wall, 1),
        "command_seconds": round(float(inside), 1),
        "batch_seconds": round(float(manifest.get("seconds", 0.0)), 1),
        "parent_peak_mb": round(int(kb) / 1024, 1),
        "final_ess": manifest["assimilation"]["final_ess"],
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="scenarios/baseline.yaml")
    ap.add_argument("--particles", type=int, default=200)
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, help="buyers per agent (default: the scenario's, 25)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = measure(args)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        for k, v in r.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
