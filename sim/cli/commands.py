"""The ``sim`` command line. Thin: parses arguments and calls the modules.

Bad input exits with status 2 and a message naming the file, line and field;
no traceback is printed (set ``SIM_DEBUG=1`` to see one for internal errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from sim.scenario.yamlio import InputError

EXIT_INPUT = 2


def _number(kind: type, minimum: float, strict: bool, what: str) -> Any:
    """An argparse type: ``kind`` (int or float) at least (or, if ``strict``, above) ``minimum``."""

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < minimum or (strict and v == minimum):
            bound = f"> {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {v}")
        return v

    return parse


_positive_int = _number(int, 1, False, "a whole number")
_nonneg_int = _number(int, 0, False, "a whole number")
_positive_float = _number(float, 0.0, True, "a number")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with usage, as argparse does, but no traceback
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sim", description="Agent-based simulator of China's premium car market.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a scenario (with replications) and write tidy tables")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--seed", type=_nonneg_int,
                   help="root seed (default: the scenario's); scenarios run with the same seed share random numbers")
    r.add_argument("--replications", "-r", type=_positive_int, default=1, help="Monte Carlo replicates (default 1)")
    r.add_argument("--scale", type=_positive_float, help="real buyers per buyer agent (1 = one agent per buyer)")
    r.add_argument("--out", "-o", help="results folder (default: results/<scenario>/<time>)")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario value, e.g. --set 'products.AITO M6.price=260000'")
    r.add_argument("--check", action="store_true",
                   help="assert the accounting invariants every month; a violation fails the run with the month and product")
    _add_batch_options(r)
    r.set_defaults(func=cmd_run)

    sw = sub.add_parser("sweep", help="run a parameter sweep (grid, list, lhs, sobol, morris) with replications")
    sw.add_argument("sweep", help="sweep YAML file")
    sw.add_argument("--out", "-o", help="results folder (default: results/sweeps/<sweep>/<time>)")
    _add_batch_options(sw)
    sw.set_defaults(func=cmd_sweep)

    rr = sub.add_parser("rerun", help="re-run one stored run alone and check it reproduces bit for bit")
    rr.add_argument("results", help="results folder written by 'sim run' or 'sim sweep'")
    rr.add_argument("run_id", type=_nonneg_int, help="the run's run_id")
    rr.add_argument("--out", "-o", help="also write the rerun's tables as a results folder here")
    rr.set_defaults(func=cmd_rerun)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schema", help="print the JSON Schema of a scenario file")
    s.set_defaults(func=cmd_schema)

    e = sub.add_parser("export", help="write CSV copies of a results folder's tables")
    e.add_argument("results")
    e.add_argument("--csv", action="store_true", required=True, help="write CSV (the only format for now)")
    e.add_argument("--to", help="folder for the CSV files (default: the results folder)")
    e.set_defaults(func=cmd_export)

    _add_optional_commands(sub)
    return p


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the batch commands (run, sweep)."""
    p.add_argument("--workers", "-w", type=_positive_int, help="worker processes (default: all cores)")
    p.add_argument("--executor", default="processes", metavar="KIND",
                   help="serial, processes (default), dask (a local Dask cluster) or dask://HOST:PORT (a running scheduler)")
    p.add_argument("--chunk-size", type=_positive_int, help="runs per task (default: adaptive, about 10 s of work per task, at most 100 runs)")
    p.add_argument("--resume", action="store_true", help="continue a killed batch in --out: skip stored runs, run the rest")
    p.add_argument("--dry-run", action="store_true", help="print the number of runs and an estimated time; write nothing")
    p.add_argument("--force", action="store_true", help="replace the results in a non-empty folder")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")


def _add_optional_commands(sub: Any) -> None:
    """Commands that live with their modules register here."""
    from sim.analysis.calibrate import add_ensemble_commands
    from sim.analysis.fit_appeals import add_calibrate_commands
    from sim.analysis.sensitivity import add_sensitivity_commands
    from sim.analysis.validate_model import add_validation_commands
    from sim.present.comparison import add_compare_command
    from sim.present.dashboard.command import add_dashboard_commands  # Solara is imported only when it runs
    from sim.present.report import add_report_commands
    from sim.runs.bench import add_bench_command

    add_bench_command(sub)
    add_calibrate_commands(sub)
    add_compare_command(sub)
    add_dashboard_commands(sub)
    add_ensemble_commands(sub)
    add_report_commands(sub)
    add_sensitivity_commands(sub)
    add_validation_commands(sub)


def _version() -> str:
    from sim import __version__

    return f"sim {__version__}"


# ------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    from sim.scenario.schema import load_scenario

    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except InputError as exc:
            bad += 1
            print(str(exc), file=sys.stderr)
            continue
        print(f"{f}: ok ({sc.name}: {len(sc.products)} products, {len(sc.brands)} brands, {sc.start}..{sc.end}, hash {sc.hash()})")
    return EXIT_INPUT if bad else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from sim.scenario.schema import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sim.runs.store import export_csv

    for p in export_csv(args.results, args.to):
        print(p)
    return 0


def _batch_out(args: argparse.Namespace, default: Path) -> Path:
    """The results folder of a batch command, prepared (or checked, for --resume)."""
    from sim.runs import store

    if args.resume and args.force:
        raise InputError("--resume and --force contradict each other: --resume keeps the stored runs, --force deletes them")
    if args.resume and not args.out:
        raise InputError("--resume needs --out: the folder of the batch to continue")
    return store.prepare_output(Path(args.out) if args.out else default, force=args.force, resume=args.resume)


def _dry_run(label: str, specs: list[Any], args: argparse.Namespace, what: str) -> int:
    from sim.runs.batch import estimate, format_seconds

    est = estimate(specs, args.workers, args.executor)
    print(f"{label}: {what}; nothing written")
    if est.pilot_status != "ok":
        print(f"the pilot run (run {specs[0].run_id}) failed:\n{est.pilot_error}", file=sys.stderr)
        return 1
    print(f"pilot run: {est.pilot_seconds:.2f} s; estimated {format_seconds(est.seconds)} "
          f"for {est.runs} runs on {est.workers} worker(s) ({args.executor}), before start-up and writing")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from sim.runs import store
    from sim.runs.batch import MAX_RUNS, check_executor, run_batch
    from sim.runs.run import make_specs
    from sim.scenario.schema import load_scenario, parse_set_option

    check_executor(args.executor)
    if args.replications > MAX_RUNS:
        raise InputError(f"--replications: at most {MAX_RUNS:,} runs in one batch, got {args.replications:,}")
    overrides = dict(parse_set_option(s) for s in args.sets)
    scenario = load_scenario(args.scenario, overrides)
    seed = scenario.seed if args.seed is None else args.seed
    specs = make_specs(scenario, args.replications, seed=seed, scale=args.scale, check=args.check)
    if args.dry_run:
        return _dry_run(scenario.name, specs, args, f"{len(specs)} run(s)")
    default = Path("results") / scenario.name / store.now_utc().replace(":", "").replace("+0000", "Z")
    out = _batch_out(args, default)
    scale = args.scale or scenario.scale
    manifest = store.base_manifest()
    manifest.update(
        {
            "kind": "run",
            "scenario_name": scenario.name,
            "scenario_file": str(args.scenario),
            "scenario_hash": scenario.hash(),
            "scenario": scenario.model_dump(mode="json"),
            "overrides": overrides,
            "seed": seed,
            "replications": args.replications,
            "scale": scale,
            "check": args.check,
            "request": {
                "kind": "run",
                "scenario_hash": scenario.hash(),
                "seed": seed,
                "replications": args.replications,
                "scale": scale,
            },
        }
    )
    report = run_batch(specs, out, manifest, workers=args.workers, chunk_size=args.chunk_size,
                       progress=not args.quiet, executor=args.executor, resume=args.resume)
    if not args.quiet:
        if report.skipped:
            print(f"resumed: {report.skipped} run(s) were already stored, {report.asked - report.skipped} run now")
        print_summary(out)
    return 0 if report.failed == 0 else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    from sim.runs import store
    from sim.runs.batch import check_executor, check_resumable, run_batch
    from sim.runs.sweep import load_sweep

    check_executor(args.executor)
    sweep = load_sweep(args.sweep)
    specs = sweep.specs()
    if args.dry_run:
        what = f"{len(sweep.points)} point(s) x {sweep.replications} replicate(s) = {len(specs)} run(s)"
        return _dry_run(sweep.name, specs, args, what)
    default = Path("results") / "sweeps" / sweep.name / store.now_utc().replace(":", "").replace("+0000", "Z")
    out = _batch_out(args, default)
    manifest = store.base_manifest()
    manifest.update(sweep.manifest())
    if args.resume:
        check_resumable(out, manifest)  # before the design table is (re)written
    design = sweep.design_table()
    store.write_design(out, design)
    report = run_batch(specs, out, manifest, workers=args.workers, chunk_size=args.chunk_size,
                       progress=not args.quiet, executor=args.executor, resume=args.resume, design=design)
    if not args.quiet:
        if report.skipped:
            print(f"resumed: {report.skipped} run(s) were already stored, {report.asked - report.skipped} run now")
        print_sweep_summary(out)
    return 0 if report.failed == 0 else 1


def print_sweep_summary(out: Path) -> None:
    """Per design point: runs, failures and each target's probability."""
    from sim.analysis.targets import summarize, target_outcomes
    from sim.runs.store import load_results

    res = load_results(out)
    man, runs, sales = res.manifest, res.runs, res.sales
    failed = int((runs["status"] != "ok").sum())
    print(f"{man['sweep_name']}: {man['design']['points']} point(s) x {man['replications']} replicate(s), "
          f"{len(runs)} run(s), {failed} failed, {man.get('seconds', 0):.1f} s -> {out}")
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
                  f"[{s['probability_low']:.2f}-{s['probability_high']:.2f}], delivered {s['delivered_mean']:,.0f}")
        if len(res.design) > 50:
            print(f"  ... {len(res.design) - 50} more points (see {out}/design.parquet)")


def cmd_rerun(args: argparse.Namespace) -> int:
    from sim.runs.batch import rerun

    rep = rerun(args.results, args.run_id, args.out)
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    if rep.identical:
        print(f"run {rep.run_id}: identical ({rep.seconds:.2f} s)" + (f"; tables written to {args.out}" if args.out else ""))
        return 0
    print(f"run {rep.run_id}: DIFFERENT from the stored run:")
    for d in rep.differences:
        print(f"  {d}")
    return 1


def print_summary(out: Path) -> None:
    """Print AITO's deliveries and each target's probability for a results folder."""
    from sim.analysis.targets import summarize, target_outcomes
    from sim.runs.store import load_results

    res = load_results(out)
    runs, sales, man = res.runs, res.sales, res.manifest
    failed = int((runs["status"] != "ok").sum())
    print(f"{man['scenario_name']}: {len(runs)} run(s), {failed} failed, {man.get('seconds', 0):.1f} s -> {out}")
    if failed:
        first = runs[runs["status"] != "ok"].iloc[0]
        print(f"first failure (run {first['run_id']}):\n{first['error']}", file=sys.stderr)
    if sales.empty:
        return
    targets = man["scenario"].get("targets", [])
    brands = sorted({t["brand"] for t in targets}) or ["AITO"]
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
              f"[{total.iloc[:, -1].quantile(0.05):,.0f}, {total.iloc[:, -1].quantile(0.95):,.0f}]")
    for t in targets:
        oc = target_outcomes(sales, t["brand"], t["units"], t["start"], t["by"])
        s = summarize(oc, t["units"])
        print(
            f"Target '{t['name']}' ({t['units']:,.0f} {t['brand']} deliveries {t['start']}..{t['by']}): "
            f"probability {s['probability']:.2f} [95% CI {s['probability_low']:.2f}-{s['probability_high']:.2f}] over {s['runs']} runs; "
            f"delivered {s['delivered_mean']:,.0f} [{s['delivered_p5']:,.0f}, {s['delivered_p95']:,.0f}]; "
            f"month reached median {s['month_reached_median'] or 'not reached'}"
        )


# ------------------------------------------------------------------- main


def _check_kernel_environment() -> None:
    """A bad ``SIM_KERNEL`` is bad input: say so before any run starts (and fails on it)."""
    if os.environ.get("SIM_KERNEL"):
        from sim.model.kernels import resolve_kernel

        resolve_kernel(os.environ["SIM_KERNEL"], origin="SIM_KERNEL")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _check_kernel_environment()
        return func(args)
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system, not the code: disk full, read-only folder, permissions
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # last resort: say what happened without a traceback
        if os.environ.get("SIM_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (set SIM_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
