"""Exploratory modelling of the AITO M6 launch with the EMA Workbench.

Builds an EMA model from the shipped sweep ``sweeps/m6_price_by_launch`` (the M6's list price and
launch month; the deliveries follow the launch) with :func:`sim.ema.ema_model`, runs a Latin
hypercube of experiments with the sequential and with the multiprocessing evaluator, checks that
both give identical outcomes, then asks which input matters (feature scoring) and where AITO
delivers the most (PRIM).

    python examples/explore_with_ema.py                          # 16 experiments, scale 4000
    python examples/explore_with_ema.py --file calibration --experiments 32 --end 2027-12

Needs the ``ema`` extra (``pip install 'sim[ema]'``). Imports only sim's public names and
ema_workbench. Runs from any folder: the files are the shipped ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from ema_workbench import MultiprocessingEvaluator, Samplers, SequentialEvaluator, perform_experiments
from ema_workbench.analysis import feature_scoring, prim

import sim
import sim.ema


def experiments_with(evaluator_class: type, model: object, n: int, seed: int, **kwargs: object) -> tuple[pd.DataFrame, dict]:
    """``n`` Latin-hypercube experiments of ``model`` on an evaluator of ``evaluator_class``."""
    # EMA's samplers draw from numpy's global generator: seed it, so that both evaluators get the same design.
    np.random.seed(seed)
    with evaluator_class(model, **kwargs) as evaluator:
        return perform_experiments(model, scenarios=n, uncertainty_sampling=Samplers.LHS, evaluator=evaluator,
                                   log_progress=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default="sweeps/m6_price_by_launch", help="a sweep or calibration file (or a shipped one's name)")
    ap.add_argument("--experiments", type=int, default=16)
    ap.add_argument("--scale", type=float, default=4000.0, help="real buyers per buyer agent (coarse: fast)")
    ap.add_argument("--end", help="the runs' last month (default: the scenario's)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="seed of the experimental design")
    ap.add_argument("--out", type=Path, help="write the experiments and outcomes of both evaluators here (CSV)")
    args = ap.parse_args(argv)

    model = sim.ema.ema_model(args.file, scale=args.scale, end=args.end, brands=["AITO"], years=[2026, 2027], shares=False)
    print(f"{model.name}: uncertainties {[u.name for u in model.uncertainties]}, {len(model.outcomes)} outcomes")

    runs = {
        "sequential": experiments_with(SequentialEvaluator, model, args.experiments, args.seed),
        "multiprocessing": experiments_with(MultiprocessingEvaluator, model, args.experiments, args.seed,
                                            n_processes=args.processes),
    }  # fmt: skip
    (exp_s, out_s), (exp_m, out_m) = runs["sequential"], runs["multiprocessing"]
    inputs = [u.name for u in model.uncertainties]
    same_design = exp_s[inputs].equals(exp_m[inputs])
    same_outcomes = all(np.array_equal(out_s[k], out_m[k], equal_nan=True) for k in out_s)
    print(f"same experiments: {same_design}; identical outcomes (sequential vs multiprocessing): {same_outcomes}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, (exp, out) in runs.items():
            exp.to_csv(args.out / f"{name}_experiments.csv", index=False)
            pd.DataFrame(out).to_csv(args.out / f"{name}_outcomes.csv", index=False)

    delivered = next(k for k in out_s if k.endswith("_delivered"))  # the target window's AITO deliveries
    x = exp_s[inputs]
    scores = feature_scoring.get_feature_scores_all(x, {delivered: out_s[delivered]}, random_state=args.seed)
    print(f"feature scores (extra trees) of {delivered}:\n{scores.round(3).to_string()}")

    high = out_s[delivered] >= np.quantile(out_s[delivered], 0.75)  # the best quarter of the experiments
    box = prim.Prim(x, high, threshold=0.6, peel_alpha=0.1).find_box()
    print(f"PRIM: where {delivered} is in its top quarter (coverage {box.coverage:.2f}, density {box.density:.2f}):")
    print(box.box_lim.to_string())
    return 0 if same_design and same_outcomes else 1


if __name__ == "__main__":
    sys.exit(main())
