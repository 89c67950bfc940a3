"""The figures of a batch, by name (``sim plot --what``, and the report's): each from a :class:`Batch`
(and a reference batch), drawn by :mod:`sim.present.plots`.

matplotlib is imported when a figure is drawn, not when the command line reads :data:`PLOTS`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.analysis.pair_comparison import PairComparison
from sim.present.report_backtest import write_backtest_plot
from sim.present.report_batch import Batch, load_batch, pair_of, tell_apart, write_whole
from sim.present.report_forecast import ess_figure, forecast_fan_figure, moved_figure
from sim.present.report_frames import (
    cumulative_fans,
    need_target,
    reported_cumulative,
    reported_monthly,
    runs_text,
    target_fan,
    target_line,
)
from sim.present.report_html import esc
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when the command line starts
    from matplotlib.figure import Figure


#: Figures of ``sim plot --what``: those of :data:`NEEDS_VS` need a second folder (``--vs``), those of
#: :data:`NEEDS_FORECAST` a forecast folder (``sim forecast``); ``backtest`` reads a backtest folder.
PLOTS = ("fan", "target", "brands", "segments", "segment-brands", "ess", "moved", "fans", "paired", "cannibalisation",
         "backtest")  # fmt: skip
NEEDS_VS = ("fans", "paired", "cannibalisation")
NEEDS_FORECAST = ("ess", "moved")
BACKTEST = "backtest"


def fan_figure(batch: Batch) -> Figure:
    """The brand's cumulative deliveries: since its first deliveries, and toward the target (a forecast folder's
    with the figures it assimilated: :func:`sim.present.report_forecast.forecast_fan_figure`)."""
    from sim.present import plots

    if batch.assimilation is not None:
        return forecast_fan_figure(batch)
    brand, target = batch.brand, batch.target
    fans, line = cumulative_fans(batch)
    aim = f" and the target '{target['name']}'" if target else ""
    title = f"{brand} cumulative deliveries{aim} ({batch.label})"
    return plots.plot_fan(
        fans, target=line, reported=reported_cumulative(batch, brand), forecast_start=batch.forecast_start,
        title=title, subtitle=f"scenario {batch.label} · {runs_text(batch)} · median, 50% and 90% bands over runs",
    )  # fmt: skip


def fans_figure(batch: Batch, vs: Batch) -> Figure:
    """Both scenarios' deliveries counted toward the target, on one axis."""
    from sim.present import plots

    target = need_target(batch)
    line = target_line(target)
    fans = [target_fan(vs, target, "reference"), target_fan(batch, target, "main")]
    return plots.plot_fan(
        fans, target=line, forecast_start=batch.forecast_start, from_zero=False,
        title=f"{target['brand']} deliveries toward '{target['name']}': {batch.label} vs {vs.label}",
        subtitle=f"{runs_text(batch)} each on the same seeds · median, 50% and 90% bands over runs",
    )  # fmt: skip


def target_figure(batch: Batch, vs: Batch | None = None) -> Figure:
    """Probability of the first target and the month it is reached (with the reference's)."""
    from sim.present import plots

    t = need_target(batch)
    outcomes = [(batch.label, batch.outcomes(t))] + ([(vs.label, vs.outcomes(t))] if vs else [])
    return plots.plot_target(
        outcomes, by=str(t["by"]), start=str(t["start"]),
        title=f"Will {t['brand']} deliver {plots.units_text(float(t['units']))} between {t['start']} and {t['by']}? "
        f"({batch.label}" + (f" vs {vs.label})" if vs else ")"),
        subtitle=f"target '{t['name']}' · scenario {batch.label}" + (f" vs {vs.label}" if vs else "")
        + f" · {runs_text(batch)}",
    )  # fmt: skip


def brands_figure(batch: Batch, vs: Batch | None = None) -> Figure:
    """Monthly deliveries per brand with bands and reported points (and the reference's median)."""
    from sim.present import plots

    return plots.plot_brands(
        plots.monthly_units(batch.sales), reported=reported_monthly(batch),
        reference=plots.monthly_units(vs.sales) if vs else None, reference_label=vs.label if vs else "",
        forecast_start=batch.forecast_start, title=f"Monthly deliveries per brand ({batch.label})",
        subtitle=f"scenario {batch.label} · {runs_text(batch)} · all markets · median, 50% and 90% bands"
        + (f" · dashed: {vs.label}" if vs else ""),
    )  # fmt: skip


def _segment_order(batch: Batch) -> list[str]:
    return [str(s["name"]) for s in batch.scenario.get("segments") or []]


def segments_figure(batch: Batch) -> Figure:
    """Price segments' shares of deliveries over time."""
    from sim.present import plots

    return plots.plot_segments(
        plots.shares(batch.sales, "segment"), order=_segment_order(batch), forecast_start=batch.forecast_start,
        title=f"Price segments' share of deliveries ({batch.label})",
        subtitle=f"scenario {batch.label} · mean over {runs_text(batch)} · segment by the month's transaction price",
    )  # fmt: skip


def segment_brands_figure(batch: Batch) -> Figure:
    """Brand shares inside each price segment, by quarter."""
    from sim.present import plots

    return plots.plot_segment_brands(
        plots.shares(batch.sales, "brand", within="segment", quarterly=True), order=_segment_order(batch),
        forecast_start=batch.forecast_start, title=f"Brand shares inside each price segment, by quarter ({batch.label})",
        subtitle=f"scenario {batch.label} · mean over {runs_text(batch)} · the 5 largest brands of each segment, and AITO",
    )  # fmt: skip


def paired_figure(batch: Batch, vs: Batch, pair: PairComparison) -> Figure:
    """Paired differences of the headline numbers, ``batch - vs``."""
    from sim.present import plots

    return plots.plot_paired(
        pair.paired, title=f"{batch.label} minus {vs.label}: headline numbers",
        subtitle=f"{pair.note} · years identical in both are left out",
    )  # fmt: skip


def cannibalisation_figure(batch: Batch, vs: Batch, pair: PairComparison) -> Figure:
    """Where the new products' buyers came from."""
    from sim.present import plots

    s = pair.cannibalisation_summary
    if pair.cannibalisation.empty:
        raise InputError(f"{batch.results.path} vs {vs.results.path}: no cannibalisation to draw ({s.get('note', '')})")
    new = ", ".join(s["new_products"])
    own = sorted(set(batch.sales.loc[batch.sales["model"].isin(s["new_products"]), "brand"].astype(str)))
    return plots.plot_cannibalisation(
        pair.cannibalisation, s, own_brands=own,
        title=f"Where the {new} deliveries came from, {s['window_start']}..{s['window_end']} ({batch.label} vs {vs.label})",
        subtitle=f"{plots.units_text(s['new_units'])} new units (mean) · {pair.note}",
    )  # fmt: skip


def make_figure(
    what: str, batch: Batch, vs: Batch | None = None, pair: PairComparison | None = None, unpaired: bool = False
) -> Figure:
    """One figure by name (:data:`PLOTS`); those in :data:`NEEDS_VS` need ``vs`` (``pair``: its
    :func:`pair_of`, computed when not given)."""
    if what not in PLOTS or what == BACKTEST:
        raise InputError(f"unknown figure of a batch {what!r}: use one of {', '.join(p for p in PLOTS if p != BACKTEST)}")
    if what in NEEDS_VS and vs is None:
        raise InputError(f"--what {what} needs a second results folder (--vs DIR2)")
    if what == "ess":
        return ess_figure(batch)
    if what == "moved":
        return moved_figure(batch)
    if what == "fan":
        return fan_figure(batch)
    if what == "target":
        return target_figure(batch, vs)
    if what == "brands":
        return brands_figure(batch, vs)
    if what == "segments":
        return segments_figure(batch)
    if what == "segment-brands":
        return segment_brands_figure(batch)
    assert vs is not None
    if what == "fans":
        return fans_figure(batch, vs)
    pair = pair or pair_of(batch, vs, unpaired)
    return paired_figure(batch, vs, pair) if what == "paired" else cannibalisation_figure(batch, vs, pair)


def report_figures(batch: Batch, vs: Batch | None, pair: PairComparison | None) -> list[tuple[str, str, str]]:
    """The figures of ``sim report``, in order, as ``(anchor, name, caption)`` (captions are HTML)."""
    target = batch.target
    figs: list[tuple[str, str, str]] = []  # (anchor, what, caption)
    tname = f"'{target['name']}'" if target else ""
    fan_caption = (f"Grey: simulated cumulative deliveries of {batch.brand} since its first deliveries, up to the target's "
                   f"start. Blue: what counts toward {tname}: the reported cumulative at the start plus the simulated "
                   "deliveries from then on; the gap between the grey fan and the reported point at the target's start "
                   "is the model's in-sample error. Diamonds: reported cumulative figures.") if target else \
        "Simulated cumulative deliveries since the first month of the results."  # fmt: skip
    if batch.assimilation is not None:
        a = batch.assimilation
        fan_caption = (f"Above: {fan_caption} Below: {batch.brand}'s monthly deliveries. Black marks: the figures the "
                       f"forecast assimilated ({esc(a.first_month)}..{esc(a.origin)}, between the dotted line and the "
                       "dashed origin line), at their months: a diamond is a figure, a triangle pointing up a lower "
                       "bound (&gt;: at least), down an upper bound (&lt;); a figure over several months is a bar at its "
                       "monthly average; a cumulative figure on a day of the month sits where the fan's line has "
                       "counted the deliveries up to that day (the fan draws a month's closing total at mid-month); "
                       "with many figures, only those of the origin's month are labelled with their value. "
                       "Hollow marks: reported figures of the fitted history, not assimilated. The "
                       "fans are the replicates branched from the particles' states at the origin, each carrying its "
                       "particle's history; figures of other brands and of single products are in the table of the assimilated figures.")  # fmt: skip
    figs.append(("fig-fan", "fan", fan_caption))
    if target:
        figs.append(("fig-target", "target", "Left: share of runs reaching the target by its date, with its 95% "
                     "Wilson interval. Right: share of runs by the month the cumulative count first reaches the target; "
                     "the last bar counts the runs that do not reach it in the window."))  # fmt: skip
    if vs is not None and target:
        figs.append(("fig-fans", "fans", f"Both scenarios' deliveries counted toward {tname} on one axis "
                     f"(solid and filled: {esc(batch.label)}; dashed and hatched: {esc(vs.label)})."))  # fmt: skip
    if vs is not None:
        figs.append(("fig-paired", "paired", "Differences of the headline numbers replicate by replicate "
                     "(same random numbers in both): the dot is the mean difference, the thick bar its 95% CI, the "
                     "thin line 90% of the paired differences."))  # fmt: skip
        if pair is not None and not pair.cannibalisation.empty:
            figs.append(("fig-cannibalisation", "cannibalisation", "Units each product delivers less "
                         "over the new products' delivery months than in the reference (mean over paired runs; whiskers: "
                         "90% of the paired losses); the outside option is the new units not taken from any product."))  # fmt: skip
    figs.append(("fig-brands", "brands", "Monthly deliveries per brand (all markets) with the reported monthly "
                 "figures of the whole brand: filled points count in the comparison's metrics, hollow points (another "
                 "measure or basis) are shown only. Shaded: the forecast." + (f" Dashed: the median of {esc(vs.label)}." if vs else "")))  # fmt: skip
    figs.append(("fig-segments", "segments", "Each price segment's share of all simulated deliveries; a "
                 "product's segment follows its transaction price in the month."))  # fmt: skip
    figs.append(("fig-segment-brands", "segment-brands", "Each brand's share of its segment's "
                 "deliveries per calendar quarter (mean over runs); the five largest brands of each segment and AITO."))  # fmt: skip
    return figs


def write_plot(results: str | Path, what: str, out: str | Path, vs: str | Path | None = None, *,
               reported: Any = None, unpaired: bool = False, dpi: int = 150) -> Path:  # fmt: skip
    """Write one figure (:data:`PLOTS`) as PNG, SVG or PDF, by ``out``'s suffix."""
    from sim.present import plots

    path = Path(out)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in plots.FORMATS:
        raise InputError(f"{path}: unknown figure format {path.suffix or '(no suffix)'!r}: use .png, .svg or .pdf")
    if what in NEEDS_VS and vs is None:
        raise InputError(f"--what {what} needs a second results folder (--vs DIR2)")
    if what == BACKTEST:
        if vs is not None:
            raise InputError("--what backtest reads one backtest folder (sim backtest --out DIR): no --vs")
        return write_backtest_plot(results, path, fmt, dpi)
    batch = load_batch(results, reported)
    ref = load_batch(vs, reported) if vs is not None else None
    if ref is not None:
        tell_apart(batch, ref)
    fig = make_figure(what, batch, ref, unpaired=unpaired)
    buf = io.BytesIO()
    plots.save(fig, buf, fmt, dpi)
    write_whole(path, buf.getvalue())
    return path
