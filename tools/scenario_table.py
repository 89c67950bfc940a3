"""Run every shipped scenario on the same seeds and print the target table for the README.

Usage::

    .venv/bin/python tools/scenario_table.py [--replications 400] [--particles 400] [--scale 25] [--seed 1] [--out results/table]

Each scenario in ``scenarios/*.yaml`` is forecast by ``sim forecast`` (its history assimilated to the
reported figures, then replicates branched from the particles) with the same root seed (common
random numbers: scenarios whose history is the same share their particles and their replicates'
streams), then ``sim compare`` gives each target's probability; scenarios other than the baseline
are also compared with it, paired by replicate. ``--mode run`` uses ``sim run`` instead (no
assimilation). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sim(*args: str) -> str:
    cmd = [sys.executable, "-m", "sim", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    return done.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replications", type=int, default=400)
    ap.add_argument("--particles", type=int, default=400)
    ap.add_argument("--scale", type=float, default=25)
    ap.add_argument("--mode", choices=("forecast", "run"), default="forecast")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="results/table")
    ap.add_argument("--reuse", action="store_true", help="reuse result folders that already hold a finished batch")
    ap.add_argument("scenarios", nargs="*", help="scenario files (default: scenarios/*.yaml)")
    args = ap.parse_args()
    # scenarios/calibration.yaml is a calibration file (sim calibrate), not a scenario.
    files = [Path(f) for f in args.scenarios] or sorted(
        f for f in (ROOT / "scenarios").glob("*.yaml") if f.name != "calibration.yaml"
    )
    files = sorted(files, key=lambda p: (p.stem != "baseline", p.stem))
    rows = []
    base_dir = None
    for f in files:
        out = Path(args.out) / f.stem
        if not (args.reuse and (out / "manifest.json").is_file()):
            print(f"running {f.name} ...", file=sys.stderr)
            if args.mode == "forecast":
                sim("forecast", str(f), "--particles", str(args.particles), "--replications", str(args.replications),
                    "--before", "0", "--scale", str(args.scale), "--seed", str(args.seed), "--out", str(out), "--force",
                    "--quiet")
            else:
                sim("run", str(f), "--replications", str(args.replications), "--scale", str(args.scale),
                    "--seed", str(args.seed), "--out", str(out), "--force", "--quiet")
        report = json.loads(sim("compare", str(out), "--format", "json", "--what", "targets"))
        paired = None
        if base_dir is not None:
            pair = json.loads(sim("compare", str(base_dir), str(out), "--format", "json", "--what", "paired"))
            paired = {p["metric"]: p for p in pair.get("paired", [])}
        if f.stem == "baseline":
            base_dir = out
        for t in report["targets"]:
            rows.append((f.stem, t, paired))
    print(f"\nTargets from `python tools/scenario_table.py --mode {args.mode} --replications {args.replications} "
          f"--particles {args.particles} --scale {args.scale} --seed {args.seed}`:\n")
    print("| scenario | target | probability [95% CI] | AITO deliveries 2026-01..2027-12, mean [5%, 95%] | median month reached | vs baseline (paired mean difference [90%]) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for stem, t, paired in rows:
        d = (paired or {}).get(f"{t['name']}: window deliveries")
        diff = "" if d is None else f"{d['mean_diff']:+,.0f} [{d['diff_p5']:+,.0f}, {d['diff_p95']:+,.0f}]"
        print(f"| {stem} | {t['name']} | {t['probability']:.2f} [{t['probability_low']:.2f}-{t['probability_high']:.2f}] | "
              f"{t['delivered_mean']:,.0f} [{t['delivered_p5']:,.0f}, {t['delivered_p95']:,.0f}] | "
              f"{t['month_reached_median'] or 'not reached'} | {diff} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
