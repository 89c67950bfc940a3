"""Fitting appeal parameters to reported volumes (a first, deterministic calibration).

``fit_appeals`` adjusts brand and product mean utilities (``appeal``) so that the
simulated deliveries match the reported monthly, quarterly, annual and cumulative
(period-sum) figures through a cut-off month (Dec 2024 by default: later volumes
are kept out of the fit on purpose).

Method: regularised, damped Gauss-Newton on log volumes. The residual of target
``t`` is ``log(simulated_t / reported_t)``; its derivative with respect to an
appeal is the nested-logit share derivative, ``(1 / lambda)`` times the share of
the target's units that the parameter moves (a brand's appeal moves all its
products). Every product of a brand with figures is free; a ridge term damps each
step (Levenberg-style), which keeps weakly identified products near where they are. Each
iteration runs the model with the same seeds (common random numbers), so the fit
is deterministic. The ensemble calibration of parameter uncertainty belongs to a
later step; this gives the baseline its starting values, and the command that
produced them is written at the top of the overlay it writes.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from .batch import BLAS_THREADS, collect
from .months import parse_month
from .run import execute, make_specs
from .scenario import Scenario, load_scenario

#: Weight of a reported figure by its confidence.
CONFIDENCE_WEIGHT = {"high": 1.0, "medium": 0.7, "low": 0.3}
VOLUME_MEASURES = ("deliveries", "sales", "retail", "registrations")


#: Weight of a figure by its frequency (many monthly figures should not drown the annual totals).
FREQUENCY_WEIGHT = {"annual": 1.0, "quarterly": 0.6, "monthly": 0.3, "cumulative": 0.6}


@dataclass(frozen=True)
class VolumeTarget:
    """A reported volume over a period that the fit aims at."""

    brand: str
    model: str | None
    start: str
    end: str
    value: float
    weight: float
    lines: str

    @property
    def key(self) -> str:
        period = self.start[:4] if (self.start.endswith("-01") and self.end == self.start[:4] + "-12") else (
            self.start if self.start == self.end else f"{self.start}..{self.end}")
        return f"{self.model or self.brand} {period}"


def volume_targets(scenario: Scenario, through: str, reported: Any = None) -> list[VolumeTarget]:
    """Monthly, quarterly and annual brand and product volumes reported up to ``through``.

    Only figures whose months lie inside the scenario are used. Conflicting sources for
    the same brand/product and period are averaged, weighted by confidence.
    """
    from .reported import load_reported

    rf = reported if reported is not None else load_reported()
    fig = rf.figures
    cut = min(parse_month(through), scenario.end_index)
    brands = {b.name for b in scenario.brands}
    products = {p.name for p in scenario.products}
    sel = fig[
        (fig["measure"].isin(VOLUME_MEASURES) | (fig["measure"] == "cumulative"))
        & fig["frequency"].isin(list(FREQUENCY_WEIGHT))
        & fig["brand"].notna()
        & fig["basis"].fillna("").isin(["", "brand", "group"])
        & fig["confidence"].isin(list(CONFIDENCE_WEIGHT))
        & fig["value"].notna()
    ].copy()
    sel = sel[(sel["end"].map(parse_month) <= cut) & (sel["start"].map(parse_month) >= scenario.start_index)]
    # A cumulative figure is a period sum only when its first month is known (start before end).
    sel = sel[(sel["frequency"] != "cumulative") | (sel["start"] < sel["end"])]
    if "cumulative_of" in sel.columns:
        sel = sel[(sel["frequency"] != "cumulative") | sel["cumulative_of"].isin(["deliveries", "sales"])]
    sel = sel[sel["brand"].isin(brands) & (sel["model"].isna() | sel["model"].isin(products))]
    sel["w"] = sel["confidence"].map(CONFIDENCE_WEIGHT)
    out = []
    keys = ["brand", sel["model"].fillna(""), "start", "end", "frequency"]
    for (brand, model, start, end, freq), g in sel.groupby(keys, sort=True):
        value = float(np.average(g["value"], weights=g["w"]))
        weight = float(g["w"].max()) * FREQUENCY_WEIGHT[freq]
        out.append(VolumeTarget(brand, model or None, start, end, value, weight, ",".join(map(str, g["line"]))))
    return out


def simulate_monthly(scenario: Scenario, replications: int, seed: int, scale: float | None) -> pd.DataFrame:
    """Mean monthly units per brand and product over replicates (China market)."""
    specs = make_specs(scenario, replications, seed=seed, scale=scale)
    with threadpool_limits(BLAS_THREADS):  # as in batches, so that fits and batches agree bit for bit
        runs, sales = collect([execute(s) for s in specs])
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"a fitting run failed:\n{failed['error'].iloc[0]}")
    sales = sales[sales["market"] == "CN"]
    per = sales.groupby(["replicate", "brand", "model", "month"], observed=True)[["units"]].sum()
    out = per.groupby(["brand", "model", "month"], observed=True).mean().reset_index()
    out["m"] = out["month"].map(parse_month)
    return out


def _target_rows(sim: pd.DataFrame, t: VolumeTarget) -> pd.DataFrame:
    rows = sim[(sim["brand"] == t.brand) & (sim["m"] >= parse_month(t.start)) & (sim["m"] <= parse_month(t.end))]
    return rows[rows["model"] == t.model] if t.model else rows


def _residuals(targets: list[VolumeTarget], sim: pd.DataFrame) -> tuple[np.ndarray, list[float]]:
    res, got = [], []
    for t in targets:
        units = float(_target_rows(sim, t)["units"].sum())
        got.append(units)
        res.append(np.log(max(units, 1.0) / t.value))
    return np.array(res), got


def fit_appeals(
    path: str | Path,
    *,
    through: str = "2024-12",
    replications: int = 2,
    seed: int = 1,
    scale: float | None = None,
    iterations: int = 12,
    tolerance: float = 0.03,
    ridge: float = 0.2,
    reported: Any = None,
    log: Any = sys.stderr,
) -> tuple[dict[str, float], dict[str, float], pd.DataFrame]:
    """Fit brand and product appeals to reported volumes up to ``through``.

    Returns:
        ``(brand_appeal, product_appeal, report)``: fitted values (only for fitted
        parameters) and a table of targets with reported and simulated units.
    """
    base = load_scenario(path)
    targets = volume_targets(base, through, reported)
    if not targets:
        raise ValueError("no reported volumes to fit")
    end = min(parse_month(through), base.end_index)
    brands = sorted({t.brand for t in targets})
    # Every product of a brand with figures is free, so that products launched at different
    # times can share out a brand's yearly totals; the ridge term damps the steps.
    fit_end = min(parse_month(through), base.end_index)
    prods = sorted(
        p.name for p in base.products
        if p.brand in brands and parse_month(p.delivery_start or p.launch) <= fit_end
    )
    product_brand = {p.name: p.brand for p in base.products}
    params = [("brand", b) for b in brands] + [("product", p) for p in prods]
    theta = np.array(
        [next(x.appeal for x in base.brands if x.name == n) if k == "brand" else next(x.appeal for x in base.products if x.name == n) for k, n in params]
    )
    lam = base.buyers.choice.nest_lambda if base.buyers.choice.model == "nested_logit" else 1.0
    weights = np.array([t.weight for t in targets])
    report = pd.DataFrame()
    for it in range(iterations + 1):
        over: dict[str, Any] = {"end": f"{end // 12:04d}-{end % 12 + 1:02d}"}
        for (kind, name), value in zip(params, theta, strict=True):
            over[f"{'brands' if kind == 'brand' else 'products'}.{name}.appeal"] = float(value)
        sc = load_scenario(path, over)
        sim = simulate_monthly(sc, replications, seed, scale)
        r, got = _residuals(targets, sim)
        report = pd.DataFrame(
            {"target": [t.key for t in targets], "reported": [t.value for t in targets], "simulated": got,
             "pct_error": 100 * (np.array(got) / np.array([t.value for t in targets]) - 1), "lines": [t.lines for t in targets]}
        )
        worst = float(np.max(np.abs(r)))
        print(f"fit iteration {it}: max |log error| {worst:.3f}, weighted RMS {np.sqrt(np.average(r**2, weights=weights)):.3f}", file=log)
        if worst < tolerance or it == iterations:
            break
        # Gauss-Newton step on log volumes with the logit share derivative as Jacobian:
        # d log(units of a target) / d appeal = (1/lambda) * share of the target's units moved by it.
        jac = np.zeros((len(targets), len(params)))
        for i, t in enumerate(targets):
            rows = _target_rows(sim, t)
            total = max(float(rows["units"].sum()), 1.0)
            for k, (kind, name) in enumerate(params):
                if kind == "brand" and name == t.brand:
                    jac[i, k] = 1.0 / lam
                elif kind == "product" and product_brand[name] == t.brand and (t.model is None or t.model == name):
                    jac[i, k] = (float(rows.loc[rows["model"] == name, "units"].sum()) / total) / lam
        wj = jac * weights[:, None]
        step = -np.linalg.solve(jac.T @ wj + ridge * np.eye(len(params)), wj.T @ r)
        theta = theta + np.clip(0.8 * step, -1.5, 1.5)
    brand_fit = {n: round(float(v), 4) for (k, n), v in zip(params, theta, strict=True) if k == "brand"}
    prod_fit = {n: round(float(v), 4) for (k, n), v in zip(params, theta, strict=True) if k == "product"}
    return brand_fit, prod_fit, report


def write_overlay(
    out: str | Path,
    extends: str,
    name: str,
    brand_fit: dict[str, float],
    product_fit: dict[str, float],
    report: pd.DataFrame,
    command: str,
    description: str = "",
) -> None:
    """Write a scenario that extends ``extends`` and sets the fitted appeals."""
    header = [
        "# Generated by the appeal fit (sim/calibrate.py); do not edit by hand, rerun:",
        f"#   {command}",
        "# Fitted to reported volumes up to the cut-off (scenarios/reported/figures.csv lines in brackets):",
    ]
    for _, row in report.iterrows():
        header.append(
            f"#   {row['target']:<28} reported {row['reported']:>10,.0f}  simulated {row['simulated']:>10,.0f}  "
            f"({row['pct_error']:+.1f}%)  [lines {row['lines']}]"
        )
    doc: dict[str, Any] = {"name": name, "extends": extends}
    if description:
        doc["description"] = description
    doc["brands"] = [{"name": b, "appeal": v} for b, v in brand_fit.items()]
    doc["products"] = [{"name": p, "appeal": v} for p, v in product_fit.items()]
    text = "\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    Path(out).write_text(text)


def add_calibrate_commands(sub: Any) -> None:
    """Register ``sim fit-appeals``."""
    p = sub.add_parser("fit-appeals", help="fit brand/product appeals to reported volumes (writes an overlay scenario)")
    p.add_argument("scenario", help="the scenario to fit (e.g. scenarios/base/market.yaml)")
    p.add_argument("--through", default="2024-12", help="last month of data used (default 2024-12)")
    p.add_argument("--replications", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float)
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--write", required=True, help="overlay scenario to write (e.g. scenarios/baseline.yaml)")
    p.add_argument("--name", default="baseline")
    p.set_defaults(func=_cmd_fit)


def _cmd_fit(args: Any) -> int:
    import os

    brand_fit, prod_fit, report = fit_appeals(
        args.scenario, through=args.through, replications=args.replications, seed=args.seed,
        scale=args.scale, iterations=args.iterations,
    )
    out = Path(args.write)
    extends = os.path.relpath(Path(args.scenario).resolve(), out.resolve().parent)
    command = "sim " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("sim") else "sim fit-appeals ..."
    write_overlay(out, extends, args.name, brand_fit, prod_fit, report, command)
    print(report.to_string(index=False))
    print(f"wrote {out}")
    return 0
