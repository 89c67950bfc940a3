"""Compare stored results with reported figures; the targets; two scenarios on the same seeds.

Analysis only: reads a results folder (``sim.runs.store.load_results``) and never re-runs the model.

One folder (:func:`compare`)
    Every reported volume figure against the simulated sum over the same months, and the series
    metrics with their tolerances (:mod:`sim.analysis.figure_comparison`, on the simulated
    deliveries of :mod:`sim.analysis.unit_cube`).

Targets
    Per target of the scenario: :func:`sim.analysis.targets.summarize` of :func:`sim.analysis.targets.target_outcomes`.

Two scenarios (:func:`sim.analysis.pair_comparison.compare_pair`)
    Paired differences ``B - A`` per replicate of the headline numbers when both folders were run
    with the same root seed (common random numbers), and the cannibalisation table of products new
    in B.

The metrics themselves are pure functions in :mod:`sim.analysis.metrics`; the text, JSON and CSV output and
the command line are in :mod:`sim.present.comparison`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.figure_comparison import TABLE_COLUMNS, FiguresFilter, default_figures, figure_table, series_metrics
from sim.analysis.reported import DEFAULT_PATH as REPORTED_DEFAULT_PATH
from sim.analysis.reported import ReportedFigures, load_reported
from sim.analysis.targets import summarize, target_outcomes
from sim.analysis.unit_cube import UnitCube, unit_cube
from sim.runs.store import Results, load_results
from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import InputError

#: The parts of ``sim compare``'s output (``--what``).
WHAT = ("figures", "series", "targets", "paired", "cannibalisation")


# --------------------------------------------------------------------------- targets


def target_summary(
    sales: pd.DataFrame, target: Mapping[str, Any], period: tuple[str, str] | None = None,
    clusters: pd.Series | None = None,
) -> dict[str, Any]:
    """Probability of reaching one target, the month reached, deliveries and shortfall.

    Args:
        sales: sales table of the finished runs.
        target: ``name``, ``brand``, ``units``, ``start``, ``by`` (a scenario's target).
        period: first and last month of the results; a window outside it gets a note.
        clusters: run id -> particle for a forecast's replicates (:func:`run_clusters`): the interval counts
            them as the independent runs they are worth.

    Returns:
        ``name``, ``brand``, ``units``, ``start``, ``by``, ``reported_cumulative_at_start``
        and the keys of :func:`sim.analysis.targets.summarize` (``probability`` with its 95% Wilson
        interval ``probability_low``/``probability_high``, ``runs_effective``, ``month_reached_p5``/``_median``/
        ``_p95`` (None: not reached by then), ``delivered_*``, ``shortfall_*``, ``runs``), and
        ``note``.
    """
    units = float(target["units"])
    outcomes = target_outcomes(sales, target["brand"], units, target["start"], target["by"])
    out: dict[str, Any] = {
        "name": target["name"], "brand": target["brand"], "units": units, "start": target["start"],
        "by": target["by"], "reported_cumulative_at_start": target.get("reported_cumulative_at_start"),
    }  # fmt: skip
    out.update(summarize(outcomes, units, clusters))
    note = ""
    if period is not None and (
        parse_month(target["start"]) < parse_month(period[0]) or parse_month(target["by"]) > parse_month(period[1])
    ):
        note = f"window {target['start']}..{target['by']} is not inside the results ({period[0]}..{period[1]}): months outside count as zero"
    out["note"] = note
    return out


def target_table(results: Results, cube: UnitCube | None = None) -> list[dict[str, Any]]:
    """:func:`target_summary` for every target of the results' scenario."""
    cube = cube or unit_cube(results)
    sales = results.sales
    if len(sales):
        sales = sales[sales["run_id"].isin(cube.run_ids)]
    period = (format_month(cube.first), format_month(cube.last))
    clusters = run_clusters(results.runs)
    targets = (results.manifest.get("scenario") or {}).get("targets") or []
    return [target_summary(sales, t, period, clusters) for t in targets]


def run_clusters(runs: pd.DataFrame) -> pd.Series | None:
    """Run id -> the particle a forecast's replicate branched from (None: the runs are independent)."""
    if "particle" not in runs.columns or runs.empty:
        return None
    particle = runs.set_index("run_id")["particle"]
    return particle if particle.notna().all() else None


# --------------------------------------------------------------------------- one folder


@dataclass
class Comparison:
    """One results folder against the reported figures, and its targets."""

    path: Path
    scenario_name: str
    runs: int
    period: str
    figures: pd.DataFrame
    series: pd.DataFrame
    targets: list[dict[str, Any]]


def as_results(results: Results | str | Path) -> Results:
    """A loaded results folder as it is, or a path loaded."""
    return results if isinstance(results, Results) else load_results(results)


def _as_figures(reported: ReportedFigures | pd.DataFrame | str | Path | None) -> pd.DataFrame:
    if isinstance(reported, pd.DataFrame):
        return reported
    if isinstance(reported, ReportedFigures):
        return reported.figures
    return read_reported(reported).figures


def read_reported(path: str | Path | None = None) -> ReportedFigures:
    """Load reported figures (None: the project's file), bad input as :class:`InputError`."""
    p = Path(path) if path is not None else REPORTED_DEFAULT_PATH
    try:
        return load_reported(p)
    except InputError:
        raise  # names the file and line (a missing file, a folder, broken CSV...)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: {exc}") from None


def compare(
    results: Results | str | Path,
    reported: ReportedFigures | pd.DataFrame | str | Path | None = None,
    *,
    figures_filter: FiguresFilter = default_figures,
) -> Comparison:
    """Compare one results folder with reported figures and summarize its targets.

    Args:
        results: a loaded results folder or its path.
        reported: reported figures (loaded, their ``figures`` table, or a CSV path); None for
            the project's ``scenarios/reported/figures.csv``, or no figures if it is absent.
        figures_filter: why a figure is left out of the metrics
            (:func:`~sim.analysis.figure_comparison.default_figures`, or
            :func:`~sim.analysis.figure_comparison.all_figures` to use them all).

    Returns:
        The figures table (:func:`~sim.analysis.figure_comparison.figure_table`), series metrics
        (:func:`~sim.analysis.figure_comparison.series_metrics`) and targets (:func:`target_table`).
    """
    res = as_results(results)
    cube = unit_cube(res)
    if reported is None and not REPORTED_DEFAULT_PATH.is_file():
        figs = pd.DataFrame()
    else:
        figs = _as_figures(reported)
    table = figure_table(figs, cube, figures_filter) if len(figs) else pd.DataFrame(columns=list(TABLE_COLUMNS))
    return Comparison(
        path=res.path,
        scenario_name=str(res.manifest.get("scenario_name", "")),
        runs=int(cube.run_ids.size),
        period=cube.period,
        figures=table,
        series=series_metrics(table),
        targets=target_table(res, cube),
    )

