"""``sim backtest``: rolling-origin evaluation of the model's forecasts against simple forecasters.

At each origin ``T`` (by default every quarter end from 2023-03 to 2024-06) the model is refitted on
the reported figures dated up to ``T`` only, by the procedure that made the shipped baseline (the
appeal fit, :func:`sim.analysis.fit_appeals.fit`, whose Laplace posterior gives the parameter
draws), and forecasts the months after ``T`` with every uncertainty it carries (parameters, appeal
drift, market, assumed capacities, new products' appeal; :mod:`sim.scenario.uncertainty`). Every
reported figure dated after ``T`` (its last month, through ``through``) that maps to a model output,
1 to ``horizon`` months ahead, is scored: the log error of the replicates' mean, the coverage of
their 50% and 90% bands, the interval scores and the CRPS (:mod:`sim.analysis.backtest_scores`,
:mod:`sim.analysis.scores`). The same figures are forecast by the benchmarks of
:mod:`sim.analysis.benchmarks` fitted to the same figures, and the report gives the model's mean
absolute log error relative to each.

Future known events (launches, price changes, store openings, the policy calendar and the
capacities in the scenario) are inputs of the forecast, as they are in the production forecast.

**Bands set by past errors, not by hand.** The scale of the appeal drift (:mod:`sim.analysis.drift`)
used at an origin is estimated from forecasts made at earlier origins and scored on figures
already reported at that origin (prequential). Each origin is therefore forecast twice: a pilot
without drift, whose errors later origins learn the scale from, and the scored forecast with the
scale learnt so far. Warm-up origins before the first scored one give the first scale.

**Does assimilation help?** As in the production forecast (a fit through 2024-12, then the figures
reported since assimilated by a particle filter), each origin is also forecast from the fit made at
the *previous* origin, which has not seen the figures since: once with those figures assimilated
(``model_assimilated``: :mod:`sim.analysis.assimilation`, the appeal offsets starting the month after
the previous origin) and once without (``model_stale``: the same fit and draws, no filter). The
summary compares the two at horizons 1-6 on the same figures.

Layout of the output folder::

    DIR/backtest.json               the plan, versions, command, and the summary
    DIR/scores.parquet              one row per scored figure, origin and forecaster
    DIR/origins/YYYY-MM/fitted.yaml the fit at the origin (an overlay of the market scenario)
    DIR/origins/YYYY-MM/pilot/      results folder of the pilot forecast (no drift)
    DIR/origins/YYYY-MM/sensitivity/  the probe forecast that measures how far a util of drift moves the figures
    DIR/origins/YYYY-MM/forecast/   results folder of the scored forecast
    DIR/origins/YYYY-MM/stale/      the previous origin's fit, forecast from this origin without the figures since
    DIR/origins/YYYY-MM/assimilated/  ... and with them assimilated

A killed backtest continues where it stopped when run again with ``--resume``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim.analysis.backtest_scores import score_benchmarks, score_forecast
from sim.analysis.benchmarks import BENCHMARKS
from sim.analysis.drift import (
    NO_DRIFT,
    DriftEstimate,
    added_and_asked,
    estimate_brand_scales,
    estimate_drift,
    two_sided_upto,
)
from sim.analysis.figures import figures_upto, scorable_figures
from sim.analysis.fit_appeals import fit, write_overlay
from sim.analysis.reported import load_reported
from sim.analysis.scores import relative_mae, summarize
from sim.runs import store
from sim.runs.manifest import new_manifest
from sim.runs.progress import Quiet
from sim.runs.scenario_batch import run_scenario
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario

#: Scored origins by default: every quarter end from 2023-03 to 2024-06.
DEFAULT_ORIGINS = ("2023-03", "2023-06", "2023-09", "2023-12", "2024-03", "2024-06")
#: Warm-up origins: forecast (pilot only) to learn the first drift scale, not scored.
WARMUP_ORIGINS = ("2022-09", "2022-12")
#: The brands the headline relative errors pool over (the validation standard's five).
FOCUS_BRANDS = ("AITO", "Li Auto", "Tesla", "NIO", "Zeekr")


@dataclass(frozen=True)
class BacktestPlan:
    """What a backtest does.

    Attributes:
        market: the scenario fitted at each origin (the market before any fit).
        origins: scored origins (``YYYY-MM``). warmup: earlier origins that only teach the drift scale.
        horizon: months ahead scored (1..horizon). through: last month of figures scored.
        replications, pilot_replications: runs of the scored and of the pilot forecast per origin.
        members: parameter sets drawn from the fit's posterior per origin.
        seed, scale: the forecasts' root seed and buyers per agent.
        fit_replications, fit_scale, fit_iterations, product_prior, ageing_prior: the appeal fit's
            settings (:func:`sim.analysis.fit_appeals.fit`).
        drift: fixed monthly drift scales ``(brand, product)`` in utils; None: estimated.
        kernel: the choice kernel.
        assimilate: whether each origin after the first is also forecast from the previous origin's fit with
            and without the figures since assimilated (scored as ``model_assimilated``, ``model_stale``); 0: not.
        particles: the filter's particles (as the shipped forecast's, 400).
        brand_scales: scale each brand's drift by its own past errors and sensitivity (False: one scale for all).
    """

    market: str
    origins: tuple[str, ...] = DEFAULT_ORIGINS
    warmup: tuple[str, ...] = WARMUP_ORIGINS
    horizon: int = 12
    through: str = "2024-12"
    replications: int = 20
    pilot_replications: int = 8
    members: int = 20
    seed: int = 1
    scale: float = 50.0
    fit_replications: int = 4
    fit_scale: float = 50.0
    fit_iterations: int = 30
    product_prior: float = 0.0
    ageing_prior: float = 0.0
    drift: tuple[float, float] | None = None
    kernel: str = "numba"
    assimilate: int = 6
    particles: int = 400
    brand_scales: bool = True

    def fit_settings(self) -> dict[str, Any]:
        """What decides a fit at an origin (a stored fit made otherwise is not reused)."""
        keys = ("market", "seed", "fit_replications", "fit_scale", "fit_iterations", "product_prior", "ageing_prior",
                "members", "kernel")  # the fit, not the forecasts: a plan that changes only these reuses the fits
        return {k: getattr(self, k) for k in keys}


@dataclass
class OriginResult:
    """What one origin produced: its fit's size, the drift used and the per-figure scores."""

    origin: str
    warmup: bool
    drift: DriftEstimate
    pilot_errors: pd.DataFrame
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)


def plan_origins(plan: BacktestPlan) -> list[tuple[str, bool]]:
    """Every origin in month order, with whether it is a warm-up origin."""
    both = {o: True for o in plan.warmup} | {o: False for o in plan.origins}
    return sorted(both.items(), key=lambda kv: parse_month(kv[0]))


def first_deliveries(scenario: Scenario) -> dict[str, int | None]:
    """Each brand's and product's first delivery month, for the Bass benchmark (None: on sale before the scenario)."""
    out: dict[str, int | None] = {}
    for p in scenario.products:
        first = parse_month(p.delivery_start or p.launch)
        known = first > scenario.start_index or p.on_sale_since is not None
        out[p.name] = (parse_month(p.on_sale_since) if p.on_sale_since else first) if known else None
    for b in scenario.brands:
        mine = [out[p.name] for p in scenario.products if p.brand == b.name]
        out[b.name] = None if (not mine or any(m is None for m in mine)) else min(m for m in mine if m is not None)
    return out


def _lambda(scenario: Scenario) -> float:
    ch = scenario.buyers.choice
    return float(ch.nest_lambda) if ch.model == "nested_logit" else 1.0


class Backtest:
    """One backtest, run origin by origin into a folder (see the module docstring)."""

    def __init__(self, plan: BacktestPlan, out: str | Path, *, reported: Any = None, workers: int | None = None,
                 executor: str = "processes", resume: bool = False, log: Any = sys.stderr):
        self.plan = plan
        self.out = Path(out)
        self.reported = reported if reported is not None else load_reported()
        self.workers, self.executor, self.resume, self.log = workers, executor, resume, log
        self.market = load_scenario(plan.market)
        self.first = first_deliveries(self.market)
        names = [p.name for p in self.market.products]
        self.figures = scorable_figures(self.reported, [b.name for b in self.market.brands], names)
        self.utils_to_log = 1.0 / _lambda(self.market)
        self.conversion: dict[str, float | None] = {}
        # Per brand, the variance the probes' drift added to its figures and the variance (utils) it asked for.
        self.brand_sums: dict[str, list[float]] = {}

    def say(self, text: str) -> None:
        print(text, file=self.log, flush=True)

    # ----------------------------------------------------------------- one origin

    def fit_origin(self, origin: str) -> Path:
        """The fit at ``origin`` as an overlay scenario (reused when a stored fit was made the same way)."""
        folder = self.out / "origins" / origin
        fitted, meta = folder / "fitted.yaml", folder / "fit.json"
        settings = self.plan.fit_settings()
        if fitted.exists() and meta.exists() and json.loads(meta.read_text()).get("settings") == settings:
            return fitted
        folder.mkdir(parents=True, exist_ok=True)
        p = self.plan
        self.say(f"[{origin}] fitting on the figures dated up to {origin} ...")
        result = fit(p.market, through=origin, replications=p.fit_replications, seed=p.seed, scale=p.fit_scale,
                     iterations=p.fit_iterations, reported=figures_upto(self.reported, origin),
                     product_prior=p.product_prior, ageing_prior=p.ageing_prior, kernel=p.kernel, log=Quiet())  # fmt: skip
        brand_fit, product_fit = result.values()
        spread, n = result.new_product_spread()
        start = format_month(parse_month(origin) + 1)
        members = result.members(p.members, seed=p.seed) if p.members > 0 else []
        extends = os.path.relpath(Path(p.market).resolve(), folder.resolve())
        write_overlay(
            fitted, extends, f"backtest_{origin.replace('-', '_')}", brand_fit, product_fit, result.report,
            f"sim backtest (origin {origin})", members=members,
            uncertainty={"start": start, "new_product_appeal": round(spread, 4), "observation_sd": result.observation_sd(),
                         "source": f"appeal fit through {origin}: spread of {n} fitted product appeals"},
        )  # fmt: skip
        meta.write_text(json.dumps({"settings": settings, "loss": result.loss, "steps": result.steps,
                                    "evaluations": result.evaluations, "figures": result.posterior.n,
                                    "p_eff": result.posterior.p_eff, "s2": result.posterior.s2}, indent=2))  # fmt: skip
        return fitted

    def forecast(self, origin: str, fitted: Path, kind: str, drift: DriftEstimate, replications: int,
                 more: dict[str, Any] | None = None) -> store.Results:
        """Run the forecast from ``origin`` (the fit's history included) into ``origins/T/<kind>`` (``more``:
        further scenario values by path)."""
        scenario = load_scenario(fitted, {**self.forecast_overrides(origin, drift), **(more or {})})
        folder = self.out / "origins" / origin / kind
        done = (folder / store.MANIFEST).exists() and store.read_manifest(folder).get("status") == "complete"
        if not done:
            run_scenario(scenario, folder, replications=replications, seed=self.plan.seed, scale=self.plan.scale,
                         kernel=self.plan.kernel, workers=self.workers, executor=self.executor, resume=True,
                         label=f"{origin} {kind}", backtest_origin=origin)  # fmt: skip
        return store.load_results(folder)

    def scored_figures(self, origin: str) -> pd.DataFrame:
        o = parse_month(origin)
        f = self.figures
        keep = (f["end_index"] > o) & (f["end_index"] <= min(o + self.plan.horizon, parse_month(self.plan.through)))
        return f[keep].reset_index(drop=True)

    def known_errors(self, origin: str, done: list[OriginResult]) -> pd.DataFrame:
        """The earlier pilots' errors on two-sided figures already reported at ``origin`` (what its drift learns from)."""
        o = parse_month(origin)
        return two_sided_upto([r.pilot_errors for r in done if parse_month(r.origin) < o], o)

    def rate(self) -> float | None:
        """Log-volume units a util of drift moves the figures, pooled over every probe so far (None: none yet)."""
        added = sum(a for a, _ in self.brand_sums.values())
        asked = sum(q for _, q in self.brand_sums.values())
        return float(np.sqrt(added / asked)) if asked > 0 else None

    def drift_at(self, known: pd.DataFrame) -> DriftEstimate:
        """The drift scale for a forecast: fixed, or learnt from the earlier pilots' errors ``known`` by then."""
        if self.plan.drift is not None:
            return DriftEstimate(self.plan.drift[0], self.plan.drift[1], 0, float("nan"))
        return NO_DRIFT if known.empty else estimate_drift(known)  # in log-volume units: calibrated_drift converts them

    def calibrated_drift(self, origin: str, fitted: Path, figs: pd.DataFrame, pilot_errors: pd.DataFrame,
                         drift_log: DriftEstimate, known: pd.DataFrame) -> DriftEstimate:
        """The drift in utils that gives the model's figures the spread estimated in log-volume units.

        A probe forecast with the drift converted at ``1 / lambda``, its offsets normal (with a
        Student-t's heavy tails a few replicates' variance falls far short of the variance drawn, and
        the rate would come out low), measures how much spread a util of drift gives this fit's figures
        (:func:`sim.analysis.drift.added_and_asked`, pooled with the probes of earlier origins, :meth:`rate`); the
        drift is then converted at that rate. Each brand's factor on it
        (``plan.brand_scales``) comes from the brand's errors ``known`` at the origin and its sensitivity in the
        probes so far (:func:`sim.analysis.drift.estimate_brand_scales`).
        """
        if drift_log.zero or self.plan.drift is not None:
            return drift_log
        trial = drift_log.scaled(1.0 / self.utils_to_log)
        probe = self.forecast(origin, fitted, "sensitivity", replace(trial, level_df=0.0), self.plan.pilot_replications)
        sums = added_and_asked(pilot_errors, score_forecast(probe, figs, origin, with_spread=True), trial)
        # Pooled over this and the earlier origins' probes: one probe's few replicates measure it noisily.
        for brand, g in sums.groupby("brand"):
            b = self.brand_sums.setdefault(str(brand), [0.0, 0.0])
            b[0], b[1] = b[0] + float(g["added"].sum()), b[1] + float(g["asked"].sum())
        k = self.rate()
        drift = drift_log.scaled(1.0 / k) if k else trial
        if self.plan.brand_scales and k:
            drift = replace(drift, brand_scale=self.brand_scales(known, drift, k))
        self.conversion[origin] = k
        self.say(f"[{origin}] from {drift_log.figures} earlier errors: appeal offset at the origin "
                 f"{drift.brand_level:.3f} (brands), {drift.product_level:.3f} (products); drift {drift.brand:.3f}, "
                 f"{drift.product:.3f} utils a month; {'normal' if not drift.level_df else f'Student-t, {drift.level_df:g} df'} "
                 f"(a util moves these figures by {k or 0:.2f} log units)")  # fmt: skip
        if drift.brand_scale:
            self.say(f"[{origin}] brands' factors: " + ", ".join(f"{b} {f:.2f}" for b, f in drift.brand_scale))
        return drift

    def brand_scales(self, errors: pd.DataFrame, drift: DriftEstimate, k: float) -> tuple[tuple[str, float], ...]:
        """Each brand's factor on the drift (:func:`sim.analysis.drift.estimate_brand_scales`), from ``errors`` and
        the brands' sensitivities measured by the probes so far."""
        sensitivity = {b: a / q for b, (a, q) in self.brand_sums.items() if q > 0}
        scales = estimate_brand_scales(errors, drift, sensitivity, k**2) if not errors.empty else {}
        return tuple(sorted((b, round(f, 4)) for b, f in scales.items()))

    def run_origin(self, origin: str, warmup: bool, done: list[OriginResult]) -> OriginResult:
        fitted = self.fit_origin(origin)
        figs = self.scored_figures(origin)
        zero = NO_DRIFT
        pilot = self.forecast(origin, fitted, "pilot", zero, self.plan.pilot_replications)
        pilot_errors = score_forecast(pilot, figs, origin, with_spread=True)
        if warmup:
            self.say(f"[{origin}] warm-up origin: {len(pilot_errors)} figures teach the drift scale")
            return OriginResult(origin, True, zero, pilot_errors)
        known = self.known_errors(origin, done)
        drift = self.calibrated_drift(origin, fitted, figs, pilot_errors, self.drift_at(known), known)
        results = self.forecast(origin, fitted, "forecast", drift, self.plan.replications)
        scores = score_forecast(results, figs, origin)
        parts = [scores]
        if self.plan.assimilate > 0 and not drift.zero and done:
            previous = done[-1].origin
            stale = self.stale_forecast(origin, previous, drift)
            parts.append(score_forecast(stale, figs, origin).assign(forecaster="model_stale"))
            assimilated = self.assimilated_forecast(origin, previous, drift)
            parts.append(score_forecast(assimilated, figs, origin).assign(forecaster="model_assimilated"))
        history = figures_upto(self.figures, origin)
        parts.append(score_benchmarks(figs, history, origin, self.first, self.plan.horizon))
        self.say(f"[{origin}] scored {len(scores)} figures")
        return OriginResult(origin, False, drift, pilot_errors, pd.concat(parts, ignore_index=True))

    def forecast_overrides(self, origin: str, drift: DriftEstimate) -> dict[str, Any]:
        """The scenario values of a forecast from ``origin``: its end, its start and the drift it carries."""
        end = min(parse_month(origin) + self.plan.horizon, parse_month(self.plan.through))
        # The forecast starts after the origin: the brands' pricing rules hold from then on, as in the
        # production forecast (their discounts move only by the scenario's events).
        return {"end": format_month(end), "forecast_start": format_month(parse_month(origin) + 1), **drift.overrides()}

    def stale_forecast(self, origin: str, previous: str, drift: DriftEstimate) -> store.Results:
        """The previous origin's fit forecast from ``origin`` without the figures reported since (no filter)."""
        return self.forecast(origin, self.out / "origins" / previous / "fitted.yaml", "stale", drift,
                             self.plan.replications, after(previous))

    def assimilated_forecast(self, origin: str, previous: str, drift: DriftEstimate) -> store.Results:
        """The previous origin's fit forecast from ``origin`` after a particle filter over the months since.

        The drift (its offset and steps, as estimated for the origin) starts the month after ``previous``,
        and the particles are weighed by the figures of the months up to ``origin``
        (:mod:`sim.analysis.assimilation`): what the production forecast does with the figures reported
        after its fit's data.
        """
        from sim.analysis.forecast import run_forecast

        folder = self.out / "origins" / origin / "assimilated"
        if (folder / store.MANIFEST).exists() and store.read_manifest(folder).get("status") == "complete":
            return store.load_results(folder)
        o = parse_month(origin)
        fitted = self.out / "origins" / previous / "fitted.yaml"
        scenario = load_scenario(fitted, {**self.forecast_overrides(origin, drift), **after(previous)})
        shutil.rmtree(folder, ignore_errors=True)
        store.prepare_output(folder)
        figures = figures_upto(self.reported, origin).figures
        run_forecast(scenario, folder, scenario_file=str(fitted), figures=figures, figures_files=[], origin=o,
                     particles=self.plan.particles, replications=self.plan.replications, seed=self.plan.seed, before=0,
                     scale=self.plan.scale, kernel=self.plan.kernel, workers=self.workers, executor=self.executor,
                     progress=False, log=Quiet())  # fmt: skip
        shutil.rmtree(folder / "particles", ignore_errors=True)
        return store.load_results(folder)

    # ---------------------------------------------------------------- the whole

    def run(self) -> dict[str, Any]:
        """Every origin in month order, then the summary (also written to ``backtest.json``)."""
        self.out.mkdir(parents=True, exist_ok=True)
        done: list[OriginResult] = []
        for origin, warmup in plan_origins(self.plan):
            done.append(self.run_origin(origin, warmup, done))
        scores = pd.concat([r.scores for r in done if not r.warmup], ignore_index=True)
        scores.to_parquet(self.out / "scores.parquet", index=False)
        summary = summarize_backtest(scores, self.plan, {r.origin: r.drift for r in done if not r.warmup})
        summary["utils_to_log"] = {o: (None if k is None else round(k, 4)) for o, k in self.conversion.items()}
        summary["drift_for_forecast"] = self.forecast_drift(done)
        manifest = new_manifest("backtest", plan=asdict(self.plan), summary=summary)
        (self.out / "backtest.json").write_text(json.dumps(manifest, indent=2, default=str))
        return summary

    def forecast_drift(self, done: list[OriginResult]) -> dict[str, Any]:
        """The drift for a forecast made at the end of the figures scored (``through``): its scales in log-volume
        units learnt from every origin's pilot errors, converted into utils at the rate the probes measured."""
        through = parse_month(self.plan.through)
        e = two_sided_upto([r.pilot_errors for r in done], through)
        drift_log = estimate_drift(e) if not e.empty else NO_DRIFT
        k = self.rate() or self.utils_to_log
        drift = drift_log.scaled(1.0 / k)
        if self.plan.brand_scales:
            drift = replace(drift, brand_scale=self.brand_scales(e, drift, k))
        return {"start": format_month(through + 1), "brand_level": round(drift.brand_level, 4),
                "brand_drift": round(drift.brand, 4), "product_level": round(drift.product_level, 4),
                "product_drift": round(drift.product, 4), "level_df": drift.level_df, "figures": drift.figures,
                "utils_to_log": round(k, 4), "brand_scale": dict(drift.brand_scale)}  # fmt: skip


def write_drift(summary: dict[str, Any], market: str, out: str | Path, command: str) -> None:
    """Write the forecast drift a backtest estimated as an overlay of the market (``uncertainty`` only)."""
    d = summary["drift_for_forecast"]
    out = Path(out)
    extends = os.path.relpath(Path(market).resolve(), out.resolve().parent)
    source = (f"sim backtest: appeal offsets and monthly drift learnt from {d['figures']} forecast errors at "
              f"{len(summary['origins'])} origins ({', '.join(summary['origins'])}), converted at {d['utils_to_log']} "
              "log units a util")  # fmt: skip
    doc = {"name": Path(out).stem, "extends": extends,
           "uncertainty": {k: d[k] for k in ("start", "brand_level", "brand_drift", "product_level", "product_drift",
                                             "level_df", "brand_scale") if k in d and d[k] != {}}
           | {"source": source}}  # fmt: skip
    header = ["# Generated by the backtest; do not edit by hand, rerun:", f"#   {command}",
              f"# Pooled over the origins: 90% bands covered {summary['coverage_90']}, 50% bands {summary['coverage_50']} "
              f"of {summary['n_figures']} figure forecasts."]  # fmt: skip
    out.write_text("\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def after(previous: str) -> dict[str, str]:
    """The appeal offsets of the previous origin's fit start the month after it (the figures it did not see)."""
    return {"uncertainty.start": format_month(parse_month(previous) + 1)}


def _pooled(scores: pd.DataFrame) -> dict[str, Any]:
    model = scores[scores["forecaster"] == "model"]
    bench = scores[scores["forecaster"] != "model"].rename(columns={"forecaster": "benchmark"})
    s = summarize(model).iloc[0] if len(model) else None
    rel = relative_mae(model, bench) if len(model) and len(bench) else pd.DataFrame()
    return {
        "n_figures": int(s["n_figures"]) if s is not None else 0,
        "coverage_50": _num(s["coverage_50"]) if s is not None else None,
        "coverage_90": _num(s["coverage_90"]) if s is not None else None,
        "crps": _num(s["crps"]) if s is not None else None,
        "mae_log": _num(s["mae_log"]) if s is not None else None,
        "relative_mae": {str(r["benchmark"]): _num(r["relative_mae"]) for _, r in rel.iterrows()},
        "benchmark_figures": {str(r["benchmark"]): int(r["n_figures"]) for _, r in rel.iterrows()},
    }


def _num(x: Any) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else round(float(x), 4)


def summarize_backtest(scores: pd.DataFrame, plan: BacktestPlan, drift: dict[str, DriftEstimate]) -> dict[str, Any]:
    """The headline numbers: pooled over origins and horizons, over the five named brands, and by horizon.

    Keys: ``origins``, ``n_figures``, ``coverage_50``, ``coverage_90``, ``crps``, ``mae_log``,
    ``relative_mae`` (benchmark -> ratio, all brands), ``focus`` (the same over AITO, Li Auto,
    Tesla, NIO and Zeekr), ``by_horizon`` (a list, one entry per horizon), ``drift`` (per origin),
    ``assimilation`` (the forecast started from a filter against the same without, horizons 1-6).
    """
    model = scores[scores["forecaster"].isin(["model", "model_stale", "model_assimilated"])]
    scores = scores[~scores["forecaster"].isin(["model_stale", "model_assimilated"])]  # the model against the benchmarks
    focus = scores[scores["brand"].isin(FOCUS_BRANDS)]
    by_h = []
    for h in sorted(scores["horizon"].unique()):
        by_h.append({"horizon": int(h)} | _pooled(scores[scores["horizon"] == h]))
    return {
        "origins": list(plan.origins),
        **_pooled(scores),
        "assimilation": assimilation_gain(model, plan),
        "focus": {"brands": list(FOCUS_BRANDS)} | _pooled(focus),
        "by_horizon": by_h,
        "drift": {o: {"brand": round(d.brand, 4), "product": round(d.product, 4), "brand_level": round(d.brand_level, 4),
                      "product_level": round(d.product_level, 4), "level_df": d.level_df, "figures": d.figures,
                      "brand_scale": dict(d.brand_scale)}
                  for o, d in drift.items()},
        "benchmarks": list(BENCHMARKS),
        "inputs_note": "launches, price changes, store openings, policies and capacities in the scenario are "
                       "taken as known at every origin, as in the production forecast",
    }  # fmt: skip


def assimilation_gain(model: pd.DataFrame, plan: BacktestPlan, horizons: tuple[int, int] = (1, 6)) -> dict[str, Any]:
    """The previous origin's fit with the figures since assimilated against the same without, at horizons 1-6, on
    the same figures (and, for reference, the refit at the origin)."""
    near = model[model["horizon"].between(*horizons)]
    both = near.pivot_table(index=["origin", "line", "entity"], columns="forecaster", values="log_error", aggfunc="first")
    if not {"model_assimilated", "model_stale"} <= set(both.columns):
        return {"particles": plan.particles, "n_figures": 0}
    both = both.dropna(subset=["model_assimilated", "model_stale"])
    stale, assim = float(both["model_stale"].abs().mean()), float(both["model_assimilated"].abs().mean())
    refit = float(both["model"].abs().mean()) if "model" in both.columns else float("nan")
    cov = near[near.set_index(["origin", "line", "entity"]).index.isin(both.index)].groupby("forecaster")["covered_90"].mean()
    return {"particles": plan.particles, "horizons": list(horizons), "n_figures": int(len(both)),
            "mae_log_without": _num(stale), "mae_log_with": _num(assim), "mae_log_refit": _num(refit),
            "relative": _num(assim / stale) if stale > 0 else None,
            "coverage_90_without": _num(cov.get("model_stale")), "coverage_90_with": _num(cov.get("model_assimilated")),
            "coverage_90_refit": _num(cov.get("model"))}  # fmt: skip


def quick_plan(plan: BacktestPlan) -> BacktestPlan:
    """The ``--quick`` form: two origins, no warm-up, few iterations, replicates and members, for CI."""
    return replace(plan, origins=("2023-12", "2024-06"), warmup=(), replications=4, pilot_replications=3,
                   members=4, scale=200.0, fit_replications=1, fit_scale=200.0, fit_iterations=2, particles=12)  # fmt: skip
