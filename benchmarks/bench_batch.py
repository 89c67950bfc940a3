"""Benchmark of the batch machinery: runs per second against workers, parent memory for many runs.

Usage::

    python benchmarks/bench_batch.py                 # human-readable
    python benchmarks/bench_batch.py --json          # one JSON document on stdout
    python benchmarks/bench_batch.py --runs 8 --workers 1 2 --memory-runs 10000

1. Throughput: ``--runs`` replicates of the baseline (``scenarios/baseline.yaml`` if it
   exists, else ``tests/data/tiny.yaml``) at ``--agents`` buyer agents a month (the scale
   is the markets' buyers a month at their reference month / agents; or give ``--scale``),
   with 1 worker (in-process) and with N worker processes. Reports runs per second, the
   mean model time of a run, and the time 1,000 replicates would take at that rate.
2. Parent memory (measured first): ``sim run tests/data/tiny.yaml -r 10000 --scale 1000 --quiet``
   in a fresh process; peak resident memory of that (parent) process from
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and ``VmHWM`` in ``/proc/self/status``
   (worker processes are not counted; ru_maxrss carries over the peak of the process that
   started it, VmHWM does not).
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
sys.path.insert(0, str(ROOT))

from sim.runs import batch, store  # noqa: E402
from sim.runs.run import make_specs  # noqa: E402
from sim.scenario.load import load_scenario  # noqa: E402

TINY = ROOT / "tests" / "data" / "tiny.yaml"

# ru_maxrss survives exec on Linux (the kernel carries the pre-exec peak over), so a child
# started by a big parent would report the parent's peak; VmHWM, the peak of this process
# image's own address space, does not. The child reports both; run it from a small parent.
_MEMORY_CHILD = """
import resource, sys, time
def hwm():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1
from sim.cli import main
before = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm())
t0 = time.perf_counter()
rc = main(sys.argv[1:])
seconds = time.perf_counter() - t0
after = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm())
print(rc, *before, *after, seconds)
"""


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "code_version": store.code_version(),
    }


def throughput(scenario_path: Path, scale: float, runs: int, workers: list[int], seed: int) -> list[dict[str, object]]:
    scenario = load_scenario(scenario_path)
    specs = make_specs(scenario, runs, seed=seed, scale=scale)
    out = []
    for w in workers:
        with tempfile.TemporaryDirectory() as tmp:
            folder = store.prepare_output(Path(tmp) / "o")
            t0 = time.perf_counter()
            rep = batch.run_batch(specs, folder, {"request": {}}, workers=w, progress=False)
            wall = time.perf_counter() - t0
            res = store.load_results(folder)
        if rep.failed:
            first = res.runs[res.runs["status"] != "ok"].iloc[0]
            print(f"warning: {rep.failed} run(s) failed with {w} worker(s); first:\n{first['error']}", file=sys.stderr)
        model_seconds = float(res.runs["seconds"].mean())
        rate = rep.finished / wall
        out.append(
            {
                "workers": w,
                "executor": "serial (in-process)" if w == 1 else "processes",
                "runs": rep.finished,
                "failed": rep.failed,
                "wall_seconds": round(wall, 2),
                "runs_per_second": round(rate, 4),
                "mean_run_seconds": round(model_seconds, 3),
                "buyer_decisions_per_run": int(res.runs["buyer_decisions"].mean()),
                "projected_1000_runs_minutes": round(1000 / rate / 60, 1),
            }
        )
    return out


def parent_memory(runs: int, scale: float, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", _MEMORY_CHILD, "run", str(TINY), "-r", str(runs), "--scale", str(scale),
               "--workers", str(workers), "--out", str(Path(tmp) / "o"), "-q"]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0 or not done.stdout.strip():
            raise SystemExit(f"memory run failed:\n{done.stderr}")
        rc, maxrss0, hwm0, maxrss1, hwm1, seconds = done.stdout.split()[-6:]
        man = store.read_manifest(Path(tmp) / "o")
        parts = len(list((Path(tmp) / "o" / "runs").glob("part-*.parquet")))
    return {
        "scenario": "tests/data/tiny.yaml",
        "runs": runs,
        "scale": scale,
        "workers": workers,
        "exit_status": int(rc),
        "finished": man["finished"],
        "parts": parts,
        "wall_seconds": round(float(seconds), 1),
        "runs_per_second": round(runs / float(seconds), 1),
        "parent_maxrss_mb_after_imports": round(int(maxrss0) / 1024, 1),
        "parent_maxrss_mb": round(int(maxrss1) / 1024, 1),
        "parent_vmhwm_mb_after_imports": round(int(hwm0) / 1024, 1),
        "parent_vmhwm_mb": round(int(hwm1) / 1024, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--scenario", type=Path, help="scenario for throughput (default: scenarios/baseline.yaml, else tiny)")
    p.add_argument("--agents", type=float, default=50_000, help="buyer agents a month (sets the scale; default 50,000)")
    p.add_argument("--scale", type=float, help="real buyers per agent (overrides --agents)")
    p.add_argument("--runs", type=int, default=8, help="replicates per throughput measurement (default 8)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--memory-runs", type=int, default=10_000, help="runs of the memory measurement (0: skip)")
    p.add_argument("--memory-scale", type=float, default=1000.0, help="scale of tiny.yaml in the memory run")
    p.add_argument("--memory-workers", type=int, default=2)
    args = p.parse_args()

    scenario = args.scenario or (ROOT / "scenarios" / "baseline.yaml")
    if not scenario.is_file():
        scenario = TINY
    sc = load_scenario(scenario)
    buyers = sum(m.buyers_per_month for m in sc.markets)
    scale = args.scale or buyers / args.agents
    report: dict[str, object] = {
        "command": " ".join(["python", "benchmarks/bench_batch.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    if args.memory_runs:
        # First, while this process is still small (see _MEMORY_CHILD).
        report["memory"] = parent_memory(args.memory_runs, args.memory_scale, args.memory_workers)
    report.update({
        "throughput": {
            "scenario": str(scenario.relative_to(ROOT) if scenario.is_relative_to(ROOT) else scenario),
            "scenario_hash": sc.hash(),
            "scale": round(scale, 4),
            "buyer_agents_per_month_at_reference": round(buyers / scale),
            "results": throughput(scenario, scale, args.runs, args.workers, args.seed),
        },
    })
    report["machine_after"] = {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    m = report["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, load {m['load_average_1_5_15']}")
    t = report["throughput"]
    print(f"throughput: {t['scenario']} at scale {t['scale']} (~{t['buyer_agents_per_month_at_reference']:,} agents a month)")
    for r in t["results"]:  # type: ignore[attr-defined]
        print(f"  {r['workers']} worker(s): {r['runs_per_second']:.3f} runs/s ({r['runs']} runs, {r['wall_seconds']} s; "
              f"{r['mean_run_seconds']} s a run); 1,000 runs: {r['projected_1000_runs_minutes']} min")
    if "memory" in report:
        mm = report["memory"]
        print(f"memory: {mm['runs']:,} runs of tiny.yaml at scale {mm['scale']} with {mm['workers']} workers: "  # type: ignore[index]
              f"parent peak {mm['parent_vmhwm_mb']} MB VmHWM, {mm['parent_maxrss_mb']} MB ru_maxrss "  # type: ignore[index]
              f"({mm['parent_vmhwm_mb_after_imports']} MB after imports), "  # type: ignore[index]
              f"{mm['wall_seconds']} s, {mm['parts']} parts")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
