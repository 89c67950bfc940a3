"""Reports of a batch: its figures, and one self-contained HTML file (``sim report``, ``sim plot``).

Analysis only: reads results folders (:func:`sim.runs.store.load_results`), compares them with the
reported figures and with each other (:mod:`sim.analysis.compare`) and draws with :mod:`sim.present.plots`.

``sim report DIR [--vs DIR2]`` writes one HTML file that opens offline (images embedded as
base64 PNG, styles inline, no script or font from the network) and prints on A4 landscape:

1. the headline: per target of the scenario, the probability of reaching it (95% Wilson
   interval), the month reached and the deliveries in its window; with ``--vs`` the same for
   the reference and the paired differences ``DIR - DIR2``;
2. the figures (:data:`PLOTS`): the fan chart of the target brand's cumulative deliveries,
   the target's probability and month reached, monthly deliveries per brand, segment shares
   and brand shares inside each segment; with ``--vs`` also both fans on one axis, the paired
   differences and where the new products' buyers came from;
3. with ``--vs``: the paired-differences and cannibalisation tables;
4. the scenario's key assumptions (and with ``--vs`` what differs from the reference);
5. the comparison with the reported figures (series metrics and every figure);
6. the manifest(s): seeds, replications, scale, scenario hash, code and package versions.

``DIR`` is the scenario in focus (B of :func:`sim.analysis.compare.compare_pair`), ``DIR2`` the
reference (A): differences are ``DIR - DIR2`` and the new products are those of ``DIR``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.analysis.compare import (
    Comparison,
    PairComparison,
    compare,
    compare_pair,
    default_figures,
    target_table,
)
from sim.analysis.targets import target_outcomes
from sim.runs.store import Results, load_results, replacing
from sim.scenario.months import parse_month
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when the command line starts
    from matplotlib.figure import Figure

    from sim.present import plots

#: Figures of ``sim plot --what``; the last three need a second folder (``--vs``).
PLOTS = ("fan", "target", "brands", "segments", "segment-brands", "fans", "paired", "cannibalisation")
NEEDS_VS = ("fans", "paired", "cannibalisation")
#: Replicates below which the report warns that bands and intervals are rough.
FEW_REPLICATES = 20
#: Products shown in the cannibalisation table before the full table (collapsed).
CANNIBAL_ROWS = 15
#: Resolution of the PNG images embedded in the report (dots per inch).
REPORT_DPI = 120


# --------------------------------------------------------------------------- one batch


@dataclass
class Batch:
    """A results folder prepared for figures: its scenario, first target and comparison."""

    results: Results
    label: str
    reported: Any = None  # reported figures for :func:`sim.analysis.compare.compare` (None: the project's)

    @property
    def scenario(self) -> dict[str, Any]:
        return self.results.manifest.get("scenario") or {}

    @property
    def target(self) -> dict[str, Any] | None:
        targets = self.scenario.get("targets") or []
        return targets[0] if targets else None

    @property
    def brand(self) -> str:
        """The brand of the headline: the first target's, else AITO, else the best seller."""
        if self.target:
            return str(self.target["brand"])
        brands = self.sales.groupby("brand")["units"].sum().sort_values(ascending=False)
        return "AITO" if "AITO" in brands.index else str(brands.index[0])

    @property
    def forecast_start(self) -> str | None:
        fs = self.scenario.get("forecast_start")
        return str(fs) if fs else None

    @cached_property
    def sales(self) -> pd.DataFrame:
        """Sales of the finished runs."""
        res = self.results
        if res.sales.empty:
            raise InputError(f"{res.path}: no sales in the results (no finished runs?)")
        ok = res.runs.loc[res.runs["status"] == "ok", "run_id"] if len(res.runs) else res.sales["run_id"]
        sales = res.sales[res.sales["run_id"].isin(ok)]
        if sales.empty:
            raise InputError(f"{res.path}: no finished runs")
        return sales

    @property
    def runs(self) -> int:
        return int(self.sales["run_id"].nunique())

    @cached_property
    def comparison(self) -> Comparison:
        return compare(self.results, self.reported, figures_filter=default_figures)

    def outcomes(self, target: Mapping[str, Any]) -> pd.DataFrame:
        return target_outcomes(self.sales, target["brand"], float(target["units"]), target["start"], target["by"])

    def first_delivery(self, brand: str) -> str | None:
        """The brand's first delivery month in the scenario (delivery start or launch of its first product)."""
        months = [str(p.get("delivery_start") or p.get("launch")) for p in self.scenario.get("products") or []
                  if p.get("brand") == brand and (p.get("delivery_start") or p.get("launch"))]  # fmt: skip
        return min(months, key=parse_month) if months else None


def load_batch(path: str | Path, reported: Any = None) -> Batch:
    """Load a results folder for a report (bad folders raise :class:`InputError`)."""
    res = load_results(path)
    if res.design is not None and len(res.design) > 1:
        raise InputError(f"{path}: a sweep of {len(res.design)} design points; a report reads one scenario's batch "
                         "(sim run), not a sweep")  # fmt: skip
    batch = Batch(res, str(res.manifest.get("scenario_name") or Path(path).name), reported)
    _ = batch.sales  # fail early on a folder with no finished run
    return batch


def _labels(a: Batch, b: Batch) -> None:
    """Two batches of the same scenario name are told apart by their folders."""
    if a.label == b.label:
        a.label, b.label = f"{a.label} ({a.results.path.name})", f"{b.label} ({b.results.path.name})"


def pair_of(batch: Batch, vs: Batch, unpaired: bool = False) -> PairComparison:
    """``batch - vs`` replicate by replicate (:func:`sim.analysis.compare.compare_pair` with A = ``vs``)."""
    return compare_pair(vs.results, batch.results, unpaired=unpaired)


# --------------------------------------------------------------------------- figures


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
    out["label"] = [f"{_num(v)} reported" for v in out["value"]]
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
        line = plots.TargetLine(_level(target) + float(target["units"]), str(target["by"]), f"target '{target['name']}'")
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
    line = plots.TargetLine(_level(target) + float(target["units"]), str(target["by"]), f"target '{target['name']}'")
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


# --------------------------------------------------------------------------- HTML pieces


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _num(x: Any, digits: int = 0, signed: bool = False) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-" if x is None else _e(x)
    if not math.isfinite(v):
        return "-"
    if round(v, digits) == 0:
        v = 0.0  # no "-0" or "+0.0" for what rounds to zero
    return f"{v:+,.{digits}f}" if signed and v else f"{v:,.{digits}f}"


def _rmb(x: Any) -> str:
    v = _num(x)
    return v if v == "-" else f"RMB {v}"


def _pct(x: Any, digits: int = 0) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return f"{100 * v:.{digits}f}%" if math.isfinite(v) else "-"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "", cls: str = "") -> str:
    """An HTML table; cells are HTML already (escape with :func:`_e`).

    ``align`` has one letter per column: ``l`` left, ``r`` right-aligned number, ``n`` left and
    never wrapped (months); missing letters are ``l``.
    """
    css = {"l": "", "r": "num", "n": "nw"}
    kinds = [css[a] for a in align.ljust(len(header), "l")]
    head = "".join(f'<th class="{k}">{_e(h)}</th>' for h, k in zip(header, kinds, strict=True))
    body = "".join(
        "<tr>" + "".join(f'<td class="{k}">{c}</td>' for c, k in zip(r, kinds, strict=True)) + "</tr>" for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(fig: Figure, alt: str, caption: str, anchor: str) -> str:
    from sim.present import plots

    data = base64.b64encode(plots.png_bytes(fig, dpi=REPORT_DPI)).decode("ascii")
    return (f'<figure id="{_e(anchor)}"><img alt="{_e(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip


def _month_range(t: Mapping[str, Any], lo: str, mid: str, hi: str) -> str:
    def m(k: str) -> str:
        return _e(t.get(k) or f"not by {t['by']}")

    return f"{m(mid)} <span class=sub>[5%: {m(lo)}, 95%: {m(hi)}]</span>"


def headline_html(batch: Batch, vs: Batch | None, pair: PairComparison | None) -> str:
    """Per target: probability, month reached, deliveries, shortfall; with ``vs`` side by side and paired."""
    targets = batch.comparison.targets
    if not targets:
        return "<p>The scenario has no targets.</p>"
    ref = {t["name"]: t for t in target_table(vs.results)} if vs else {}
    out = []
    for t in targets:
        name = t["name"]
        out.append(f"<h3>Target '{_e(name)}': {_num(t['units'])} {_e(t['brand'])} deliveries {_e(t['start'])}..{_e(t['by'])}"
                   + (f" (on top of {_num(t['reported_cumulative_at_start'])} reported at {_e(t['start'])})"
                      if t.get("reported_cumulative_at_start") else "") + "</h3>")  # fmt: skip
        cards = [(batch.label, t)] + ([(vs.label, ref[name])] if vs and name in ref else [])
        out.append('<div class="cards">')
        for label, c in cards:
            out.append(
                f'<div class="card"><div class="scen">{_e(label)}</div>'
                f'<div class="big">{_pct(c["probability"])}</div>'
                f'<div>probability of reaching it <span class=sub>(95% CI {_pct(c["probability_low"])}-'
                f'{_pct(c["probability_high"])}, {c["runs"]} runs)</span></div>'
                f"<div>month reached: median {_month_range(c, 'month_reached_p5', 'month_reached_median', 'month_reached_p95')}</div>"
                f"<div>delivered in the window: {_num(c['delivered_mean'])} <span class=sub>[5%: {_num(c['delivered_p5'])}, "
                f"95%: {_num(c['delivered_p95'])}]</span></div>"
                f"<div>shortfall at {_e(c['by'])}: mean {_num(c['shortfall_mean'])}, 95%: {_num(c['shortfall_p95'])}</div>"
                + (f'<div class="note">{_e(c["note"])}</div>' if c.get("note") else "") + "</div>"
            )  # fmt: skip
        out.append("</div>")
        if pair is not None:
            rows = pair.paired[pair.paired["metric"].astype(str).str.startswith(f"{name}:")]
            for r in rows.itertuples():
                prob = str(r.metric).endswith("reached")
                fmt = (lambda v: f"{100 * float(v):+.0f} pp") if prob else (lambda v: _num(v, signed=True))  # noqa: E731
                what = "probability" if prob else "deliveries in the window"
                out.append(f'<p class="diff"><b>{_e(batch.label)} - {_e(vs.label if vs else "")}, {what}:</b> '
                           f"{fmt(r.mean_diff)} <span class=sub>(95% CI of the mean {fmt(r.ci_low)} to {fmt(r.ci_high)}; "
                           f"90% of the paired differences {fmt(r.diff_p5)} to {fmt(r.diff_p95)})</span></p>")  # fmt: skip
    return "\n".join(out)


def reading_notes(batches: Sequence[Batch]) -> str:
    """What the bands are, and warnings about few replicates or failed runs."""
    notes = ["Bands and intervals are quantiles over the replicates of the batch (median, 25-75% and 5-95%); "
             "they show the simulation's randomness, and the uncertainty of parameters only where the scenario "
             "draws them. The probability interval is a 95% Wilson interval over the runs."]  # fmt: skip
    for b in batches:
        c = b.results.completeness
        if c is not None and c.partial:
            notes.insert(0, f'<b class="partial">{_e(b.label)} is a PARTIAL batch: {_e(c.describe())}</b>; every figure '
                            "of this report is of those runs only (read with --allow-partial; continue the batch with --resume)")  # fmt: skip
        failed = int((b.results.runs["status"] != "ok").sum()) if len(b.results.runs) else 0
        if b.runs < FEW_REPLICATES:
            notes.append(f"<b>{_e(b.label)} has only {b.runs} finished run(s)</b>: the 5-95% bands and the "
                         f"probability interval are rough; use {FEW_REPLICATES} or more replications for a decision.")  # fmt: skip
        if failed:
            notes.append(f"<b>{_e(b.label)}: {failed} run(s) failed</b> and are left out (see the runs table).")
    return "".join(f"<li>{n}</li>" for n in notes)


def paired_table(pair: PairComparison) -> str:
    rows = []
    for r in pair.paired.itertuples():
        d = 2 if str(r.metric).endswith("reached") else 0
        rows.append([_e(r.metric), _num(r.a_mean, d), _num(r.b_mean, d), _num(r.mean_diff, d, True),
                     f"{_num(r.diff_p5, d, True)} to {_num(r.diff_p95, d, True)}",
                     f"{_num(r.ci_low, d, True)} to {_num(r.ci_high, d, True)}", _e(r.note)])  # fmt: skip
    return _table(["metric", "reference (A)", "this (B)", "B - A", "90% of paired differences", "95% CI of the mean", "note"],
                  rows, "lrrrrr")  # fmt: skip


def cannibalisation_table(pair: PairComparison) -> str:
    s = pair.cannibalisation_summary
    if pair.cannibalisation.empty:
        return f"<p>{_e(s.get('note', 'no new products'))}</p>"
    rows = [[_e(r.model), _e(r.brand), _num(r.a_units), _num(r.b_units), _num(r.units_lost),
             f"{_num(r.lost_p5)} to {_num(r.lost_p95)}", _pct(r.share_of_new, 1)]
            for r in pair.cannibalisation.itertuples()]  # fmt: skip
    outside = ["<i>outside option: would not have bought</i>", "", "", "", _num(s["outside_option"]), "",
               _pct(s["outside_option_share"], 1)]  # fmt: skip
    intro = (f"<p>New in this scenario: <b>{_e(', '.join(s['new_products']))}</b>, {_num(s['new_units'])} units "
             f"(mean) delivered {_e(s['window_start'])}..{_e(s['window_end'])}. Units lost = reference - this scenario "
             "over the same months (positive: lost to the new products).</p>")  # fmt: skip
    head = ["product", "brand", "reference units", "this scenario's units", "units lost", "90% of paired losses", "% of new units"]
    table = _table(head, [*rows[:CANNIBAL_ROWS], outside], "llrrrrr")
    if len(rows) > CANNIBAL_ROWS:
        table += (f"<details><summary>All {len(rows)} products</summary>"
                  f"{_table(head, [*rows, outside], 'llrrrrr')}</details>")  # fmt: skip
    return intro + table


# --------------------------------------------------------------------------- assumptions


def _when(item: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        if item.get(k):
            return str(item[k])
    return None


def _in_forecast(month: str | None, fs: str | None) -> bool:
    return month is not None and (fs is None or parse_month(month) >= parse_month(fs))


def _still_on(end: str | None, fs: str | None) -> bool:
    return end is None or fs is None or parse_month(end) >= parse_month(fs)


_EVENT_TARGET = ("product", "brand", "brands", "market", "channel")
_EVENT_CHANGE = ("price", "factor", "discount", "floor", "capacity", "count", "add", "appeal", "smart", "until")


def _months(item: Mapping[str, Any]) -> str:
    """The months of a policy: ``a..b``, ``from a``, ``until b`` or ``always``."""
    a, b = item.get("start"), item.get("end")
    return f"{a}..{b}" if a and b else f"from {a}" if a else f"until {b}" if b else "always"


def _compact(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_compact(x)}" for k, x in v.items() if x is not None and x != [] and x != {})
    if isinstance(v, list):
        return ", ".join(_compact(x) for x in v)
    return str(v)


def key_assumptions(manifest: Mapping[str, Any]) -> str:
    """The scenario's key assumptions, from its resolved copy in the manifest."""
    sc: dict[str, Any] = manifest.get("scenario") or {}
    fs = sc.get("forecast_start")
    out = [f"<p>{_e(sc.get('description') or 'No description.')}</p>"]
    general = [
        ("scenario", f"{sc.get('name', '')} (file {manifest.get('scenario_file', '-')}, extends {sc.get('extends') or '-'})"),
        ("months", f"{sc.get('start')}..{sc.get('end')}; forecast from {fs or '(not set)'}"),
        ("scale", f"{_num(manifest.get('scale'))} real buyers per buyer agent"),
        ("overrides (--set)", ", ".join(f"{k}={v}" for k, v in (manifest.get("overrides") or {}).items()) or "none"),
    ]  # fmt: skip
    for m in sc.get("markets") or []:
        general.append((f"market {m.get('name')}", f"{_num(m.get('buyers_per_month'))} buyers a month at {m.get('reference_month')}, "
                        f"growth {_pct(m.get('growth_per_year'), 1)} a year, price level {m.get('price_level')}"))  # fmt: skip
    b = sc.get("buyers") or {}
    if b:
        choice = b.get("choice") or {}
        general.append(("buyers", f"budget median {_rmb(b.get('budget_median', math.nan))}, price sensitivity "
                        f"{b.get('price_sensitivity')}, outside option value {b.get('outside_value')}, choice "
                        f"{choice.get('model', '-')} (nest lambda {choice.get('nest_lambda', '-')})"))  # fmt: skip
    out.append(_table(["", ""], [[_e(k), _e(v)] for k, v in general], cls="kv"))
    launches = [p for p in sc.get("products") or [] if _in_forecast(_when(p, ("delivery_start", "launch")), fs)]
    if launches:
        rows = [[_e(p["name"]), _e(p.get("brand")), _num(p.get("price")), _e(p.get("powertrain")), _e(p.get("launch")),
                 _e(p.get("delivery_start") or p.get("launch")),
                 _e(f"{_num((p.get('capacity') or {}).get('max'))} a month, {(p.get('capacity') or {}).get('ramp_months', '-')}-month ramp"
                    if p.get("capacity") else "unlimited"), _e(p.get("source"))] for p in launches]  # fmt: skip
        out.append("<h3>Products delivering from the forecast start</h3>")
        out.append(_table(["product", "brand", "list price (RMB)", "powertrain", "launch", "deliveries from", "capacity", "source"],
                          rows, "llrlnn"))  # fmt: skip
    events = [e for e in sc.get("events") or [] if _in_forecast(e.get("month"), fs)]
    if events:
        rows = []
        for e in sorted(events, key=lambda e: parse_month(e["month"])):
            who = "; ".join(_compact(e[k]) for k in _EVENT_TARGET if e.get(k))
            what = ", ".join(f"{k} {_compact(e[k])}" for k in _EVENT_CHANGE if e.get(k) not in (None, False))
            rows.append([_e(e["month"]), _e(e["type"]), _e(who), _e(what), _e(e.get("note") or e.get("source") or "")])
        out.append("<h3>Dated events in the forecast</h3>")
        out.append(_table(["month", "type", "applies to", "change", "note / source"], rows, "n"))
    pol = sc.get("policies") or {}
    rows = []
    for x in pol.get("nev_exemptions") or []:
        if _still_on(x.get("end"), fs):
            rows.append(["NEV purchase-tax exemption", _months(x),
                         f"{_pct(x.get('share'))} of the tax, cap {_rmb(x.get('cap', math.nan))}, "
                         f"electric range from {_num(x.get('min_electric_range_km'))} km", x.get("source", "")])  # fmt: skip
    for x in pol.get("tariffs") or []:
        if _still_on(x.get("end"), fs):
            on = ", ".join(str(v) for v in (x.get("made_in") or x.get("brands") or x.get("powertrains") or []))
            rows.append([f"tariff: {x.get('name')}", _months(x),
                         f"{_pct(x.get('rate'), 1)} in {x.get('market')} on {on or 'all'}", x.get("source", "")])  # fmt: skip
    for x in pol.get("subsidies") or []:
        if _still_on(x.get("end"), fs):
            rows.append([f"subsidy: {x.get('name')}", _months(x),
                         f"{_rmb(x.get('amount_nev', math.nan))} NEV / "
                         f"{_rmb(x.get('amount_ice', math.nan))} ICE, uptake {_pct(x.get('uptake'))}",
                         x.get("source", "")])  # fmt: skip
    if rows:
        out.append("<h3>Policies in force during the forecast</h3>")
        out.append(_table(["policy", "months", "terms", "source"], [[_e(c) for c in r] for r in rows], "ln"))
    return "\n".join(out)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of named items as a dict by name (None when not every item has a unique name)."""
    if not all(isinstance(i, dict) and i.get("name") for i in items):
        return None
    names = [str(i["name"]) for i in items]
    return dict(zip(names, items, strict=True)) if len(set(names)) == len(names) else None


def scenario_differences(ref: Any, this: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Where two resolved scenarios differ: ``(path, reference value, this value)``.

    Lists of named items (products, brands, markets...) are matched by name; other lists
    (events, stores) are compared as collections: items only in one appear as added or removed.
    ``name`` and ``description`` are left out.
    """
    if isinstance(ref, dict) and isinstance(this, dict):
        out = []
        for k in sorted(set(ref) | set(this), key=str):
            if not path and k in ("name", "description", "extends"):
                continue
            p = f"{path}.{k}" if path else str(k)
            if k not in ref:
                out.append((p, "(absent)", _compact(this[k])))
            elif k not in this:
                out.append((p, _compact(ref[k]), "(absent)"))
            else:
                out += scenario_differences(ref[k], this[k], p)
        return out
    if isinstance(ref, list) and isinstance(this, list):
        kr, kt = _keyed(ref), _keyed(this)
        if kr is not None and kt is not None:
            return scenario_differences(kr, kt, path)
        a = [json.dumps(x, sort_keys=True, ensure_ascii=False) for x in ref]
        b = [json.dumps(x, sort_keys=True, ensure_ascii=False) for x in this]
        return ([(f"{path}[-]", _compact(json.loads(x)), "(removed)") for x in a if x not in b]
                + [(f"{path}[+]", "(absent)", _compact(json.loads(x))) for x in b if x not in a])  # fmt: skip
    return [] if ref == this else [(path, _compact(ref), _compact(this))]


def differences_html(batch: Batch, vs: Batch, limit: int = 60) -> str:
    diffs = scenario_differences(vs.scenario, batch.scenario)
    if not diffs:
        return "<p>The two resolved scenarios are identical.</p>"

    def cut(s: str) -> str:
        return s if len(s) <= 300 else s[:297] + "..."

    rows = [[_e(p), _e(cut(a)), _e(cut(b))] for p, a, b in diffs[:limit]]
    more = f"<p>{len(diffs) - limit} more differences not shown.</p>" if len(diffs) > limit else ""
    return _table(["field", vs.label, batch.label], rows, cls="diff") + more


# --------------------------------------------------------------------------- comparison and manifest


def _tolerance(r: Any) -> str:
    """How a series metric reads against the validation standard (MISSION.md)."""
    notes = []
    if r.frequency == "monthly" and math.isfinite(r.mape):
        notes.append("MAPE high (<10%)" if r.mape < 10 else "MAPE good (10-20%)" if r.mape <= 20 else "MAPE above 20%")
    if r.frequency == "annual" and math.isfinite(r.mape):
        notes.append("within 10%" if r.mape <= 10 else "NOT within 10%")
    if math.isfinite(r.coverage):
        notes.append("coverage ok" if r.coverage >= 0.8 else "coverage below 0.80")
    return "; ".join(notes)


def comparison_html(c: Comparison) -> str:
    if c.series.empty:
        return "<p>No reported figures compared.</p>"
    rows = [[_e(r.brand), _e(r.model if isinstance(r.model, str) else ""), _e(r.frequency), str(r.n),
             _num(r.mape, 1), _num(r.bias_pct, 1, True), _num(r.mase, 2), _num(r.coverage, 2), _e(_tolerance(r))]
            for r in c.series.itertuples()]  # fmt: skip
    series = _table(["brand", "model", "frequency", "figures", "MAPE %", "bias %", "MASE", "coverage", "against the standard"],
                    rows, "lllrrrrr")  # fmt: skip
    shown = c.figures[c.figures["sim_mean"].notna()]
    frows = []
    for r in shown.itertuples():
        period = r.start if r.start == r.end else f"{r.start}..{r.end}"
        rep = ("" if r.qualifier in ("=", "range") else str(r.qualifier)) + _num(r.reported)
        frows.append([str(r.figure_id), _e(r.model if isinstance(r.model, str) else r.brand), _e(r.measure), _e(r.frequency),
                      _e(period), rep, _e(r.confidence), _num(r.sim_mean), f"{_num(r.sim_p5)}-{_num(r.sim_p95)}",
                      _num(r.pct_error, 1, True), {True: "yes", False: "NO"}.get(r.inside_band, "-"),
                      "yes" if r.used else "no", _e(r.note)])  # fmt: skip
    figures = _table(["line", "brand / model", "measure", "frequency", "period", "reported", "confidence", "sim mean",
                      "sim 5-95%", "error %", "in band", "in metrics", "note"], frows,
                     "rlllnrlrrr", cls="small")  # fmt: skip
    return (f"<p>{c.runs} runs, {_e(c.period)}. Per series: MAPE and bias against the reported values, MASE against a "
            "seasonal-naive forecast, coverage of the reported values by the 5-95% band. Standard (MISSION.md): monthly "
            "MAPE under 10% high, 10-20% good; annual totals within 10%; coverage at least 0.80. Line numbers refer to "
            f"the reported-figures file.</p>{series}"
            f"<details><summary>Every reported figure against the simulation ({len(shown)} compared)</summary>{figures}</details>")  # fmt: skip


_MANIFEST_KEYS = (
    ("scenario", "scenario_name"), ("scenario file", "scenario_file"), ("scenario hash", "scenario_hash"),
    ("root seed", "seed"), ("replications", "replications"), ("scale (buyers per agent)", "scale"),
    ("runs finished / failed", None), ("code version", "code_version"), ("created", "created"),
    ("completed", "completed"), ("executor / workers", None), ("command", "command"), ("platform", "platform"),
)  # fmt: skip


def _manifest_value(m: Mapping[str, Any], label: str, key: str | None) -> str:
    if label == "runs finished / failed":
        return f"{m.get('finished', '-')} / {m.get('failed', '-')}"
    if label == "executor / workers":
        return f"{m.get('executor', '-')} / {m.get('workers', '-')}"
    v = m.get(key or "")
    return " ".join(str(x) for x in v) if isinstance(v, list) else ("-" if v is None else str(v))


def manifest_html(batches: Sequence[Batch]) -> str:
    head = ["", *(f"{b.label} ({b.results.path})" for b in batches)]
    rows = [[_e(label), *(_e(_manifest_value(b.results.manifest, label, key)) for b in batches)] for label, key in _MANIFEST_KEYS]
    packages = sorted({k for b in batches for k in (b.results.manifest.get("packages") or {})})
    rows += [[_e(f"version of {p}"), *(_e((b.results.manifest.get("packages") or {}).get(p, "-")) for b in batches)]
             for p in packages]  # fmt: skip
    return _table(head, rows, cls="kv")


# --------------------------------------------------------------------------- the document


_CSS = """
:root { --ink: #1a1a1a; --mute: #5a5a5a; --line: #d0d0d0; --accent: #0072B2; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       max-width: 1180px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 34px 0 8px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 18px 0 6px; } .meta, .sub, figcaption, .note { color: var(--mute); }
.sub { font-size: 12px; } nav { margin: 10px 0 0; font-size: 13px; } nav a { margin-right: 12px; color: var(--accent); }
.cards { display: flex; gap: 14px; flex-wrap: wrap; } .card { border: 1px solid var(--line); border-left: 5px solid var(--accent);
  padding: 10px 14px; min-width: 320px; flex: 1; } .card + .card { border-left-style: dashed; border-left-color: #D55E00; }
td.nw, th.nw { white-space: nowrap; } .card .scen { font-weight: 600; } .card .big { font-size: 40px; font-weight: 700; line-height: 1.1; }
.diff { margin: 6px 0; } ul.read { color: var(--mute); font-size: 13px; } b.partial { color: #b00020; }
figure { margin: 22px 0; break-inside: avoid; page-break-inside: avoid; } figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 12.5px; margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 12.5px; } th, td { padding: 3px 8px; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; } th { border-bottom: 2px solid var(--ink); } td.num, th.num { text-align: right;
  font-variant-numeric: tabular-nums; white-space: nowrap; } table.small { font-size: 11px; } table.kv td:first-child { font-weight: 600; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; } footer { margin-top: 40px; color: var(--mute); font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { max-width: none; margin: 0; padding: 0; font-size: 11px; } nav { display: none; }
  h2 { break-before: auto; break-after: avoid; } h3 { break-after: avoid; } tr { break-inside: avoid; }
  figure img { max-height: 170mm; width: auto; max-width: 100%; } a { color: inherit; text-decoration: none; }
}
"""
# printing opens the collapsed tables; no other script, nothing loaded from the network
_JS = "window.addEventListener('beforeprint',function(){document.querySelectorAll('details').forEach(function(d){d.open=true;});});"


def build_report(batch: Batch, vs: Batch | None = None, *, unpaired: bool = False) -> str:
    """The HTML document of ``sim report``."""
    if vs is not None:
        _labels(batch, vs)
    pair = pair_of(batch, vs, unpaired) if vs is not None else None
    batches = [batch] + ([vs] if vs else [])
    target = batch.target
    title = (f"{target['name']}: " if target else "") + batch.label + (f" vs {vs.label}" if vs else "")
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
                     f"(solid and filled: {_e(batch.label)}; dashed and hatched: {_e(vs.label)})."))  # fmt: skip
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
                 "measure or basis) are shown only. Shaded: the forecast." + (f" Dashed: the median of {_e(vs.label)}." if vs else "")))  # fmt: skip
    figs.append(("fig-segments", "segments", "Each price segment's share of all simulated deliveries; a "
                 "product's segment follows its transaction price in the month."))  # fmt: skip
    figs.append(("fig-segment-brands", "segment-brands", "Each brand's share of its segment's "
                 "deliveries per calendar quarter (mean over runs); the five largest brands of each segment and AITO."))  # fmt: skip
    figure_html = []
    for anchor, what, caption in figs:
        fig = make_figure(what, batch, vs, pair)
        alt = str(fig.get_label())
        figure_html.append(_img(fig, alt, caption, anchor))
    sections = [
        ("headline", "Headline", headline_html(batch, vs, pair) + f'<ul class="read">{reading_notes(batches)}</ul>'),
        ("figures", "Figures", "\n".join(figure_html)),
    ]
    if pair is not None and vs is not None:
        sections.append(("paired", f"Paired differences: {batch.label} - {vs.label}",
                         f"<p>{_e(pair.note)}.</p>" + paired_table(pair)))  # fmt: skip
        sections.append(("cannibalisation", "Cannibalisation", cannibalisation_table(pair)))
    assumptions = key_assumptions(batch.results.manifest)
    if vs is not None:
        assumptions += f"<h3>What differs from {_e(vs.label)}</h3>" + differences_html(batch, vs)
    sections.append(("assumptions", f"Key assumptions of {batch.label}", assumptions))
    sections.append(("reported", f"Against the reported figures ({batch.label})", comparison_html(batch.comparison)))
    sections.append(("manifest", "Manifest", manifest_html(batches)))
    from sim import __version__

    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    meta = " · ".join([f"{_e(b.label)}: {_e(b.results.path)}, {b.runs} runs, seed {_e(b.results.manifest.get('seed'))}, "
                       f"scenario hash {_e(b.results.manifest.get('scenario_hash', '-'))}" for b in batches])  # fmt: skip
    nav = "".join(f'<a href="#{a}">{_e(h)}</a>' for a, h, _ in sections)
    body = "\n".join(f'<section id="{a}"><h2>{_e(h)}</h2>\n{c}\n</section>' for a, h, c in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><div class=\"meta\">{meta}</div><nav>{nav}</nav></header>\n{body}\n"
        f"<footer>Written by sim {_e(__version__)} (<code>sim report</code>) at {now}. Self-contained: the figures are "
        f"embedded, nothing is loaded from the network.</footer><script>{_JS}</script></body></html>\n"
    )


def _write_bytes(out: Path, data: bytes) -> None:
    """Write a file whole (temporary file, then rename; the temporary file removed however it ends), creating its folder."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None


def write_report(results: str | Path, out: str | Path | None = None, vs: str | Path | None = None, *,
                 reported: Any = None, unpaired: bool = False) -> Path:  # fmt: skip
    """Write the HTML report of ``results`` (against ``vs``) to ``out`` (default ``results/report.html``)."""
    batch = load_batch(results, reported)
    ref = load_batch(vs, reported) if vs is not None else None
    path = Path(out) if out is not None else Path(results) / "report.html"
    _write_bytes(path, build_report(batch, ref, unpaired=unpaired).encode("utf-8"))
    return path


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
        _labels(batch, ref)
    fig = make_figure(what, batch, ref, unpaired=unpaired)
    buf = io.BytesIO()
    plots.save(fig, buf, fmt, dpi)
    _write_bytes(path, buf.getvalue())
    return path
