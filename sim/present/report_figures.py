"""The figures of a batch, by name (``sim plot --what``, and the report's): each from a :class:`Batch`
(and a reference batch), drawn by :mod:`sim.present.plots`.

matplotlib is imported when a figure is drawn, not when the command line reads :data:`PLOTS`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.analysis.pair_comparison import PairComparison
from sim.present.report_batch import Batch, load_batch, pair_of, tell_apart, write_whole
from sim.present.report_html import esc, number
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when the command line starts
    from matplotlib.figure import Figure

    from sim.present import plots

#: Figures of ``sim plot --what``; the last three need a second folder (``--vs``).
PLOTS = ("fan", "target", "brands", "segments", "segment-brands", "fans", "paired", "cannibalisation")
NEEDS_VS = ("fans", "paired", "cannibalisation")


def _need_target(batch: Batch) -> dict[str, Any]:
    if not batch.target:
        raise InputError(f"{batch.results.path}: the scenario has no targets")
    return batch.target


def _level(target: Mapping[str, Any]) -> float:
    v = target.get("reported_cumulative_at_start")
    return float(v) if v is not None and math.isfinite(float(v)) else 0.0


def target_fan(batch: Batch, target: Mapping[str, Any], role: str = "main") -> plots.Fan:
    """Deliveries counted toward a target: the reported cumulative at its start plus the simulated."""
    from sim.present import plots

    level = _level(target)
    values = plots.cumulative_units(batch.sales, target["brand"], target["start"], target["by"], level)
    what = f"reported {plots.units_text(level)} + simulated" if level else "simulated"
    return plots.Fan(f"{batch.label}: counted toward the target ({what})", values, role, anchor=level)


def _target_line(target: Mapping[str, Any]) -> plots.TargetLine:
    """The target on the cumulative axis: its level counted from the reported cumulative at its start."""
    from sim.present import plots

    return plots.TargetLine(_level(target) + float(target["units"]), str(target["by"]), f"target '{target['name']}'")


def _reported_cumulative(batch: Batch, brand: str) -> pd.DataFrame:
    """Reported cumulative figures of a brand summed since its first deliveries (for the fan chart)."""
    f = batch.comparison.figures
    since = batch.first_delivery(brand)
    if f.empty or since is None:
        return pd.DataFrame(columns=["month", "value", "label"])
    rows = f[(f["brand"] == brand) & f["model"].isna() & f["frequency"].isin(["cumulative", "point"])
             & (f["start"] == since) & f["qualifier"].isin(["=", "~"])]  # fmt: skip
    rows = rows.drop_duplicates(["end", "reported"])
    out = pd.DataFrame({"month": rows["end"].astype(str), "value": rows["reported"].astype(float)})
    out["label"] = [f"{number(v)} reported" for v in out["value"]]
    return out.reset_index(drop=True)


def _reported_monthly(batch: Batch) -> pd.DataFrame:
    """Reported monthly figures of whole brands: ``brand``, ``month``, ``value``, ``used``."""
    f = batch.comparison.figures
    if f.empty:
        return pd.DataFrame(columns=["brand", "month", "value", "used"])
    rows = f[(f["frequency"] == "monthly") & f["model"].isna() & (f["start"] == f["end"])
             & f["qualifier"].isin(["=", "~", "range"])]  # fmt: skip
    return pd.DataFrame({"brand": rows["brand"].astype(str), "month": rows["start"].astype(str),
                         "value": rows["reported"].astype(float), "used": rows["used"].astype(bool)})  # fmt: skip


def _runs_text(batch: Batch) -> str:
    c = batch.results.completeness
    if c is not None and c.partial:  # a figure of a partial batch says so where it counts its runs
        return f"PARTIAL: {batch.runs} run{'s' if batch.runs != 1 else ''} of {c.asked if c.asked is not None else '?'} asked"
    return f"{batch.runs} run{'s' if batch.runs != 1 else ''}"


def fan_figure(batch: Batch) -> Figure:
    """The brand's cumulative deliveries: since its first deliveries, and toward the target."""
    from sim.present import plots

    brand, target = batch.brand, batch.target
    fans = []
    if target:
        history = plots.cumulative_units(batch.sales, brand, end=target["start"])
        fans = [plots.Fan("simulated since first deliveries", history, "history"), target_fan(batch, target)]
        line = _target_line(target)
        title = f"{brand} cumulative deliveries and the target '{target['name']}' ({batch.label})"
    else:
        fans = [plots.Fan(batch.label, plots.cumulative_units(batch.sales, brand), "main")]
        line, title = None, f"{brand} cumulative deliveries ({batch.label})"
    return plots.plot_fan(
        fans, target=line, reported=_reported_cumulative(batch, brand), forecast_start=batch.forecast_start,
        title=title, subtitle=f"scenario {batch.label} · {_runs_text(batch)} · median, 50% and 90% bands over runs",
    )  # fmt: skip


def fans_figure(batch: Batch, vs: Batch) -> Figure:
    """Both scenarios' deliveries counted toward the target, on one axis."""
    from sim.present import plots

    target = _need_target(batch)
    line = _target_line(target)
    fans = [target_fan(vs, target, "reference"), target_fan(batch, target, "main")]
    return plots.plot_fan(
        fans, target=line, forecast_start=batch.forecast_start, from_zero=False,
        title=f"{target['brand']} deliveries toward '{target['name']}': {batch.label} vs {vs.label}",
        subtitle=f"{_runs_text(batch)} each on the same seeds · median, 50% and 90% bands over runs",
    )  # fmt: skip


def target_figure(batch: Batch, vs: Batch | None = None) -> Figure:
    """Probability of the first target and the month it is reached (with the reference's)."""
    from sim.present import plots

    t = _need_target(batch)
    outcomes = [(batch.label, batch.outcomes(t))] + ([(vs.label, vs.outcomes(t))] if vs else [])
    return plots.plot_target(
        outcomes, by=str(t["by"]), start=str(t["start"]),
        title=f"Will {t['brand']} deliver {plots.units_text(float(t['units']))} between {t['start']} and {t['by']}? "
        f"({batch.label}" + (f" vs {vs.label})" if vs else ")"),
        subtitle=f"target '{t['name']}' · scenario {batch.label}" + (f" vs {vs.label}" if vs else "")
        + f" · {_runs_text(batch)}",
    )  # fmt: skip


def brands_figure(batch: Batch, vs: Batch | None = None) -> Figure:
    """Monthly deliveries per brand with bands and reported points (and the reference's median)."""
    from sim.present import plots

    return plots.plot_brands(
        plots.monthly_units(batch.sales), reported=_reported_monthly(batch),
        reference=plots.monthly_units(vs.sales) if vs else None, reference_label=vs.label if vs else "",
        forecast_start=batch.forecast_start, title=f"Monthly deliveries per brand ({batch.label})",
        subtitle=f"scenario {batch.label} · {_runs_text(batch)} · all markets · median, 50% and 90% bands"
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
        subtitle=f"scenario {batch.label} · mean over {_runs_text(batch)} · segment by the month's transaction price",
    )  # fmt: skip


def segment_brands_figure(batch: Batch) -> Figure:
    """Brand shares inside each price segment, by quarter."""
    from sim.present import plots

    return plots.plot_segment_brands(
        plots.shares(batch.sales, "brand", within="segment", quarterly=True), order=_segment_order(batch),
        forecast_start=batch.forecast_start, title=f"Brand shares inside each price segment, by quarter ({batch.label})",
        subtitle=f"scenario {batch.label} · mean over {_runs_text(batch)} · the 5 largest brands of each segment, and AITO",
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
    if what not in PLOTS:
        raise InputError(f"unknown figure {what!r}: use one of {', '.join(PLOTS)}")
    if what in NEEDS_VS and vs is None:
        raise InputError(f"--what {what} needs a second results folder (--vs DIR2)")
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
    batch = load_batch(results, reported)
    ref = load_batch(vs, reported) if vs is not None else None
    if ref is not None:
        tell_apart(batch, ref)
    fig = make_figure(what, batch, ref, unpaired=unpaired)
    buf = io.BytesIO()
    plots.save(fig, buf, fmt, dpi)
    write_whole(path, buf.getvalue())
    return path
