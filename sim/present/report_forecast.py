"""The report of a forecast that assimilated reported figures (``sim forecast``): its figures and its section.

Figures: the fan chart from the filtered state with the assimilated figures marked
(:func:`forecast_fan_figure`, ``sim plot --what fan`` of a forecast folder), the particles' effective
sample size by month (:func:`ess_figure`, ``--what ess``) and the forecast before and after the last
month's figures (:func:`moved_figure`, ``--what moved``). The section (:func:`forecast_section`): what
was assimilated, the effective sample size, what the last month's figures moved (P(target) and the
window's deliveries before and after) and every figure assimilated against the particles' 5-95%
before it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.analysis.compare import target_table
from sim.present.forecast_folder import Assimilation
from sim.present.report_batch import Batch
from sim.present.report_frames import (
    cumulative_fans,
    need_target,
    reported_cumulative,
    reported_monthly,
    runs_text,
    target_fan,
    target_line,
)
from sim.present.report_html import embedded_figure, esc, html_table, number, percent
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def need_assimilation(batch: Batch) -> Assimilation:
    """The batch's assimilation (:class:`InputError` when it is not a forecast folder)."""
    if batch.assimilation is None:
        raise InputError(f"{batch.results.path}: not a forecast folder (made by sim forecast): nothing assimilated")
    return batch.assimilation


def need_before(batch: Batch) -> Batch:
    """The forecast before the last month's figures (:class:`InputError` when there is none)."""
    a = need_assimilation(batch)
    if batch.before is None:
        why = "no figures were assimilated" if a.last_month is None else "no before/ folder (sim forecast --before 0?)"
        raise InputError(f"{batch.results.path}: no forecast before the last figures ({why})")
    return batch.before


def _others(reported: pd.DataFrame, marks: pd.DataFrame, month: str = "month", value: str = "value") -> pd.DataFrame:
    """Reported points that are not also assimilated figures (same month and value)."""
    if reported.empty or marks.empty:
        return reported
    taken = set(zip(marks["month"].astype(str), marks["reported"].astype(float).round(), strict=True))
    keep = [(str(m), round(float(v))) not in taken for m, v in zip(reported[month], reported[value], strict=True)]
    return reported[keep]


def forecast_fan_figure(batch: Batch) -> Figure:
    """The brand's cumulative and monthly deliveries, with the figures the forecast assimilated marked."""
    from sim.present import plots

    a = need_assimilation(batch)
    brand, target = batch.brand, batch.target
    fans, line = cumulative_fans(batch)
    aim = f", and the target '{target['name']}'" if target else ""
    title = f"{brand}: the forecast from the state at {a.origin}{aim} ({batch.label})"
    mine = a.brand_figures(brand)
    monthly = reported_monthly(batch)
    monthly = monthly[monthly["brand"] == brand]
    months = plots.months_between(str(batch.sales["month"].min()), str(batch.sales["month"].max()))
    brand_units = plots.monthly_units(batch.sales[batch.sales["brand"] == brand], "brand", months)
    return plots.plot_assimilated_fan(
        fans, brand_units, mine, plots.Window(a.first_month, a.origin), brand=brand, target=line,
        reported=_others(reported_cumulative(batch, brand), mine), reported_monthly=_others(monthly, mine),
        title=title,
        subtitle=f"{runs_text(batch)} branched from {a.particles} particles · {len(a.figures)} figure(s) assimilated "
                 f"{a.first_month}..{a.origin}, final effective sample size {a.final_ess:.1f} · median, 50% and 90% bands",
    )  # fmt: skip


def ess_figure(batch: Batch) -> Figure:
    """The particles' effective sample size by month."""
    from sim.present import plots

    a = need_assimilation(batch)
    counts = a.figures.groupby("month").size().to_dict() if len(a.figures) else {}
    return plots.plot_ess(
        a.ess, a.particles, resampled=a.resampled, figures_per_month={str(k): int(v) for k, v in counts.items()},
        title=f"How many particles the figures left: effective sample size by month ({batch.label})",
        subtitle=f"{a.particles} particles weighted by the figures of {a.first_month}..{a.origin} · resampled when "
                 f"below half · final {a.final_ess:.1f}",
    )  # fmt: skip


def moved_figure(batch: Batch) -> Figure:
    """The deliveries toward the target before and after the last month's figures, on one axis."""
    from sim.present import plots

    before, target = need_before(batch), need_target(batch)
    a = need_assimilation(batch)
    after = replace(batch, label=f"after the figures of {a.last_month}")
    fans = [target_fan(before, target, "reference"), target_fan(after, target, "main")]
    return plots.plot_fan(
        fans, target=target_line(target), forecast_start=batch.forecast_start, from_zero=False,
        title=f"What the figures of {a.last_month} moved: {target['brand']} deliveries toward '{target['name']}'",
        subtitle=f"{batch.label} · before: {runs_text(before)} drawn by the weights before them · after: "
                 f"{runs_text(batch)} · median, 50% and 90% bands",
    )  # fmt: skip


# --------------------------------------------------------------------------- the section


def _reported(f: Any) -> str:
    return ("" if f.qualifier in ("=", "range") else esc(f.qualifier)) + number(f.reported)


def figures_table(a: Assimilation) -> str:
    """Every figure assimilated, in order, against the particles' 5-95% before it."""
    rows = []
    for f in a.figures.itertuples():
        inside = "yes" if f.inside else "NO"
        rows.append([esc(f.figure), esc(", ".join(str(x) for x in f.lines)), esc(f.month), _reported(f),
                     number(f.simulated_median), f"{number(f.simulated_p5)} - {number(f.simulated_p95)}", inside,
                     number(f.sd, 3)])  # fmt: skip
    head = ["figure", "line(s)", "month", "reported", "particles before it: median", "5% - 95%", "inside",
            "log error sd"]  # fmt: skip
    return html_table(head, rows, "lrnrrrlr", cls="small")


def _target_row(label: str, t: dict[str, Any]) -> list[str]:
    return [esc(label), str(t["runs"]),
            f"{percent(t['probability'])} <span class=sub>({percent(t['probability_low'])}-{percent(t['probability_high'])})</span>",
            f"{number(t['delivered_mean'])} <span class=sub>[{number(t['delivered_p5'])} - {number(t['delivered_p95'])}]</span>",
            esc(t.get("month_reached_median") or "not reached")]  # fmt: skip


def change_noise(before: Batch, after: Batch, target: dict[str, Any]) -> float:
    """Two standard errors of the difference of the mean window deliveries before and after (vehicles): the
    replicates before and after are drawn independently, so their means differ by this much by chance alone."""
    a, b = (x.outcomes(target)["delivered"].to_numpy(float) for x in (after, before))
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return 2.0 * math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


def moved_html(batch: Batch) -> str:
    """P(target) and the window's deliveries before and after the last month's figures."""
    a = need_assimilation(batch)
    before = batch.before
    if a.last_month is None:
        return "<p>No figure was assimilated: the forecast starts from the particles as the history left them.</p>"
    if before is None:
        return "<p>No forecast before the last month's figures in this folder (sim forecast --before N draws one).</p>"
    last = a.last_figures()
    listed = "; ".join(f"{esc(f.figure)} ({_reported(f)})" for f in last.itertuples())
    out = [f"<p>The figures of {esc(a.last_month)}: {listed}. <i>Before</i>: {before.runs} replicates drawn from the "
           f"particles by their weights before those figures (<code>{esc(before.results.path)}</code>); <i>after</i>: "
           "this forecast.</p>"]  # fmt: skip
    after_t = {t["name"]: t for t in batch.comparison.targets}
    rows = []
    for t in target_table(before.results):
        if t["name"] not in after_t:
            continue
        new = after_t[t["name"]]
        rows.append([f"<b>{esc(t['name'])}</b>", "", "", "", ""])
        rows.append(_target_row(f"before the figures of {a.last_month}", t))
        rows.append(_target_row("after (this forecast)", new))
        change, noise = new["delivered_mean"] - t["delivered_mean"], change_noise(before, batch, t)
        within = " within" if abs(change) <= noise else ""
        rows.append(["change", "", f"{100 * (new['probability'] - t['probability']):+.0f} pp",
                     f"{number(change, signed=True)} <span class=sub>(chance alone: &plusmn;{number(noise)}{within})</span>",
                     ""])  # fmt: skip
    if rows:
        out.append(html_table(["", "replicates", "P(target) (95% CI)", "deliveries in the window: mean [5% - 95%]",
                               "month reached (median)"], rows, "lrrrn"))  # fmt: skip
        out.append("<p class=sub>The replicates before and after are drawn independently: a change of the mean "
                   "deliveries within &plusmn; two standard errors of the difference (chance alone) is not a change "
                   "the figures made; more replicates (sim forecast -r, --before) narrow it.</p>")  # fmt: skip
    return "\n".join(out)


def forecast_section(batch: Batch) -> str:
    """The section of a forecast folder: what it assimilated, the ESS, what moved, every figure."""
    a = need_assimilation(batch)
    files = f" and {', '.join(a.files)}" if a.files else ""
    parts = [f"<p>This forecast starts from what is known, {esc(a.summary_line())}. The figures (the project's "
             f"reported figures{esc(files)}) weighed {a.particles} particles, each a run of the history with its own "
             "parameter set, appeal drift and draws; the replicates branch from the particles' states at the origin, "
             "drawn by their final weights. A figure the particles did not expect (outside their 5-95% before it) "
             "moves the forecast most.</p>"]  # fmt: skip
    if a.notes:
        parts.append("<ul class=read>" + "".join(f"<li>{esc(n)}</li>" for n in a.notes) + "</ul>")
    parts.append(embedded_figure(ess_figure(batch), "effective sample size", "Effective sample size of the particles "
                 "after each month's figures (bars; the number above: figures that month), against half the particles "
                 "(dashed), below which they are resampled (hatched bars: resampled after that month). An ESS far "
                 "below the particles means few of them carry the forecast.", "fig-ess"))  # fmt: skip
    parts.append(f"<h3>What moved the forecast{': the figures of ' + esc(a.last_month) if a.last_month else ''}</h3>")
    parts.append(moved_html(batch))
    if batch.before is not None and batch.target:
        parts.append(embedded_figure(moved_figure(batch), "what moved the forecast", "Deliveries counted toward the "
                     "target before (dashed, hatched) and after (solid, filled) the last month's figures.", "fig-moved"))  # fmt: skip
    parts.append("<h3>Every figure assimilated</h3>")
    parts.append(f"<p>{esc(a.inside_text())}. The band leaves out the figures' own errors, so particles that expect "
                 "the truth give somewhat under 90%; far fewer, and they did not expect what was reported.</p>")  # fmt: skip
    parts.append("<p class=sub>Reported against the particles' weighted median and 5-95% of the same quantity just "
                 "before the figure was assimilated; a one-sided figure (&gt; or &lt;) is inside when the particles' "
                 "95% (5%) reaches its bound. The log error sd is the figure's assumed error, which sets its weight.</p>")  # fmt: skip
    parts.append(figures_table(a))
    return "\n".join(parts)
