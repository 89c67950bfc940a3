"""Commands of the analysis layer: ``sim fit-appeals``, ``calibrate``, ``sensitivity`` and ``validate-model``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from pathlib import Path

from sim.cli.options import (
    EXECUTOR_BRIEF,
    MAX_COUNT,
    add_allow_partial,
    add_batch_options,
    add_out_option,
    add_set_option,
    check_resume,
    concurrent_runs,
    default_folder,
    nonneg_int,
    number,
    output_folder,
    positive_float,
    positive_int,
    run_kernel,
    seed_int,
)
from sim.cli.registry import command
from sim.scenario.yamlio import InputError

#: Most steps of the appeal fit (each is a batch of runs).
MAX_ITERATIONS = 10_000

# --------------------------------------------------------------------------- fit-appeals


def _fit_appeals_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="the scenario to fit (e.g. scenarios/base/market.yaml)")
    p.add_argument("--through", default="2024-12", help="last month of data used (default 2024-12)")
    p.add_argument("--replications", type=positive_int, default=2)
    p.add_argument("--seed", type=seed_int, default=1)
    p.add_argument("--scale", type=positive_float)
    p.add_argument("--iterations", type=number(int, 0, maximum=MAX_ITERATIONS, what="a whole number"), default=12)
    p.add_argument("--write", required=True, help="overlay scenario to write (e.g. scenarios/baseline.yaml)")
    p.add_argument("--name", default="baseline")
    p.add_argument("--no-ageing", dest="ageing", action="store_false",
                   help="fit appeals only, not the products' life-cycle (ageing) rates")
    p.add_argument("--no-trend", dest="trend", action="store_false",
                   help="no brand appeal trends (utils a year up to the cut-off, flat after it)")
    add_set_option(p, "hold a scenario value fixed during the fit, e.g. --set buyers.price_sensitivity=1.2")
    p.add_argument("--members", type=number(int, 0, maximum=MAX_COUNT, what="a whole number"), default=0,
                   help="parameter sets drawn from the fit's posterior (Laplace approximation), written as the "
                        "overlay's ensemble: each run draws one (default 0: none)")
    p.add_argument("--product-prior", type=number(float, 0.0, what="a number"), default=0.0,
                   help="partial pooling: weight of the prior pulling each product's appeal to its brand's (default 0)")
    p.add_argument("--ageing-prior", type=number(float, 0.0, what="a number"), default=0.0,
                   help="partial pooling: weight of the prior pulling each life-cycle rate to 0 (default 0)")  # fmt: skip


@command("fit-appeals", _fit_appeals_arguments,
         help="fit brand/product appeals to reported volumes (writes an overlay scenario)")  # fmt: skip
def cmd_fit_appeals(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from sim.analysis.fit_appeals import fit, write_overlay
    from sim.runs.limits import check_agents
    from sim.scenario.fields import PlainName
    from sim.scenario.load import load_scenario
    from sim.scenario.months import format_month, parse_month
    from sim.scenario.paths import parse_set_options

    try:
        parse_month(args.through)
    except ValueError as exc:
        raise InputError(f"--through: {exc}") from None
    try:
        TypeAdapter(PlainName).validate_python(args.name)
    except ValidationError as exc:
        raise InputError(f"--name: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    _check_file_to_write(Path(args.write), "--write")
    overrides = parse_set_options(args.sets)
    scenario = load_scenario(args.scenario, overrides)
    check_agents(scenario, args.scale)
    result = fit(
        args.scenario, through=args.through, replications=args.replications, seed=args.seed,
        scale=args.scale, iterations=args.iterations, fit_ageing=args.ageing, fit_trend=args.trend,
        overrides=overrides, kernel=run_kernel(args), product_prior=args.product_prior, ageing_prior=args.ageing_prior,
    )  # fmt: skip
    brand_fit, prod_fit = result.values()
    out = Path(args.write)
    extends = os.path.relpath(Path(args.scenario).resolve(), out.resolve().parent)
    spread, n = result.new_product_spread()
    uncertainty = {"start": format_month(parse_month(result.cut) + 1), "new_product_appeal": round(spread, 4),
                   "observation_sd": result.observation_sd(),
                   "source": f"sim fit-appeals: the data end {result.cut}; new products' appeal spread = the RMS of "
                             f"{n} fitted product appeals; observation errors = the fit's residual RMS by frequency"}  # fmt: skip
    members = result.members(args.members, seed=args.seed) if args.members else None
    write_overlay(out, extends, args.name, brand_fit, prod_fit, result.report, _typed_command(),
                  members=members, uncertainty=uncertainty)  # fmt: skip
    post = result.posterior
    print(result.report.to_string(index=False))
    print(f"posterior: {post.n} figures, {post.p_eff:.1f} effective parameters of {len(result.theta)}, "
          f"residual variance {post.s2:.4f}")  # fmt: skip
    print(f"wrote {out}")
    return 0


def _check_file_to_write(path: Path, option: str) -> None:
    """A file a command will write: its folder exists, and it is not a folder or a FIFO, a device..."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise InputError(f"{option}: folder {folder} does not exist")
    if path.exists() and not path.is_file():
        raise InputError(f"{option}: {path} exists and is not a regular file")


def _typed_command() -> str:
    """The command as typed (``sim ...`` or ``python -m sim ...``), for the overlay's header."""
    typed = sys.argv and sys.argv[0].endswith(("sim", "__main__.py"))
    return "sim " + " ".join(sys.argv[1:]) if typed else "sim fit-appeals ..."


# --------------------------------------------------------------------------- calibrate


def _calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("calibration", help="calibration YAML file (e.g. scenarios/calibration.yaml)")
    p.add_argument("--budget", type=int, help="model runs in total (default: the file's)")
    add_out_option(p, "folder for the rounds, calibrated.yaml and fit.json (default: results/calibration/<name>/<time>)")
    p.add_argument("--through", help="fit to data through this month only; later figures (to the file's 'through') are scored out of sample")
    p.add_argument("--base", help="base scenario instead of the file's (e.g. appeals fitted through the same --through)")
    add_batch_options(p, "workers", "executor", "resume", "force", "quiet", executor=EXECUTOR_BRIEF,
                      resume="continue a killed calibration in --out", force="replace what --out holds", quiet="no progress")  # fmt: skip


@command("calibrate", _calibrate_arguments, help="ensemble calibration (ABC-SMC) of a calibration file's free parameters")
def cmd_calibrate(args: argparse.Namespace) -> int:
    from sim.analysis.calibrate import OUTPUTS, calibrate, load_calibration
    from sim.analysis.calibration_outputs import format_report, write_outputs
    from sim.runs import store
    from sim.runs.executors import check_executor
    from sim.runs.limits import check_agents

    check_executor(args.executor)
    if args.budget is not None and not 8 <= args.budget <= MAX_COUNT:
        raise InputError(f"--budget: must be at least 8 and at most {MAX_COUNT:,}, got {args.budget:,}")
    check_resume(args, "calibration")
    cal = load_calibration(args.calibration, through=args.through, budget=args.budget, base=args.base)
    check_agents(cal.scenario, cal.config.scale, workers=concurrent_runs(args))
    prepare = functools.partial(store.prepare_folder, owned=OUTPUTS,
                                hint="use --resume to continue the calibration or --force to replace it")  # fmt: skip
    out = output_folder(args, default_folder("calibration", cal.name), what="calibration", prepare=prepare)
    rounds, per_round = cal.plan()
    command = " ".join(["sim calibrate", str(args.calibration), f"--budget {cal.budget}", f"--out {out}"]
                       + ([f"--through {args.through}"] if args.through else []) + ([f"--base {args.base}"] if args.base else []))  # fmt: skip
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(os.devnull, "w")) if args.quiet else sys.stderr
        print(f"{cal.name}: {len(cal.parameters)} free parameters, {len(cal.fit_targets)} figures through {cal.fit_through} "
              f"({len(cal.holdout_targets)} held out); {rounds} rounds x {per_round} sets x "
              f"{cal.config.method.replications} run(s) at scale {cal.config.scale:g} -> {out}", file=log)  # fmt: skip
        outcome = calibrate(cal, out, workers=args.workers, executor=args.executor, kernel=run_kernel(args),
                            resume=args.resume, progress=not args.quiet, log=log)  # fmt: skip
    report = write_outputs(cal, outcome, out, command)
    if not args.quiet:
        print(format_report(report))
        print(f"wrote {out / 'calibrated.yaml'} and {out / 'fit.json'}")
    return 0


# --------------------------------------------------------------------------- sensitivity


def _sensitivity_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("calibration", help="calibration file whose parameters and levers are the factors (e.g. scenarios/calibration.yaml)")
    p.add_argument("--scenario", help="scenario the points vary (default: the calibration's base, to its end)")
    p.add_argument("--n", type=positive_int, default=8, help="Saltelli base sample, a power of 2 (default 8); points = N x (factors + 2)")
    p.add_argument("--replications", "-r", type=positive_int, default=1, help="runs per point (default 1)")
    p.add_argument("--scale", type=positive_float, default=200.0, help="real buyers per buyer agent (default 200: coarse)")
    p.add_argument("--seed", type=seed_int, help="seed of the runs and the design (default: the calibration's)")
    p.add_argument("--lever", dest="levers", action="append", default=[], metavar="PATH=LOW:HIGH", help="another lever")
    p.add_argument("--no-parameters", dest="parameters", action="store_false", help="levers only")
    p.add_argument("--no-levers", dest="use_levers", action="store_false", help="the file's parameters only (and --lever ones)")
    add_out_option(p, "results folder (default: results/sensitivity/<time>)")
    add_batch_options(p, "workers", "executor", "resume", "force", "dry_run", executor=EXECUTOR_BRIEF,
                      resume="continue a killed study in --out", force="replace the results in a non-empty --out",
                      dry_run="print the design's size and write nothing")
    p.add_argument("--json", action="store_true", help="print the indices as JSON")
    add_batch_options(p, "quiet", quiet="no progress")


@command("sensitivity", _sensitivity_arguments,
         help="Sobol indices (SALib) of the headline outputs to the calibration's parameters and levers")  # fmt: skip
def cmd_sensitivity(args: argparse.Namespace) -> int:
    from sim.analysis.sensitivity import format_table, load_study, run_study
    from sim.runs.executors import check_executor
    from sim.runs.limits import check_agents

    check_executor(args.executor)
    check_resume(args, "study")
    study = load_study(args.calibration, scenario=args.scenario, n=args.n, replications=args.replications, scale=args.scale,
                       seed=args.seed, parameters=args.parameters, levers=args.use_levers, extra_levers=args.levers)  # fmt: skip
    check_agents(study.scenario, study.scale, workers=concurrent_runs(args))
    what = (f"{len(study.factors)} factors, N = {study.n}: {study.points} points x {study.replications} replicate(s) "
            f"= {study.points * study.replications} runs of {study.scenario.name} at scale {study.scale:g}")  # fmt: skip
    if args.dry_run:
        print(f"sensitivity: {what}; nothing written")
        return 0
    out = output_folder(args, default_folder("sensitivity"), what="study")
    if not args.quiet:
        print(f"sensitivity: {what} -> {out}", file=sys.stderr)
    result = run_study(study, out, workers=args.workers, executor=args.executor, resume=args.resume,
                       progress=not args.quiet, kernel=run_kernel(args))  # fmt: skip
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0 if result["failed"] == 0 else 1


# --------------------------------------------------------------------------- validate-model


def _validate_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder of 'sim run' (e.g. the baseline to 2027-12)")
    p.add_argument("--counterfactual", help="results of the scenario without the 2026 tax change on the same seeds "
                   "(e.g. no_tax_change): the pull-forward check then compares paired runs")
    p.add_argument("--elasticities", action="store_true", help="also run +-5%% price shocks and report the elasticities")
    p.add_argument("--month", default="2024-06", help="month the price shocks start (default 2024-06)")
    p.add_argument("--products", type=nonneg_int, default=12, help="shock the N products with most orders (default 12; 0 = all)")
    p.add_argument("--replications", "-r", type=positive_int, default=2, help="runs per shock (default 2)")
    p.add_argument("--scale", type=positive_float, default=100.0, help="scale of the shock runs (default 100)")
    add_batch_options(p, "workers", "executor", executor=EXECUTOR_BRIEF)
    p.add_argument("--keep", help="keep the shock runs in this folder (default: a temporary one)")
    add_out_option(p, "write the Markdown report here (default: print it)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_allow_partial(p)
    add_batch_options(p, "quiet", quiet="no progress")


@command("validate-model", _validate_model_arguments,
         help="pattern checks (and price elasticities) of a results folder, as a report")  # fmt: skip
def cmd_validate_model(args: argparse.Namespace) -> int:
    from sim.analysis.validate_model import format_markdown, validation_report
    from sim.runs.executors import check_executor
    from sim.runs.store import replacing
    from sim.scenario.months import parse_month

    check_executor(args.executor)
    if args.keep:
        _check_keep(Path(args.keep))
    if args.out:
        _check_file_to_write(Path(args.out), "--out")
    try:
        parse_month(args.month)
    except ValueError as exc:
        raise InputError(f"--month: {exc}") from None
    rep = validation_report(args.results, counterfactual=args.counterfactual, elasticity=args.elasticities, month=args.month,
                            products=args.products or None, replications=args.replications, scale=args.scale,
                            workers=args.workers, executor=args.executor, keep=Path(args.keep) if args.keep else None,
                            progress=not args.quiet, kernel=run_kernel(args))  # fmt: skip
    text = json.dumps(rep, indent=1) if args.json else format_markdown(rep)
    if args.out:
        with replacing(Path(args.out)) as tmp:
            tmp.write_text(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def _check_keep(folder: Path) -> None:
    """``--keep``: a new or empty folder, or one that holds earlier shock runs (which it replaces); never
    another batch's results."""
    from sim.runs import store

    if folder.is_dir() and (folder / store.MANIFEST).exists():
        kind = store.read_manifest(folder).get("kind")
        if kind != "elasticity":
            raise InputError(f"--keep {folder}: holds the results of a '{kind}' batch; keep the shock runs elsewhere")
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"--keep {folder}: exists and is not an empty folder; keep the shock runs elsewhere")
