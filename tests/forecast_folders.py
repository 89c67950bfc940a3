"""A small forecast folder, a decomposition beside it and a backtest folder, for the presentation tests.

The forecast (:func:`forecast_folder`) is a real ``sim forecast`` (:func:`sim.analysis.forecast.run_forecast`)
of the drifting tiny market of tests/test_assimilation.py, assimilating monthly figures of both
brands taken from a run of the model itself, a one-sided figure (brand A's last month: "over" 80%
of the truth), a quarterly figure of brand B and a cumulative milestone of brand A, with replicates
before the last month's figures (``before/``). The decomposition (:func:`decomposition_folder`) is a
real ``sim decompose`` of the same market. The backtest (:func:`backtest_folder`) holds synthetic
per-figure scores whose every error is known, summarized by the backtest's own
:func:`sim.analysis.backtest.summarize_backtest`.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from test_assimilation import MARKET as DRIFTING
from test_assimilation import SCALE

from sim.analysis.backtest import BacktestPlan, summarize_backtest
from sim.analysis.reported import FIGURE_COLUMNS
from sim.model.market_model import MarketModel
from sim.runs import store
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month

#: The drifting market of tests/test_assimilation.py, with a target in the forecast.
MARKET = DRIFTING + "targets:\n  - {name: A in the forecast, brand: A, units: 30000, start: 2024-09, by: 2025-06}\n"
FIRST, ORIGIN = "2024-04", "2024-08"
PARTICLES, REPLICATIONS, BEFORE = 8, 6, 4


def _row(line: int, entity: str, start: str, end: str, value: float, qualifier: str = "=", **kw: object) -> dict:
    monthly = start == end
    row = {"line": line, "date": end, "entity": entity, "metric": "deliveries", "raw_value": f"{value:.0f}",
           "unit": "vehicles", "raw_unit": "vehicles", "source": "test", "quote": "", "confidence": "high",
           "granularity": "month" if monthly else "quarter", "start": start, "end": end, "measure": "deliveries",
           "frequency": "monthly" if monthly else "quarterly", "cumulative_of": None, "value": value,
           "low": value, "high": np.inf if qualifier == ">" else value, "qualifier": qualifier, "brand": entity,
           "model": None, "basis": "", "market": "CN", "note": ""}  # fmt: skip
    return row | kw


def figures_of_a_run(scenario_path: Path) -> pd.DataFrame:
    """Reported figures read off one run of the market (seed 9): brand A's months (its last as a lower
    bound at 80% of the truth), brand B's quarter 2024-06..2024-08, brand A's cumulative to 2024-08-20."""
    scenario = load_scenario(scenario_path)
    model = MarketModel(scenario, seed=9, scale=SCALE)
    monthly: dict[str, dict[str, float]] = {}
    while model.t == 0 or model.month_index < parse_month(ORIGIN):
        model.step()
        monthly[model.month_label] = {name: float(model.month_units[model.product_brand == b, 0].sum())
                                      for b, name in enumerate(model.brand_names)}  # fmt: skip
    rows = []
    for m in (format_month(i) for i in range(parse_month(FIRST), parse_month(ORIGIN) + 1)):
        a = monthly[m]["A"]
        rows.append(_row(len(rows) + 2, "A", m, m, 0.8 * a if m == ORIGIN else a, ">" if m == ORIGIN else "="))
    rows.append(_row(len(rows) + 2, "B", "2024-06", ORIGIN, sum(monthly[m]["B"] for m in ("2024-06", "2024-07", ORIGIN))))
    cumulative = sum(v["A"] for k, v in monthly.items() if k < ORIGIN) + 20 / 31 * monthly[ORIGIN]["A"]
    rows.append(_row(len(rows) + 2, "A", scenario.start, ORIGIN, cumulative, date=f"{ORIGIN}-20", metric="cumulative",
                     measure="cumulative", frequency="point", granularity="day"))  # fmt: skip
    return pd.DataFrame(rows, columns=list(FIGURE_COLUMNS))


def forecast_folder(root: Path) -> Path:
    """``root/forecast``: the forecast of the drifting market (made once; reused when complete)."""
    from sim.analysis.forecast import run_forecast

    out = root / "forecast"
    if (out / store.MANIFEST).exists() and store.read_manifest(out).get("status") == "complete":
        return out
    root.mkdir(parents=True, exist_ok=True)
    path = root / "drifting.yaml"
    path.write_text(MARKET)
    scenario = load_scenario(path)
    run_forecast(scenario, store.prepare_output(out), scenario_file=str(path), figures=figures_of_a_run(path),
                 figures_files=[], origin=parse_month(ORIGIN), particles=PARTICLES, replications=REPLICATIONS, seed=3,
                 before=BEFORE, scale=SCALE, executor="serial", progress=False, log=io.StringIO())  # fmt: skip
    return out


def decomposition_folder(root: Path) -> Path:
    """``root/decomposition``: ``sim decompose`` of the drifting market (3 runs per configuration)."""
    from sim.analysis.decomposition import DECOMPOSITION, run_decomposition

    out = root / "decomposition"
    if not (out / DECOMPOSITION).exists():
        path = root / "drifting.yaml"
        path.write_text(MARKET)
        run_decomposition(path, out, seed=3, replications=3, scale=SCALE, executor="serial")
    return out


#: The synthetic backtest: origins, horizons, and each forecaster's log error (the model's, then the benchmarks').
BT_ORIGINS = ("2023-12", "2024-06")
BT_ERRORS = {"model": 0.10, "seasonal_naive": 0.20, "bass": 0.40}
#: The previous origin's fit's log error with the figures since assimilated, and without them, scored for
#: brand AITO at the first horizons only.
BT_ASSIMILATED, BT_ASSIMILATED_HORIZONS = 0.05, (1, 2)
BT_STALE = 0.08


def _score(origin: str, line: int, brand: str, h: int, name: str, err: float) -> dict:
    month = format_month(parse_month(origin) + h)
    model = name.startswith("model")
    return {"origin": origin, "line": line, "entity": brand, "brand": brand, "model": None, "start": month,
            "end": month, "frequency": "monthly", "horizon": h, "value": 1000.0, "qualifier": "=", "confidence": "high",
            "forecaster": name, "forecast": 1000.0 * np.exp(err), "error": np.expm1(err), "log_error": err,
            "abs_log_error": err, "covered_50": float(h <= 2) if model else np.nan,
            "covered_90": float(h <= 3 or name != "model") if model else np.nan, "crps": err / 2 if model else np.nan,
            "interval_score_50": np.nan, "interval_score_90": np.nan}  # fmt: skip


def backtest_folder(root: Path) -> Path:
    """``root/backtest``: backtest.json and scores.parquet of a synthetic backtest.

    Every origin scores brands AITO and X at horizons 1..4; the model's log error is 0.10 (its 50% band
    covers the figures at horizons 1-2, its 90% band at 1-3), the seasonal naive's 0.20 and Bass's 0.40,
    so the model's error relative to them is 0.5 and 0.25 at every horizon. The previous origin's fit
    scored AITO at horizons 1-2 only, with a log error of 0.05 with the figures since assimilated and
    0.08 without, both bands covering.
    """
    out = root / "backtest"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for origin in BT_ORIGINS:
        for line, brand in enumerate(("AITO", "X"), start=2):
            for h in range(1, 5):
                rows += [_score(origin, 10 * line + h, brand, h, name, err) for name, err in BT_ERRORS.items()]
                if brand == "AITO" and h in BT_ASSIMILATED_HORIZONS:
                    rows.append(_score(origin, 10 * line + h, brand, h, "model_assimilated", BT_ASSIMILATED))
                    rows.append(_score(origin, 10 * line + h, brand, h, "model_stale", BT_STALE))
    scores = pd.DataFrame(rows)
    plan = BacktestPlan(market="scenarios/base/market.yaml", origins=BT_ORIGINS, horizon=4, through="2024-12")
    summary = summarize_backtest(scores, plan, {})
    scores.to_parquet(out / "scores.parquet", index=False)
    (out / "backtest.json").write_text(json.dumps({"kind": "backtest", "plan": asdict(plan), "summary": summary}, default=str))
    return out
