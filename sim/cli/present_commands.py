"""Commands of the presentation layer: ``sim compare``, ``report``, ``plot`` and ``dashboard``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.cli.options import (
    add_allow_partial,
    add_batch_options,
    add_out_option,
    hold_folder,
    port,
    positive_float,
    positive_int,
    private_matplotlib_cache,
    run_kernel,
    seed_int,
)
from sim.cli.registry import command
from sim.present.dashboard.config import DEFAULT_REPLICATIONS, DEFAULT_SCALE
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:
    from sim.runs.store import Results

# The analysis and presentation modules are imported inside the functions that use them: ``sim --help``
# imports every command module, and they import pandas, scipy and matplotlib (seconds).

REPORTED_HELP = "reported figures CSV (default: scenarios/reported/figures.csv)"

# --------------------------------------------------------------------------- compare


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    from sim.analysis.compare import WHAT

    p.add_argument("results", help="results folder (scenario A)")
    p.add_argument("results_b", nargs="?", help="second results folder (scenario B), run on the same seed")
    p.add_argument("--reported", help=REPORTED_HELP)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format (default table)")
    p.add_argument("--what", choices=WHAT, help="only this part (csv: default figures; json: one key)")
    p.add_argument("--unpaired", action="store_true", help="compare two folders not run on the same seeds as independent samples")
    p.add_argument("--all-figures", action="store_true",
                   help="use alliance, group, parent, disputed, export, wholesale and production figures in the metrics too")  # fmt: skip
    _decomposition_option(p, "of the first folder")
    add_allow_partial(p)


@command("compare", _compare_arguments,
         help="compare results with reported figures; the targets; two scenarios on the same seeds",
         description="Compare a results folder with reported figures and summarize its targets; with a second "
         "folder (scenario B), the paired differences B - A and where B's new products' buyers came from.")  # fmt: skip
def cmd_compare(args: argparse.Namespace) -> int:
    """Run ``sim compare``; bad input raises :class:`InputError` (exit 2)."""
    import pandas as pd

    from sim.analysis.compare import compare
    from sim.analysis.figure_comparison import all_figures, default_figures
    from sim.analysis.pair_comparison import compare_pair
    from sim.analysis.reported import DEFAULT_PATH as REPORTED_DEFAULT_PATH
    from sim.present.comparison import build_document, folder_context, format_csv, format_table
    from sim.runs.store import load_results

    if args.unpaired and not args.results_b:
        raise InputError("--unpaired needs two results folders")
    if args.what in ("paired", "cannibalisation") and not args.results_b:
        raise InputError(f"--what {args.what} needs two results folders")
    if args.reported is None and not REPORTED_DEFAULT_PATH.is_file():
        print(f"note: no reported figures ({REPORTED_DEFAULT_PATH} is absent); targets only", file=sys.stderr)
        reported: Any = pd.DataFrame()
    else:
        reported = _reported(args.reported)
    flt = all_figures if args.all_figures else default_figures
    folders = [args.results] + ([args.results_b] if args.results_b else [])
    loaded = [load_results(f) for f in folders]
    reading_notes(loaded, reported)
    comps = [compare(r, reported, figures_filter=flt) for r in loaded]
    pair = compare_pair(loaded[0], loaded[1], unpaired=args.unpaired) if len(loaded) > 1 else None
    contexts = [folder_context(r, args.decomposition if i == 0 else None) for i, r in enumerate(loaded)]
    if args.format == "json":
        doc = build_document(comps, pair, contexts)
        if args.what:
            doc = {args.what: doc[args.what]}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    elif args.format == "csv":
        sys.stdout.write(format_csv(comps, pair, args.what or "figures"))
    else:
        sys.stdout.write(format_table(comps, pair, args.what, contexts))
    return 0


def reading_notes(loaded: list[Results], reported: Any) -> None:
    """Say on stderr what a reader must know: a batch read partial (``--allow-partial``), failed runs left
    out, rows of the reported figures set aside because they give no figure."""
    for res in loaded:
        c = res.completeness
        if c is not None and c.partial:
            print(f"note: {res.path}: PARTIAL: {c.describe()}; the figures are of those runs only", file=sys.stderr)
        if c is not None and c.failed:
            print(f"note: {res.path}: {c.failed} run(s) failed and are left out (see the runs table)", file=sys.stderr)
    unusable = getattr(reported, "unusable", None)
    if unusable is not None and len(unusable):
        reasons = unusable["reason"].astype(str).str.split(":").str[0].value_counts()
        why = ", ".join(f"{n} {r}" for r, n in reasons.head(4).items())
        print(f"note: {len(unusable)} row(s) of the reported figures give no figure and are set aside ({why}); "
              "they are listed under 'unusable' by sim.analysis.reported.load_reported", file=sys.stderr)  # fmt: skip


def _reported(path: str | None) -> Any:
    """Reported figures for a comparison: ``--reported``'s CSV, else the project's file, else none (an empty table)."""
    import pandas as pd

    from sim.analysis.compare import read_reported
    from sim.analysis.reported import DEFAULT_PATH as REPORTED_DEFAULT_PATH

    if path is not None:
        return read_reported(path)
    return read_reported(None) if REPORTED_DEFAULT_PATH.is_file() else pd.DataFrame()


# --------------------------------------------------------------------------- report, plot


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results folder of the scenario in focus (sim run, or sim forecast)")
    p.add_argument("--vs", metavar="DIR2", help="reference results folder, run on the same seed; differences are DIR - DIR2")
    add_out_option(p, "HTML file to write (default: DIR/report.html)")
    _decomposition_option(p)
    p.add_argument("--backtest", metavar="BTDIR",
                   help="backtest folder (sim backtest --out BTDIR): adds 'How good are these forecasts'")  # fmt: skip
    _reported_options(p)
    add_allow_partial(p)


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    from sim.present.report_figures import PLOTS

    p.add_argument("results", help="results folder of the scenario in focus (for --what backtest: a backtest folder)")
    p.add_argument("--what", required=True, choices=PLOTS, metavar="WHAT",
                   help="fan (cumulative deliveries and the target; of a forecast folder, with the figures it "
                   "assimilated), target (probability and month reached), brands (monthly deliveries per brand), "
                   "segments (segment shares), segment-brands (brand shares inside each segment); of a forecast "
                   "folder (sim forecast): ess (the particles' effective sample size by month), moved (the forecast "
                   "before and after the last month's figures); with --vs: fans (both fans on one axis), paired "
                   "(paired differences), cannibalisation (where the new products' buyers came from); of a backtest "
                   "folder (sim backtest --out): backtest (errors against the benchmarks and band coverage by horizon)")
    add_out_option(p, "image file: .png, .svg or .pdf", required=True)
    p.add_argument("--vs", metavar="DIR2", help="reference results folder, run on the same seed")
    p.add_argument("--dpi", type=int, default=150, help="resolution of a PNG (default 150)")
    _reported_options(p)
    add_allow_partial(p)


def _decomposition_option(p: argparse.ArgumentParser, whose: str = "") -> None:
    p.add_argument("--decomposition", metavar="DIR",
                   help="decomposition folder (sim decompose --out DIR) or its decomposition.json: where the spread of "
                        f"the targets' deliveries comes from{' (' + whose + ')' if whose else ''} (default: "
                        "decomposition.json in or beside the results folder)")  # fmt: skip


def _reported_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reported", help=REPORTED_HELP)
    p.add_argument("--unpaired", action="store_true", help="with --vs: folders not run on the same seeds, as independent samples")


def _check_vs(args: argparse.Namespace) -> None:
    if args.unpaired and not args.vs:
        raise InputError("--unpaired needs a second results folder (--vs DIR2)")


@command("report", _report_arguments,
         help="write a self-contained HTML report of a batch (with --vs: against another batch)",
         description="Write one HTML file (figures embedded, opens offline, prints on A4 landscape) with the target's "
         "probability, the figures, the scenario's assumptions, the comparison with reported figures and the manifest. "
         "With --vs DIR2: paired differences DIR - DIR2 (same seeds), cannibalisation and both fan charts.")  # fmt: skip
def cmd_report(args: argparse.Namespace) -> int:
    from sim.present.report import write_report

    _check_vs(args)
    _hold_if_results_folder(Path(args.out) if args.out else Path(args.results) / "report.html")
    private_matplotlib_cache()
    path = write_report(args.results, args.out, args.vs, reported=_reported(args.reported), unpaired=args.unpaired,
                        decomposition=args.decomposition, backtest=args.backtest)  # fmt: skip
    print(path)
    return 0


@command("plot", _plot_arguments, help="draw one figure of a batch as PNG, SVG or PDF",
         description="Draw one figure of the report (the report's figures, one at a time).")  # fmt: skip
def cmd_plot(args: argparse.Namespace) -> int:
    from sim.present.report_figures import write_plot

    _check_vs(args)
    if args.dpi < 20 or args.dpi > 1200:
        raise InputError(f"--dpi: must be in 20..1200, got {args.dpi}")
    _hold_if_results_folder(Path(args.out))
    private_matplotlib_cache()
    path = write_plot(args.results, args.what, args.out, args.vs, reported=_reported(args.reported),
                      unpaired=args.unpaired, dpi=args.dpi)  # fmt: skip
    print(path)
    return 0


def _hold_if_results_folder(file: Path) -> None:
    """Lock the folder ``file`` goes into when it is a results folder (another process may be writing it)."""
    from sim.runs.store import MANIFEST

    if (file.parent / MANIFEST).exists():
        hold_folder(file.parent)


# --------------------------------------------------------------------------- dashboard


def _dashboard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?",
                   help="scenario shown first (default scenarios/baseline.yaml); the page offers the scenario files beside it")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--baseline",
                   help="scenario every run is compared with on the same seeds (default: baseline.yaml beside SCENARIO)")
    p.add_argument("--replications", "-r", type=positive_int, default=DEFAULT_REPLICATIONS,
                   help=f"replicates per scenario the page starts with (default {DEFAULT_REPLICATIONS})")
    p.add_argument("--scale", type=positive_float, default=DEFAULT_SCALE,
                   help=f"real buyers per buyer agent the page starts with (default {DEFAULT_SCALE:g}: coarse, seconds per run)")
    p.add_argument("--seed", type=seed_int, help="root seed the page starts with (default: the baseline's)")
    p.add_argument("--forecast", metavar="DIR",
                   help="a forecast folder (sim forecast --out DIR) shown on a Forecast page: its fan chart with the "
                        "figures it assimilated, the effective sample size, what the last figures moved")  # fmt: skip
    add_batch_options(p, "workers", workers="worker processes per run (default: all cores)")


@command("dashboard", _dashboard_arguments,
         help="serve an interactive page: pick a scenario, move its levers, run against the baseline")  # fmt: skip
def cmd_dashboard(args: argparse.Namespace) -> int:
    # The extra is checked before anything imports Solara: without it, the command says how to install it.
    from sim.present.dashboard.config import make_config
    from sim.present.dashboard.server import check_extra, free_port, serve
    from sim.runs.limits import check_agents
    from sim.scenario.load import load_scenario

    check_extra()
    private_matplotlib_cache()
    config = make_config(args.scenario, args.baseline, args.replications, args.scale, args.seed, args.workers,
                         run_kernel(args), args.forecast)  # fmt: skip
    for path in (config.scenario, config.baseline):  # the page's first runs: agents within the limits
        check_agents(load_scenario(path), args.scale, workers=args.workers or 1)
    return serve(config, args.host, free_port(args.host, args.port))
