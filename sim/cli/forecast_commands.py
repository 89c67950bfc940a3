"""Commands of forecasting: ``sim backtest`` (how good the forecasts have been), ``sim decompose`` (where a
forecast's spread comes from) and ``sim forecast`` (a forecast from the assimilated history)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sim.cli.options import (
    add_batch_options,
    add_out_option,
    add_set_option,
    default_folder,
    nonneg_int,
    output_folder,
    positive_float,
    positive_int,
    run_kernel,
)
from sim.cli.registry import command
from sim.scenario.yamlio import InputError

#: The market the backtest fits at each origin, by default.
DEFAULT_MARKET = "scenarios/base/market.yaml"


def nonneg_float(text: str) -> float:
    """An argparse type: a finite number at least 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= v < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number at least 0, got {text}")
    return v


def months_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated months ``YYYY-MM`` (an empty string: none)."""
    from sim.scenario.months import format_month, parse_month

    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(format_month(parse_month(part)))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{part!r}: {exc}") from None
    return tuple(out)


def month(text: str) -> str:
    """An argparse type: one month ``YYYY-MM``."""
    months = months_list(text)
    if len(months) != 1:
        raise argparse.ArgumentTypeError(f"expected one month YYYY-MM, got {text!r}")
    return months[0]


def drift_pair(text: str) -> tuple[float, float]:
    """An argparse type: ``BRAND[,PRODUCT]`` monthly drift scales in utils."""
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected BRAND or BRAND,PRODUCT, got {text!r}")
    values = [nonneg_float(p) for p in parts]
    return (values[0], values[1] if len(values) > 1 else 0.0)


def _backtest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", default=DEFAULT_MARKET,
                   help=f"the market scenario refitted at each origin (default {DEFAULT_MARKET})")
    p.add_argument("--origins", type=months_list, metavar="YYYY-MM,...",
                   help="scored forecast origins (default: every quarter end from 2023-03 to 2024-06)")
    p.add_argument("--warmup", type=months_list, metavar="YYYY-MM,...",
                   help="earlier origins that only teach the drift scale (default 2022-09,2022-12; '' for none)")
    p.add_argument("--horizon", type=positive_int, default=12, help="months ahead scored (default 12)")
    p.add_argument("--through", type=month, metavar="YYYY-MM", help="last month of the figures scored (default 2024-12)")
    p.add_argument("--replications", "-r", type=positive_int, help="runs of each scored forecast (default 20)")
    p.add_argument("--members", type=nonneg_int, help="parameter sets drawn from each fit's posterior (default 20)")
    p.add_argument("--seed", type=nonneg_int, default=1, help="root seed of the fits and forecasts (default 1)")
    p.add_argument("--scale", type=positive_float, help="buyers per agent in the forecasts (default 50)")
    p.add_argument("--fit-iterations", type=nonneg_int, help="steps of each appeal fit (default 30)")
    p.add_argument("--product-prior", type=nonneg_float,
                   help="partial pooling of product appeals toward their brand (default 0: none)")
    p.add_argument("--ageing-prior", type=nonneg_float, help="partial pooling of life-cycle rates (default 0)")
    p.add_argument("--drift", type=drift_pair, metavar="BRAND[,PRODUCT]",
                   help="fixed monthly appeal drift in utils (default: learnt from earlier origins' errors)")
    p.add_argument("--particles", type=positive_int,
                   help="particles of the filter that assimilates the figures since the previous origin (default 400, as make demo)")
    p.add_argument("--pooled-scale", action="store_true",
                   help="one drift scale for every brand (default: each brand's factor from its own past errors)")
    p.add_argument("--quick", action="store_true",
                   help="two origins, a short fit, few replicates: a check that runs in about a minute")
    p.add_argument("--format", choices=("table", "json"), default="table", help="how to print the summary")
    p.add_argument("--write-drift", metavar="FILE",
                   help="write the drift a forecast at the last month scored should carry, as an overlay of the "
                        "market (e.g. scenarios/base/drift.yaml)")
    add_out_option(p, "backtest folder (default: results/backtest/<time>)")
    add_batch_options(p, "workers", "executor", "resume", "force", "quiet")


@command("backtest", _backtest_arguments,
         help="rolling-origin backtest of the model's forecasts against simple forecasters",
         description="Refit the model on the figures up to each origin, forecast 1-12 months ahead with every "
                     "uncertainty, score the figures reported after it, and compare with naive, seasonal naive, "
                     "drift, exponential smoothing and Bass forecasts of the same figures.")  # fmt: skip
def cmd_backtest(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sim.analysis.backtest import Backtest, BacktestPlan, quick_plan
    from sim.runs.executors import check_executor
    from sim.runs.progress import Quiet
    from sim.runs.store import prepare_folder

    check_executor(args.executor)
    plan = BacktestPlan(market=args.scenario)
    if args.quick:
        plan = quick_plan(plan)
    given: dict[str, Any] = {
        "origins": args.origins, "warmup": args.warmup, "horizon": args.horizon, "through": args.through,
        "replications": args.replications, "members": args.members, "seed": args.seed, "scale": args.scale,
        "fit_iterations": args.fit_iterations, "product_prior": args.product_prior, "ageing_prior": args.ageing_prior,
        "drift": args.drift, "kernel": run_kernel(args), "brand_scales": False if args.pooled_scale else None,
        "particles": args.particles,
    }  # fmt: skip
    plan = replace(plan, **{k: v for k, v in given.items() if v is not None})
    if args.origins == ():
        raise InputError("--origins: give at least one month")
    if args.write_drift and not Path(args.write_drift).resolve().parent.is_dir():
        raise InputError(f"--write-drift: folder {Path(args.write_drift).resolve().parent} does not exist")
    out = output_folder(args, default_folder("backtest"), what="backtest",
                        prepare=lambda f, force, resume: prepare_folder(
                            f, force=force, resume=resume, owned=("backtest.json", "scores.parquet", "origins"),
                            hint="a backtest folder"))  # fmt: skip
    bt = Backtest(plan, out, workers=args.workers, executor=args.executor, resume=args.resume,
                  log=Quiet() if args.quiet else sys.stderr)  # fmt: skip
    summary = bt.run()
    if args.write_drift:
        from sim.analysis.backtest import write_drift

        write_drift(summary, plan.market, args.write_drift, "sim " + " ".join(sys.argv[1:]))
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(format_summary(summary, out))
    return 0


def format_summary(s: dict[str, Any], out: Any) -> str:
    """The backtest's summary as a few plain tables."""

    def pct(x: Any) -> str:
        return "n/a" if x is None else f"{100 * x:.0f}%"

    def num(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = [f"backtest: {len(s['origins'])} origins ({', '.join(s['origins'])}), {s['n_figures']} figure forecasts "
             f"scored -> {out}",
             f"  90% bands cover {pct(s['coverage_90'])}, 50% bands {pct(s['coverage_50'])}; CRPS {num(s['crps'])}, "
             f"mean |log error| {num(s['mae_log'])} (log units)",
             "  model's mean |log error| relative to each benchmark (below 1: the model is better), same figures:"]
    focus = s["focus"]
    lines.append(f"    {'benchmark':<16}{'all brands':>12}{'AITO, Li, Tesla, NIO, Zeekr':>30}")
    for name in s["benchmarks"]:
        lines.append(f"    {name:<16}{num(s['relative_mae'].get(name)):>12}{num(focus['relative_mae'].get(name)):>30}")
    lines.append("  by horizon (months): figures, 90% coverage, 50% coverage, mean |log error|, vs seasonal naive, vs Bass")
    for h in s["by_horizon"]:
        rel = h["relative_mae"]
        lines.append(f"    {h['horizon']:>3} {h['n_figures']:>5} {pct(h['coverage_90']):>6} {pct(h['coverage_50']):>6} "
                     f"{num(h['mae_log']):>7} {num(rel.get('seasonal_naive')):>7} {num(rel.get('bass')):>7}")
    lines.append("  drift scale used (utils a month, brands / products): "
                 + "; ".join(f"{o} {d['brand']:.3f}/{d['product']:.3f}" for o, d in s["drift"].items()))
    a = s.get("assimilation") or {}
    if a.get("n_figures"):
        lines.append(f"  the previous origin's fit with the figures since assimilated ({a['particles']} particles) against "
                     f"without: mean |log error| at horizons {a['horizons'][0]}-{a['horizons'][1]} {num(a['mae_log_with'])} "
                     f"against {num(a['mae_log_without'])} (ratio {num(a['relative'])}, {a['n_figures']} figures; the refit "
                     f"at the origin {num(a.get('mae_log_refit'))}); 90% coverage {pct(a['coverage_90_with'])} against "
                     f"{pct(a['coverage_90_without'])}")  # fmt: skip
    f = s.get("drift_for_forecast")
    if f:
        lines.append(f"  for a forecast from {f['start']}: appeal offset {f['brand_level']:.3f} (brands), "
                     f"{f['product_level']:.3f} (products); drift {f['brand_drift']:.3f}, {f['product_drift']:.3f} utils "
                     f"a month, from {f['figures']} errors")  # fmt: skip
        if f.get("brand_scale"):
            lines.append("    each brand's factor on them: " + ", ".join(f"{b} {x:.2f}" for b, x in f["brand_scale"].items()))
    lines.append(f"  note: {s['inputs_note']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- decompose


def _decompose_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--seed", type=nonneg_int, help="root seed (default: the scenario's); every configuration shares it")
    p.add_argument("--replications", "-r", type=positive_int, default=20, help="runs per configuration (default 20)")
    p.add_argument("--scale", type=positive_float, help="real buyers per buyer agent")
    add_set_option(p, "override a scenario value, as in sim run")
    add_out_option(p, "folder of the configurations' batches (default: results/<scenario>/decomposition/<time>)")
    add_batch_options(p, "workers", "executor", "resume", "force", "quiet")


@command("decompose", _decompose_arguments,
         help="where the spread of a target's deliveries comes from: parameters, drift, market, capacities, new products",
         description="Runs the scenario on the same seeds with every source of uncertainty on, with none (the agents' "
                     "sampling noise alone) and with each source alone, and reports each source's share of the "
                     "variance of each target's deliveries (decomposition.json in the output folder).")  # fmt: skip
def cmd_decompose(args: argparse.Namespace) -> int:
    from sim.analysis.decomposition import configurations, format_decomposition, run_decomposition
    from sim.runs.executors import check_executor
    from sim.runs.store import prepare_folder
    from sim.scenario.load import load_scenario
    from sim.scenario.paths import parse_set_option

    check_executor(args.executor)
    overrides = dict(parse_set_option(s) for s in args.sets)
    scenario = load_scenario(args.scenario, overrides)
    out = output_folder(args, default_folder(scenario.name, "decomposition"), what="decomposition",
                        prepare=lambda f, force, resume: prepare_folder(
                            f, force=force, resume=resume, owned=("decomposition.json", *configurations()),
                            hint="a decomposition folder"))  # fmt: skip
    result = run_decomposition(
        args.scenario, out, seed=scenario.seed if args.seed is None else args.seed, replications=args.replications,
        scale=args.scale, overrides=overrides, kernel=run_kernel(args), workers=args.workers,
        executor=args.executor, progress=not args.quiet,
    )  # fmt: skip
    if not args.quiet:
        print(format_decomposition(result))
        print(f"-> {out}")
    return 0


# --------------------------------------------------------------------------- forecast


def _forecast_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML file (e.g. scenarios/baseline.yaml)")
    p.add_argument("--through", type=month, metavar="YYYY-MM",
                   help="the forecast's origin: figures up to this month are assimilated (default: the last month "
                        "with figures after the data the fit saw)")
    p.add_argument("--figures", action="append", default=[], metavar="FILE",
                   help="more reported figures (the schema of scenarios/reported/figures.csv), besides the project's")
    p.add_argument("--no-project-figures", dest="project", action="store_false",
                   help="assimilate only the --figures files, not scenarios/reported/figures.csv")
    p.add_argument("--particles", type=positive_int, default=200, help="particles of the filter (default 200)")
    p.add_argument("--replications", "-r", type=positive_int, default=400,
                   help="forecast replicates branched from the particles (default 400)")
    p.add_argument("--before", type=nonneg_int, default=100,
                   help="replicates drawn by the weights before the last month's figures, in DIR/before (default 100; 0: none)")
    p.add_argument("--seed", type=nonneg_int, help="root seed (default: the scenario's); scenarios forecast with the same "
                                                   "seed share their particles' and replicates' random numbers")
    p.add_argument("--scale", type=positive_float, help="real buyers per buyer agent")
    add_set_option(p, "override a scenario value")
    add_out_option(p, "results folder (default: results/<scenario>/forecast/<time>)")
    add_batch_options(p, "workers", "executor", "force", "quiet")


@command("forecast", _forecast_arguments,
         help="a forecast that starts from what is known: assimilate the latest figures, then branch replicates",
         description="Runs the scenario's history as particles, weights them by the reported figures dated after the "
                     "data the fit saw (a particle filter with systematic resampling), and forecasts from the "
                     "particles' states at the origin. Writes a results folder (sim compare/report/plot read it) with "
                     "the assimilation in its manifest.")  # fmt: skip
def cmd_forecast(args: argparse.Namespace) -> int:
    from sim.analysis.forecast import default_origin, read_figures, run_forecast
    from sim.runs.executors import check_executor
    from sim.runs.progress import Quiet
    from sim.scenario.load import load_scenario
    from sim.scenario.months import parse_month
    from sim.scenario.paths import parse_set_options

    check_executor(args.executor)
    args.resume = False
    scenario = load_scenario(args.scenario, parse_set_options(args.sets))
    origin = parse_month(args.through) if args.through else None
    figures = read_figures(scenario, args.figures, origin=origin, project=args.project)
    if origin is None:
        origin = default_origin(scenario, figures)
    if not scenario.start_index <= origin < scenario.end_index:
        raise InputError(f"--through: the origin must be inside the scenario ({scenario.start}..{scenario.end}) and "
                         "before its last month")  # fmt: skip
    out = output_folder(args, default_folder(scenario.name, "forecast"), what="forecast")
    seed = scenario.seed if args.seed is None else args.seed
    report, record = run_forecast(
        scenario, out, scenario_file=str(args.scenario), figures=figures, figures_files=list(args.figures),
        origin=origin, particles=args.particles, replications=args.replications, seed=seed, before=args.before,
        scale=args.scale, kernel=run_kernel(args), workers=args.workers, executor=args.executor,
        progress=not args.quiet, log=Quiet() if args.quiet else sys.stderr,
    )  # fmt: skip
    if not args.quiet:
        from sim.cli.run_commands import print_summary

        print(f"assimilated {len(record['assimilated'])} figure(s) up to {record['origin']}; final effective sample "
              f"size {record['final_ess']:.1f} of {record['particles']} particles"
              + (f"; resampled at {', '.join(record['resampled'])}" if record["resampled"] else ""))  # fmt: skip
        for a in record["assimilated"]:
            print(f"  {a['figure']}: reported {a['qualifier'] if a['qualifier'] in '<>' else ''}{a['reported']:,.0f}; "
                  f"particles before it {a['simulated_median']:,.0f} [{a['simulated_p5']:,.0f}, {a['simulated_p95']:,.0f}]")
        print_summary(out)
    return 0 if report.failed == 0 else 1
