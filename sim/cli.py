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
from typing import Any

from .yamlio import InputError

EXIT_INPUT = 2


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with usage, as argparse does, but no traceback
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sim", description="Agent-based simulator of China's premium car market.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a scenario (with replications) and write tidy tables")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--seed", type=_nonneg_int, help="root seed (default: the scenario's)")
    r.add_argument("--replications", "-r", type=_positive_int, default=1, help="Monte Carlo replicates (default 1)")
    r.add_argument("--workers", "-w", type=_positive_int, help="worker processes (default: all cores)")
    r.add_argument("--scale", type=_positive_float, help="real buyers per buyer agent (1 = one agent per buyer)")
    r.add_argument("--out", "-o", help="results folder (default: results/<scenario>/<time>)")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                   help="override a scenario value, e.g. --set 'products.AITO M6.price=260000'")
    r.add_argument("--force", action="store_true", help="replace the results in a non-empty folder")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress or summary")
    r.set_defaults(func=cmd_run)

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


def _add_optional_commands(sub: Any) -> None:
    """Commands that live with their modules register here."""
    from .calibrate import add_calibrate_commands

    from .compare import add_compare_command

    add_calibrate_commands(sub)
    add_compare_command(sub)


def _version() -> str:
    from . import __version__

    return f"sim {__version__}"


# ------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    from .scenario import load_scenario

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
    from .scenario import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .store import export_csv

    for p in export_csv(args.results, args.to):
        print(p)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import store
    from .batch import run_batch
    from .run import make_specs
    from .scenario import load_scenario, parse_set_option

    overrides = dict(parse_set_option(s) for s in args.sets)
    scenario = load_scenario(args.scenario, overrides)
    out = Path(args.out) if args.out else Path("results") / scenario.name / store.now_utc().replace(":", "").replace("+0000", "Z")
    out = store.prepare_output(out, force=args.force)
    seed = scenario.seed if args.seed is None else args.seed
    specs = make_specs(scenario, args.replications, seed=seed, scale=args.scale)
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
            "scale": args.scale or scenario.scale,
            "workers": args.workers,
        }
    )
    report = run_batch(specs, out, manifest, workers=args.workers, progress=not args.quiet)
    if not args.quiet:
        print_summary(out)
    return 0 if report.failed == 0 else 1


def print_summary(out: Path) -> None:
    """Print AITO's deliveries and each target's probability for a results folder."""
    from .store import load_results
    from .targets import summarize, target_outcomes

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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # last resort: say what happened without a traceback
        if os.environ.get("SIM_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (set SIM_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
