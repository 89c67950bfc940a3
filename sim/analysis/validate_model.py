"""``sim validate-model``: pattern checks and price elasticities, does the model behave like the market it stands for?

``sim validate-model DIR`` reads a results folder (a ``sim run`` of a scenario from history
into the forecast, e.g. the baseline to 2027-12) and checks the patterns of MISSION.md
(:mod:`sim.analysis.patterns`), each pass or fail with the figure it rests on. With
``--elasticities`` it also runs +-5% price shocks on the folder's scenario and seeds and compares
the arc elasticities of orders with the published band (:mod:`sim.analysis.elasticities`).
:func:`validation_report` gathers both; :func:`format_markdown` writes the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.elasticities import SHOCK, elasticity_checks, plan_elasticities, run_elasticities
from sim.analysis.patterns import pattern_checks
from sim.runs import store
from sim.scenario.months import format_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError


def _scenario(manifest: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(manifest["scenario"])
    except Exception as exc:
        raise InputError(f"the results' manifest holds no scenario this code can read: {exc}") from None


def validation_report(results: str | Path, *, counterfactual: str | Path | None = None, elasticity: bool = False, month: str = "2024-06", products: int | None = 12,
                      replications: int = 2, scale: float = 100.0, workers: int | None = None,
                      executor: str = "processes", keep: Path | None = None, progress: bool = True,
                      kernel: str = "numba") -> dict[str, Any]:
    """Pattern checks (and, optionally, elasticities) of a results folder, as a dict (``kernel``: the
    choice kernel of the shock runs)."""
    res = store.load_results(results)
    if res.sales.empty:
        raise InputError(f"{results}: no sales stored")
    sc = _scenario(res.manifest)
    ok = res.runs.loc[res.runs["status"] == "ok", "run_id"]
    sales = res.sales[res.sales["run_id"].isin(ok)]
    out: dict[str, Any] = {
        "results": str(results), "scenario": sc.name, "runs": int(len(ok)), "scale": res.manifest.get("scale"),
        "months": f"{sales['month'].min()}..{sales['month'].max()}",
        "patterns": [c.as_dict() for c in pattern_checks(sales, sc, _ok_sales(counterfactual) if counterfactual else None)],
    }
    if counterfactual:
        out["counterfactual"] = str(counterfactual)
    if elasticity:
        seed = int(res.manifest.get("seed", sc.seed))
        plan = plan_elasticities(sc, sales, month=month, products=products, replications=replications, seed=seed, scale=scale,
                                 kernel=kernel)
        table = run_elasticities(plan, keep, workers=workers, executor=executor, progress=progress)
        out["elasticities"] = {
            "month": month, "shock": SHOCK, "replications": replications, "scale": scale, "seed": seed,
            "window": f"{format_month(plan.window[0])}..{format_month(plan.window[1])}", "runs": len(plan.specs),
            "table": table.replace({np.nan: None}).to_dict("records"),
            "checks": [c.as_dict() for c in elasticity_checks(table)],
        }
    return out


def _ok_sales(results: str | Path) -> pd.DataFrame:
    res = store.load_results(results)
    return res.sales[res.sales["run_id"].isin(res.runs.loc[res.runs["status"] == "ok", "run_id"])]


def _mark(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "n/a"}[passed]


def format_markdown(rep: dict[str, Any]) -> str:
    lines = [f"# Validation of `{rep['scenario']}`", "",
             f"Results: `{rep['results']}` ({rep['runs']} runs, scale {rep['scale']}, {rep['months']}); written by "
             "`sim validate-model`. Each pattern is computed on the stored runs (means over runs)"
             + (f"; the tax change against `{rep['counterfactual']}`." if rep.get("counterfactual") else "."), "",
             "## Patterns", "", "| pattern | result | figure |", "| --- | --- | --- |"]
    for c in rep["patterns"]:
        lines.append(f"| {c['pattern']} | {_mark(c['passed'])} | {c['figure']} |")
    lines.append("")
    for c in rep["patterns"]:
        if c["detail"]:
            lines.append(f"**{c['pattern']}**:")
            lines += [f"- {d}" for d in c["detail"]]
            lines.append("")
    if "elasticities" in rep:
        e = rep["elasticities"]
        lines += ["## Price elasticities", "",
                  f"List price x {1 + e['shock']:.2f} and x {1 - e['shock']:.2f} from {e['month']} on, same seeds ({e['runs']} runs, "
                  f"{e['replications']} replicate(s), scale {e['scale']:g}); arc elasticity of orders over {e['window']}.", "",
                  "| check | result | figure |", "| --- | --- | --- |"]
        for c in e["checks"]:
            lines.append(f"| {c['pattern']} | {_mark(c['passed'])} | {c['figure']} |")
        lines += ["", "| product | list price (RMB) | orders +5% | orders -5% | elasticity | note |",
                  "| --- | ---: | ---: | ---: | ---: | --- |"]
        for r in e["table"]:
            price = f"{r['price']:,.0f}" if r["price"] is not None else ""
            el = f"{r['elasticity']:.2f}" if r["elasticity"] is not None else "n/a"
            lines.append(f"| {r['product']} | {price} | {r['orders_up']:,.0f} | {r['orders_down']:,.0f} | {el} | {r.get('note', '')} |")
        lines.append("")
    return "\n".join(lines)
