"""Where a forecast's spread comes from: the variance of a target's deliveries, source by source.

A forecast carries five sources of uncertainty beyond the agents' sampling noise: the fitted
parameters (the scenario's ``ensemble``, draws from the fit's posterior), the appeal offsets at the
first month after the data and their drift, the market's size and growth, the capacities that are assumptions, and the appeal of
products launched after the data (:mod:`sim.scenario.uncertainty`). The decomposition runs the
scenario on the same seeds (common random numbers) with every source on (``all``), with none
(``none``: the agents' sampling noise alone), and with each source alone, and reports for the
target's deliveries in its window:

* the variance with each source alone less the variance with none: that source's first-order
  contribution (clipped at zero: with few replicates a small source can come out negative);
* each contribution's share of their sum;
* the interaction: what the variance with all sources on has beyond the sum of the parts.

It is a one-at-a-time decomposition: with sources that interact (a capacity that binds only when
demand drifts up), the shares describe each source on its own, and the interaction term says how
much they do not add up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.analysis.targets import summarize, target_outcomes
from sim.runs import store
from sim.runs.scenario_batch import run_request, run_scenario
from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

#: The sources, in the order they are reported.
SOURCES = ("parameters", "drift", "market", "capacities", "new_products")
#: File the decomposition is written to, in the folder of its batches.
DECOMPOSITION = "decomposition.json"


def source_overrides(scenario: Scenario, on: tuple[str, ...]) -> dict[str, Any]:
    """Scenario values by path that switch off every source not in ``on``."""
    off: dict[str, Any] = {}
    if "parameters" not in on and scenario.ensemble is not None:
        off["ensemble"] = None
    if "drift" not in on:  # the appeal offsets at the first uncertain month and their random walk
        off |= {"uncertainty.brand_drift": 0.0, "uncertainty.product_drift": 0.0, "uncertainty.brand_level": 0.0,
                "uncertainty.product_level": 0.0}
    if "market" not in on:
        off |= {"uncertainty.market_level": 0.0, "uncertainty.market_growth": 0.0}
    if "capacities" not in on:
        off["uncertainty.capacity_ranges"] = False
    if "new_products" not in on:
        off["uncertainty.new_product_appeal"] = 0.0
    return off


def configurations() -> dict[str, tuple[str, ...]]:
    """Every configuration run: all sources, none, and each alone."""
    return {"all": SOURCES, "none": (), **{s: (s,) for s in SOURCES}}


def run_decomposition(
    scenario: str | Path,
    out: str | Path,
    *,
    seed: int,
    replications: int,
    scale: float | None = None,
    overrides: dict[str, Any] | None = None,
    kernel: str = "numba",
    workers: int | None = None,
    executor: str = "processes",
    progress: bool = False,
) -> dict[str, Any]:
    """Run every configuration into ``out/<name>`` (resumable) and write ``out/decomposition.json``."""
    out = Path(out)
    base = load_scenario(scenario, overrides)
    for name, on in configurations().items():
        sc = load_scenario(scenario, {**(overrides or {}), **source_overrides(base, on)})
        folder = out / name
        if (folder / store.MANIFEST).exists():
            stored = store.read_manifest(folder)
            if stored.get("request") != run_request(sc, seed, replications, scale):
                # runs of another scenario, seed, scale or count: continuing them would mix two batches
                raise InputError(f"{folder}: holds runs of another request than this decomposition's (scenario, "
                                 "seed, replications or scale); start again with --force or use another --out")
            if stored.get("status") == "complete":
                continue
        run_scenario(sc, folder, replications=replications, seed=seed, scale=scale, kernel=kernel, workers=workers,
                     executor=executor, resume=True, progress=progress, label=f"{base.name}: {name}",
                     decomposition=name)  # fmt: skip
    result = decompose({name: store.load_results(out / name) for name in configurations()}, base)
    (out / DECOMPOSITION).write_text(json.dumps(result, indent=2))
    return result


def decompose(results: dict[str, store.Results], scenario: Scenario) -> dict[str, Any]:
    """The decomposition of each target's deliveries from the configurations' results."""
    targets = []
    for t in scenario.targets:
        var, mean, prob = {}, {}, {}
        for name, res in results.items():
            ok = res.runs.loc[res.runs["status"] == "ok", "run_id"]
            oc = target_outcomes(res.sales[res.sales["run_id"].isin(ok)], t.brand, t.units, t.start, t.by)
            d = oc["delivered"].to_numpy(float)
            var[name] = float(np.var(d, ddof=1)) if d.size > 1 else 0.0
            mean[name] = float(d.mean()) if d.size else float("nan")
            prob[name] = summarize(oc, t.units)
        parts = {s: max(var[s] - var["none"], 0.0) for s in SOURCES if s in var}
        total = sum(parts.values())
        targets.append({
            "target": t.name, "brand": t.brand, "units": t.units, "start": t.start, "by": t.by,
            "sd_all": var["all"] ** 0.5, "sd_agents": var["none"] ** 0.5,
            "sources": {s: {"sd": parts[s] ** 0.5, "share": parts[s] / total if total > 0 else 0.0,
                            "mean": mean[s], "probability": prob[s]["probability"]} for s in parts},
            "interaction_variance": var["all"] - var["none"] - total,
            "mean_all": mean["all"], "probability_all": prob["all"]["probability"],
            "probability_all_interval": [prob["all"]["probability_low"], prob["all"]["probability_high"]],
            "runs": int(prob["all"]["runs"]),
        })  # fmt: skip
    return {"scenario": scenario.name, "sources": list(SOURCES), "targets": targets}


def read_decomposition(folder: str | Path) -> dict[str, Any] | None:
    """The decomposition stored beside (or in) a results folder, if any."""
    for path in (Path(folder) / DECOMPOSITION, Path(folder).parent / DECOMPOSITION):
        if path.exists():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    return None


def format_decomposition(d: dict[str, Any]) -> str:
    """The decomposition as plain lines."""
    lines = []
    for t in d["targets"]:
        lo, hi = t["probability_all_interval"]
        lines.append(f"Target '{t['target']}': probability {t['probability_all']:.2f} [95% CI {lo:.2f}-{hi:.2f}] over "
                     f"{t['runs']} runs; {t['brand']} deliveries {t['start']}..{t['by']}: mean {t['mean_all']:,.0f}, "
                     f"sd {t['sd_all']:,.0f}")  # fmt: skip
        lines.append("  where the spread comes from (sd of each source alone, share of the sum of variances):")
        lines.append(f"    {'agents sampling noise':<24} sd {t['sd_agents']:>10,.0f}")
        for s, v in t["sources"].items():
            lines.append(f"    {s.replace('_', ' '):<24} sd {v['sd']:>10,.0f}  {100 * v['share']:5.1f}%")
        lines.append(f"    {'interaction':<24} variance {t['interaction_variance']:,.0f}")
    return "\n".join(lines)
