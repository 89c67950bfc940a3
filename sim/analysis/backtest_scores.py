"""The scores of one backtest origin: the model's forecast (its replicates) and the benchmarks' point
forecasts of every figure reported after the origin (:mod:`sim.analysis.backtest`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.analysis.benchmarks import benchmark_forecasts
from sim.analysis.drift import horizon_variance, level_weight
from sim.analysis.scores import figure_scores, point_scores
from sim.runs import store
from sim.scenario.months import parse_month


def entity_months(sales: pd.DataFrame) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Units per run and month of every brand and product in the China market.

    Returns:
        ``{"brand": (months, {brand: runs x months}), "model": (...)}`` with month indices.
    """
    cn = sales[(sales["market"] == "CN")]
    months = np.array(sorted({parse_month(m) for m in cn["month"].unique()}), int)
    col = {m: i for i, m in enumerate(months)}
    runs = np.array(sorted(cn["run_id"].unique()))
    row = {r: i for i, r in enumerate(runs)}
    out: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
    for level in ("brand", "model"):
        g = cn.groupby(["run_id", level, "month"], observed=True)["units"].sum().reset_index()
        tables: dict[str, np.ndarray] = {}
        for name, sub in g.groupby(level, observed=True):
            a = np.zeros((runs.size, months.size))
            a[sub["run_id"].map(row).to_numpy(), sub["month"].map(lambda m: col[parse_month(m)]).to_numpy()] = sub["units"]
            tables[str(name)] = a
        out[level] = (months, tables)
    return out


def figure_samples(by_entity: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], fig: pd.Series) -> np.ndarray | None:
    """Each run's forecast of one figure (vehicles over its months); None if the model has no such entity or months."""
    level = "model" if fig["model"] is not None and not pd.isna(fig["model"]) else "brand"
    months, tables = by_entity[level]
    name = fig["model"] if level == "model" else fig["brand"]
    if name not in tables:
        return None
    lo, hi = int(fig["start_index"]), int(fig["end_index"])
    if lo < months[0] or hi > months[-1]:
        return None
    cols = (months >= lo) & (months <= hi)
    return tables[name][:, cols].sum(axis=1)


def score_forecast(
    results: store.Results, figs: pd.DataFrame, origin: str, *, with_spread: bool = False
) -> pd.DataFrame:
    """Per-figure scores of the model's forecast in a results folder."""
    ok = results.runs.loc[results.runs["status"] == "ok", "run_id"]
    sales = results.sales[results.sales["run_id"].isin(ok)]
    by_entity = entity_months(sales)
    o = parse_month(origin)
    rows = []
    for _, fig in figs.iterrows():
        samples = figure_samples(by_entity, fig)
        if samples is None:
            continue
        row = {"origin": origin, "line": int(fig["line"]), "entity": fig["entity"], "brand": fig["brand"],
               "model": fig["model"], "start": fig["start"], "end": fig["end"], "frequency": fig["frequency"],
               "horizon": int(fig["end_index"]) - o, "value": float(fig["value"]), "qualifier": fig["qualifier"],
               "confidence": fig["confidence"], "forecaster": "model"}  # fmt: skip
        row |= figure_scores(float(fig["value"]), float(fig["low"]), float(fig["high"]), str(fig["qualifier"]), samples)
        if with_spread:
            logs = np.log(np.maximum(samples, 1.0))
            row["spread"] = float(np.var(logs, ddof=1)) if logs.size > 1 else 0.0
            level = "model" if fig["model"] is not None and not pd.isna(fig["model"]) else "brand"
            months, tables = by_entity[level]
            cols = (months >= int(fig["start_index"])) & (months <= int(fig["end_index"]))
            shares = tables[str(fig["entity"])][:, cols].mean(axis=0)
            row["H"] = horizon_variance(months[cols] - o, shares)
            row["L"] = level_weight(months[cols] - o, shares)
            row["level"] = "product" if level == "model" else "brand"
        rows.append(row)
    return pd.DataFrame(rows)


def score_benchmarks(figs: pd.DataFrame, history: pd.DataFrame, origin: str, first: dict[str, int | None],
                     horizon: int) -> pd.DataFrame:
    """Per-figure scores of every benchmark forecaster fitted to ``history`` (figures up to ``origin``)."""
    bench = benchmark_forecasts(figs, history, origin, first, horizon=horizon)
    info = figs.set_index(["line", "entity"])
    rows = []
    for _, b in bench.iterrows():
        fig = info.loc[(b["line"], b["entity"])]
        if isinstance(fig, pd.DataFrame):
            fig = fig.iloc[0]
        row = {"origin": origin, "line": int(b["line"]), "entity": b["entity"], "brand": fig["brand"],
               "model": fig["model"], "start": fig["start"], "end": fig["end"], "frequency": fig["frequency"],
               "horizon": int(b["horizon"]), "value": float(fig["value"]), "qualifier": fig["qualifier"],
               "confidence": fig["confidence"], "forecaster": b["benchmark"], "note": b["note"]}  # fmt: skip
        if np.isfinite(b["forecast"]):
            row |= point_scores(float(fig["value"]), str(fig["qualifier"]), float(fig["low"]), float(fig["high"]),
                                float(b["forecast"]))
        rows.append(row)
    return pd.DataFrame(rows)
