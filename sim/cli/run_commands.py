"""Commands of the runs layer: ``sim run``, ``sweep``, ``rerun``, ``export`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.cli.options import (
    add_allow_partial,
    add_batch_options,
    add_out_option,
    add_set_option,
    check_batch_size,
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

if TYPE_CHECKING:
    from sim.runs.batch import BatchReport
    from sim.runs.run import RunSpec

# --------------------------------------------------------------------------- run


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--seed", type=seed_int,
                   help="root seed (default: the scenario's); scenarios run with the same seed share random numbers")
    p.add_argument("--replications", "-r", type=number(int, 1, what="a whole number"), default=1,
                   help="Monte Carlo replicates (default 1)")
    p.add_argument("--scale", type=positive_float, help="real buyers per buyer agent (1 = one agent per buyer)")
    add_out_option(p, "results folder (default: results/<scenario>/<time>)")
    add_set_option(p)
    p.add_argument("--check", action="store_true",
                   help="assert the accounting invariants every month; a violation fails the run with the month and product")
    add_batch_options(p)


@command("run", _run_arguments, help="run a scenario (with replications) and write tidy tables")
def cmd_run(args: argparse.Namespace) -> int:
    from sim.runs.batch import MAX_RUNS, run_batch
    from sim.runs.executors import check_executor
    from sim.runs.manifest import new_manifest
    from sim.runs.run import make_specs
    from sim.scenario.load import load_scenario
    from sim.scenario.paths import parse_set_options

    check_executor(args.executor)
    if args.replications > MAX_RUNS:
        raise InputError(f"--replications: at most {MAX_RUNS:,} runs in one batch, got {args.replications:,}")
    overrides = parse_set_options(args.sets)
    scenario = load_scenario(args.scenario, overrides)
    seed = scenario.seed if args.seed is None else args.seed
    specs = make_specs(scenario, args.replications, seed=seed, scale=args.scale, check=args.check, kernel=run_kernel(args))
    check_batch_size(specs, args)
    if args.dry_run:
        return _dry_run(scenario.name, specs, args, f"{len(specs)} run(s)")
    out = output_folder(args, default_folder(scenario.name))
    scale = args.scale or scenario.scale
    manifest = new_manifest(
        "run",
        scenario_name=scenario.name,
        scenario_file=str(args.scenario),
        scenario_hash=scenario.hash(),
        scenario=scenario.model_dump(mode="json"),
        overrides=overrides,
        seed=seed,
        replications=args.replications,
        scale=scale,
        check=args.check,
        request={"kind": "run", "scenario_hash": scenario.hash(), "seed": seed, "replications": args.replications,
                 "scale": scale},
    )  # fmt: skip
    report = run_batch(specs, out, manifest, workers=args.workers, chunk_size=args.chunk_size,
                       progress=not args.quiet, executor=args.executor, resume=args.resume)  # fmt: skip
    return _finish(report, args, out, print_summary)


def _dry_run(label: str, specs: list[RunSpec], args: argparse.Namespace, what: str) -> int:
    """``--dry-run``: the number of runs and the time a pilot run predicts; writes nothing."""
    from sim.runs.progress import estimate, format_seconds

    est = estimate(specs, args.workers, args.executor)
    print(f"{label}: {what}; nothing written")
    if est.pilot_status != "ok":
        print(f"the pilot run (run {specs[0].run_id}) failed:\n{est.pilot_error}", file=sys.stderr)
        return 1
    print(f"pilot run: {est.pilot_seconds:.2f} s; estimated {format_seconds(est.seconds)} "
          f"for {est.runs} runs on {est.workers} worker(s) ({args.executor}), before start-up and writing")  # fmt: skip
    return 0


def _finish(report: BatchReport, args: argparse.Namespace, out: Path, summary: Callable[[Path], None]) -> int:
    """Say what a resume skipped and summarize the folder (unless ``--quiet``); exit 1 if a run failed."""
    if not args.quiet:
        if report.skipped:
            print(f"resumed: {report.skipped} run(s) were already stored, {report.asked - report.skipped} run now")
        summary(out)
    return 0 if report.failed == 0 else 1


def worth(s: dict[str, Any]) -> str:
    """``(worth N independent runs)`` when a forecast's replicates count as fewer runs (:func:`summarize`)."""
    eff = s.get("runs_effective")
    return f" (worth {eff:.0f} independent runs: replicates of one particle share its history)" if eff and eff < s["runs"] else ""


def print_summary(out: Path) -> None:
    """Print AITO's deliveries and each target's probability for a results folder, with where the spread of its
    deliveries comes from when a decomposition is in or beside the folder, and for a forecast the target before
    its last month's figures."""
    from sim.analysis.compare import run_clusters
    from sim.analysis.targets import summarize, target_outcomes
    from sim.present.anatomy import anatomy_lines, find_decomposition
    from sim.present.forecast_folder import assimilation_of, before_folder
    from sim.runs.store import load_results, read_manifest

    scenario = read_manifest(out).get("scenario")  # load_results checks it below
    targets = scenario.get("targets", []) if isinstance(scenario, dict) else []
    brands = sorted({t["brand"] for t in targets if isinstance(t, dict) and "brand" in t}) or ["AITO"]
    res = load_results(out, brands=brands)  # only the rows summarised: a forecast's whole table can be gigabytes
    runs, sales, man = res.runs, res.sales, res.manifest
    failed = int((runs["status"] != "ok").sum())
    print(f"{man['scenario_name']}: {len(runs)} run(s), {failed} failed, {man.get('seconds', 0):.1f} s -> {out}")
    if failed:
        first = runs[runs["status"] != "ok"].iloc[0]
        print(f"first failure (run {first['run_id']}):\n{first['error']}", file=sys.stderr)
    if sales.empty:
        return
    sales = sales.assign(year=sales["month"].str[:4])
    for brand in brands:
        by_year = sales[sales["brand"] == brand].groupby(["run_id", "year"])["units"].sum().unstack(fill_value=0)
        if by_year.empty:
            continue
        cells = [f"{y}: {by_year[y].mean():,.0f} [{by_year[y].quantile(0.05):,.0f}, {by_year[y].quantile(0.95):,.0f}]" for y in by_year.columns]
        print(f"{brand} deliveries per year, mean [5%, 95%] over runs:")
        for c in cells:
            print(f"  {c}")
        total = by_year.cumsum(axis=1)
        print(f"{brand} cumulative deliveries by {by_year.columns[-1]}: {total.iloc[:, -1].mean():,.0f} "
              f"[{total.iloc[:, -1].quantile(0.05):,.0f}, {total.iloc[:, -1].quantile(0.95):,.0f}]")  # fmt: skip
    try:
        anatomy = find_decomposition(out)
    except InputError as exc:  # the run is stored: a bad file beside it is worth a word, not a failed command
        print(f"note: {exc}", file=sys.stderr)
        anatomy = None
    assimilation = assimilation_of(man)
    before = before_folder(out) if assimilation is not None else None
    before_res = load_results(before, brands=brands) if before is not None else None
    before_sales = before_res.sales if before_res is not None else None
    before_clusters = run_clusters(before_res.runs) if before_res is not None else None
    for t in targets:
        oc = target_outcomes(sales, t["brand"], t["units"], t["start"], t["by"])
        s = summarize(oc, t["units"], run_clusters(runs))
        print(
            f"Target '{t['name']}' ({t['units']:,.0f} {t['brand']} deliveries {t['start']}..{t['by']}): "
            f"probability {s['probability']:.2f} [95% CI {s['probability_low']:.2f}-{s['probability_high']:.2f}] over {s['runs']} runs"
            f"{worth(s)}; "
            f"delivered {s['delivered_mean']:,.0f} [{s['delivered_p5']:,.0f}, {s['delivered_p95']:,.0f}]; "
            f"month reached median {s['month_reached_median'] or 'not reached'}"
        )
        if before_sales is not None and assimilation is not None and len(before_sales):
            b = summarize(target_outcomes(before_sales, t["brand"], t["units"], t["start"], t["by"]), t["units"],
                          before_clusters)
            print(f"  before the figures of {assimilation.last_month} ({b['runs']} runs in {before}): probability "
                  f"{b['probability']:.2f} [95% CI {b['probability_low']:.2f}-{b['probability_high']:.2f}]{worth(b)}; delivered "
                  f"{b['delivered_mean']:,.0f} [{b['delivered_p5']:,.0f}, {b['delivered_p95']:,.0f}]")  # fmt: skip
        if anatomy is not None:
            for line in anatomy_lines(anatomy, t["name"], man.get("scenario_name"), forecast=assimilation is not None):
                print(line)


# --------------------------------------------------------------------------- sweep


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep YAML file")
    add_out_option(p, "results folder (default: results/sweeps/<sweep>/<time>)")
    add_batch_options(p)


@command("sweep", _sweep_arguments, help="run a parameter sweep (grid, list, lhs, sobol, morris) with replications")
def cmd_sweep(args: argparse.Namespace) -> int:
    from sim.runs import store
    from sim.runs.batch import check_resumable, run_batch
    from sim.runs.executors import check_executor
    from sim.runs.manifest import new_manifest
    from sim.runs.sweep import load_sweep

    check_executor(args.executor)
    sweep = load_sweep(args.sweep)
    specs = sweep.specs(run_kernel(args))
    check_batch_size(specs, args)
    if args.dry_run:
        what = f"{len(sweep.points)} point(s) x {sweep.replications} replicate(s) = {len(specs)} run(s)"
        return _dry_run(sweep.name, specs, args, what)
    out = output_folder(args, default_folder("sweeps", sweep.name))
    manifest = new_manifest(**sweep.manifest())
    if args.resume:
        check_resumable(out, manifest)  # before the design table is (re)written
    design = sweep.design_table()
    store.write_design(out, design)
    report = run_batch(specs, out, manifest, workers=args.workers, chunk_size=args.chunk_size,
                       progress=not args.quiet, executor=args.executor, resume=args.resume, design=design)  # fmt: skip
    return _finish(report, args, out, print_sweep_summary)


def print_sweep_summary(out: Path) -> None:
    """Per design point: runs, failures and each target's probability."""
    from sim.analysis.targets import summarize, target_outcomes
    from sim.runs.store import load_results

    res = load_results(out)
    man, runs, sales = res.manifest, res.runs, res.sales
    failed = int((runs["status"] != "ok").sum())
    print(f"{man['sweep_name']}: {man['design']['points']} point(s) x {man['replications']} replicate(s), "
          f"{len(runs)} run(s), {failed} failed, {man.get('seconds', 0):.1f} s -> {out}")  # fmt: skip
    if failed:
        first = runs[runs["status"] != "ok"].iloc[0]
        print(f"first failure (run {first['run_id']}, point {first['point']}):\n{first['error']}", file=sys.stderr)
    targets = man["scenario"].get("targets", [])
    if sales.empty or not targets or res.design is None:
        return
    point_of = runs.set_index("run_id")["point"]
    sales = sales.assign(point=sales["run_id"].map(point_of))
    params = [c for c in res.design.columns if c.startswith("param:")]
    for t in targets:
        print(f"Target '{t['name']}' ({t['units']:,.0f} {t['brand']} deliveries {t['start']}..{t['by']}) by point:")
        for _, d in res.design.head(50).iterrows():
            sub = sales[sales["point"] == d["point"]]
            if sub.empty:
                continue
            s = summarize(target_outcomes(sub, t["brand"], t["units"], t["start"], t["by"]), t["units"])
            values = ", ".join(f"{c[len('param:'):]}={d[c]}" for c in params)
            print(f"  point {d['point']} ({values}): probability {s['probability']:.2f} "
                  f"[{s['probability_low']:.2f}-{s['probability_high']:.2f}], delivered {s['delivered_mean']:,.0f}")  # fmt: skip
        if len(res.design) > 50:
            print(f"  ... {len(res.design) - 50} more points (see {out}/design.parquet)")


# --------------------------------------------------------------------------- rerun, export


def _rerun_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder written by 'sim run' or 'sim sweep'")
    p.add_argument("run_id", type=nonneg_int, help="the run's run_id")
    add_out_option(p, "also write the rerun's tables as a results folder here")


@command("rerun", _rerun_arguments, help="re-run one stored run alone and check it reproduces bit for bit")
def cmd_rerun(args: argparse.Namespace) -> int:
    from sim.runs.rerun import rerun

    # The batch's own kernel unless SIM_KERNEL asks for another (the notes then say why the tables differ).
    rep = rerun(args.results, args.run_id, args.out, kernel=args.kernel)
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    if rep.identical:
        print(f"run {rep.run_id}: identical ({rep.seconds:.2f} s)" + (f"; tables written to {args.out}" if args.out else ""))
        return 0
    print(f"run {rep.run_id}: DIFFERENT from the stored run:")
    for d in rep.differences:
        print(f"  {d}")
    return 1


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results")
    p.add_argument("--csv", action="store_true", required=True, help="write CSV (the only format for now)")
    p.add_argument("--to", help="folder for the CSV files (default: the results folder)")
    add_allow_partial(p)


@command("export", _export_arguments, help="write CSV copies of a results folder's tables")
def cmd_export(args: argparse.Namespace) -> int:
    from sim.runs.store import export_csv

    for p in export_csv(args.results, args.to):
        print(p)
    return 0


# --------------------------------------------------------------------------- bench


def _bench_arguments(p: argparse.ArgumentParser) -> None:
    from sim.runs.bench import DEFAULT_BUYERS

    p.add_argument("--buyers", type=number(int, 1, maximum=1e9, what="a whole number"), nargs="+",
                   default=list(DEFAULT_BUYERS), metavar="N", help="population sizes (default: 10000 100000 500000)")
    p.add_argument("--products", type=number(int, 1, maximum=10_000, what="a whole number"), default=60, metavar="J",
                   help="products offered (default 60)")
    p.add_argument("--repeat", type=number(int, 1, maximum=1000, what="a whole number"), default=3, metavar="R",
                   help="timings per figure; the median is kept (default 3)")
    p.add_argument("--naive-max", type=number(int, 1, maximum=1_000_000, what="a whole number"), default=20_000,
                   metavar="N", help="time the naive reference on at most this many buyers (default 20000)")
    p.add_argument("--nests", type=positive_int, default=1, metavar="K", help="nests (default 1, as the baseline)")
    p.add_argument("--nest-lambda", type=number(float, 0.0, strict=True, maximum=1.0, what="a number"), default=0.8,
                   metavar="L", help="nesting parameter in (0, 1] (default 0.8, the schema default; the baseline uses "
                   "0.5; 1 with one nest = plain logit)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


@command("bench", _bench_arguments, help="microseconds per buyer-decision: naive Mesa reference, production path, floor")
def cmd_bench(args: argparse.Namespace) -> int:
    from sim.runs.bench import bench_size, format_table, machine
    from sim.runs.limits import check_bench

    if args.nests > args.products:
        raise InputError(f"--nests: at most one nest per product ({args.products}), got {args.nests}")
    for n in args.buyers:
        check_bench(n, args.products)
    sizes = []
    for n in args.buyers:
        if not args.json:
            print(f"measuring {n:,} buyers x {args.products} products ...", file=sys.stderr, flush=True)
        sizes.append(bench_size(n, args.products, args.repeat, args.naive_max, nests=args.nests, nest_lambda=args.nest_lambda))
    last = sizes[-1]
    if args.json:
        out = {k: last[k] for k in ("naive_us", "fast_us", "floor_us", "n_buyers", "n_products", "numpy_us")}
        out.update({"repeat": args.repeat, "nests": args.nests, "nest_lambda": args.nest_lambda,
                    "naive_max": args.naive_max, "sizes": sizes, "machine": machine()})  # fmt: skip
        print(json.dumps(out, indent=2))
        return 0
    m = machine()
    print(f"microseconds per buyer-decision, {args.products} products, {args.nests} nest(s), lambda {args.nest_lambda:g}; "
          f"median of {args.repeat}")  # fmt: skip
    load = "" if m["load_average"] is None else f", load average {m['load_average']:.2f}"
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, "
          f"{m['platform']}{load}")  # fmt: skip
    print()
    print(format_table(sizes))
    if any(s["naive_buyers"] < s["n_buyers"] for s in sizes):
        print(f"\nnaive: timed on the first {args.naive_max:,} buyers (limits scaled in proportion); its cost per "
              "decision does not depend on the number of buyers")  # fmt: skip
    return 0
