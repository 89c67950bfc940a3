"""Sections of the report: the headline per target, reading notes, the paired-differences and
cannibalisation tables, the comparison with the reported figures, and the manifests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sim.analysis.compare import Comparison, target_table
from sim.analysis.pair_comparison import PairComparison
from sim.present.anatomy import Decomposition, anatomy_note, anatomy_rows
from sim.present.report_batch import Batch
from sim.present.report_html import esc, html_table, number, percent

#: Replicates below which the report warns that bands and intervals are rough.
FEW_REPLICATES = 20
#: Products shown in the cannibalisation table before the full table (collapsed).
CANNIBAL_ROWS = 15


def _month_range(t: Mapping[str, Any], lo: str, mid: str, hi: str) -> str:
    def m(k: str) -> str:
        return esc(t.get(k) or f"not by {t['by']}")

    return f"{m(mid)} <span class=sub>[5%: {m(lo)}, 95%: {m(hi)}]</span>"


def headline_html(batch: Batch, vs: Batch | None, pair: PairComparison | None,
                  anatomy: Decomposition | None = None) -> str:  # fmt: skip
    """Per target: probability, month reached, deliveries, shortfall; with ``vs`` side by side and paired; with a
    decomposition (``anatomy``), where the spread of the window's deliveries comes from."""
    targets = batch.comparison.targets
    if not targets:
        return "<p>The scenario has no targets.</p>"
    ref = {t["name"]: t for t in target_table(vs.results)} if vs else {}
    out = []
    if batch.assimilation is not None:
        a = batch.assimilation
        out.append(f'<p class="diff"><b>{esc(batch.label)}: a forecast {esc(a.summary_line())}</b> '
                   '<span class=sub>(see <a href="#forecast">what the forecast assimilated</a>)</span>.</p>')  # fmt: skip
    for t in targets:
        name = t["name"]
        out.append(f"<h3>Target '{esc(name)}': {number(t['units'])} {esc(t['brand'])} deliveries {esc(t['start'])}..{esc(t['by'])}"
                   + (f" (on top of {number(t['reported_cumulative_at_start'])} reported at {esc(t['start'])})"
                      if t.get("reported_cumulative_at_start") else "") + "</h3>")  # fmt: skip
        cards = [(batch.label, t)] + ([(vs.label, ref[name])] if vs and name in ref else [])
        out.append('<div class="cards">')
        for label, c in cards:
            out.append(
                f'<div class="card"><div class="scen">{esc(label)}</div>'
                f'<div class="big">{percent(c["probability"])}</div>'
                f'<div>probability of reaching it <span class=sub>(95% CI {percent(c["probability_low"])}-'
                f'{percent(c["probability_high"])}, {c["runs"]} runs)</span></div>'
                f"<div>month reached: median {_month_range(c, 'month_reached_p5', 'month_reached_median', 'month_reached_p95')}</div>"
                f"<div>delivered in the window: {number(c['delivered_mean'])} <span class=sub>[5%: {number(c['delivered_p5'])}, "
                f"95%: {number(c['delivered_p95'])}]</span></div>"
                f"<div>shortfall at {esc(c['by'])}: mean {number(c['shortfall_mean'])}, 95%: {number(c['shortfall_p95'])}</div>"
                + (f'<div class="note">{esc(c["note"])}</div>' if c.get("note") else "") + "</div>"
            )  # fmt: skip
        out.append("</div>")
        if pair is not None:
            rows = pair.paired[pair.paired["metric"].astype(str).str.startswith(f"{name}:")]
            for r in rows.itertuples():
                prob = str(r.metric).endswith("reached")
                fmt = (lambda v: f"{100 * float(v):+.0f} pp") if prob else (lambda v: number(v, signed=True))  # noqa: E731
                what = "probability" if prob else "deliveries in the window"
                out.append(f'<p class="diff"><b>{esc(batch.label)} - {esc(vs.label if vs else "")}, {what}:</b> '
                           f"{fmt(r.mean_diff)} <span class=sub>(95% CI of the mean {fmt(r.ci_low)} to {fmt(r.ci_high)}; "
                           f"90% of the paired differences {fmt(r.diff_p5)} to {fmt(r.diff_p95)})</span></p>")  # fmt: skip
        if anatomy is not None:
            out.append(anatomy_html(anatomy, name, batch.results.manifest.get("scenario_name"), batch.assimilation is not None))
    return "\n".join(out)


def anatomy_html(d: Decomposition, target: str, scenario: str | None, forecast: bool = False) -> str:
    """The variance decomposition of a target's window deliveries, as a table whose shares add to 100%."""
    t = d.target(target)
    if t is None:
        return f'<p class="note">The decomposition in {esc(d.path)} has no target {esc(target)!r}.</p>'
    rows = [[esc(r.source), number(r.sd), percent(r.share, 1), percent(r.probability) if r.probability is not None else "",
             number(r.mean) if r.mean is not None else ""] for r in anatomy_rows(t)]  # fmt: skip
    head = ["source of uncertainty", "sd of the window's deliveries", "share of the variance", "P(target) with it alone",
            "mean with it alone"]  # fmt: skip
    return (f"<h3>Where the spread of '{esc(target)}' comes from</h3><p class=sub>Each source switched on alone (with "
            "the agents' sampling noise, on the same seeds) against none: its part of the variance of the window's "
            "deliveries (sd: the square root of that part, vehicles); shares of the variance with every source on, "
            "the interaction being what the parts do not add up to. From the "
            f"{esc(anatomy_note(d, t, scenario, forecast))}.</p>" + html_table(head, rows, "lrrrr"))  # fmt: skip


def reading_notes(batches: Sequence[Batch]) -> str:
    """What the bands are, and warnings about few replicates or failed runs."""
    notes = ["Bands and intervals are quantiles over the replicates of the batch (median, 25-75% and 5-95%); "
             "they show the simulation's randomness, and the uncertainty of parameters only where the scenario "
             "draws them. The probability interval is a 95% Wilson interval over the runs; a forecast's replicates "
             "branched from one particle count as the independent runs they are worth (their effective number)."]  # fmt: skip
    for b in batches:
        drawn = drawn_uncertainties(b.results.runs)
        if drawn:
            notes.append(f"Each run of {esc(b.label)} drew its own {esc(', '.join(drawn))} (the runs table's "
                         "<code>draws</code> column): the bands carry those uncertainties too.")  # fmt: skip
        c = b.results.completeness
        if c is not None and c.partial:
            notes.insert(0, f'<b class="partial">{esc(b.label)} is a PARTIAL batch: {esc(c.describe())}</b>; every figure '
                            "of this report is of those runs only (read with --allow-partial; continue the batch with --resume)")  # fmt: skip
        failed = int((b.results.runs["status"] != "ok").sum()) if len(b.results.runs) else 0
        if b.runs < FEW_REPLICATES:
            notes.append(f"<b>{esc(b.label)} has only {b.runs} finished run(s)</b>: the 5-95% bands and the "
                         f"probability interval are rough; use {FEW_REPLICATES} or more replications for a decision.")  # fmt: skip
        if failed:
            notes.append(f"<b>{esc(b.label)}: {failed} run(s) failed</b> and are left out (see the runs table).")
    return "".join(f"<li>{n}</li>" for n in notes)


#: How the runs table's draws read in a note (key of the draws record -> words).
DRAW_WORDS = {"capacity": "capacities", "market": "market size and growth", "drift": "appeal drift",
              "brand_drift": "appeal drift", "appeal": "new products' appeal", "new_products": "new products' appeal"}  # fmt: skip


def drawn_uncertainties(runs: Any) -> list[str]:
    """What the runs drew (from the ``draws`` column of a runs table; a ``member`` column: fitted parameters)."""
    out: list[str] = []
    if "member" in getattr(runs, "columns", ()) and runs["member"].notna().any():
        out.append("fitted parameter set")
    if "particle" in getattr(runs, "columns", ()) and runs["particle"].notna().any():
        out.append("particle of the filter (its history's parameter set and appeal drift, up to the origin)")
    if "draws" not in getattr(runs, "columns", ()):
        return out
    for text in runs["draws"].dropna().head(5):
        try:
            keys = json.loads(text)
        except (TypeError, ValueError):
            continue
        for k in keys if isinstance(keys, dict) else ():
            word = DRAW_WORDS.get(str(k), str(k).replace("_", " "))
            if word not in out:
                out.append(word)
    return out


def paired_table(pair: PairComparison) -> str:
    rows = []
    for r in pair.paired.itertuples():
        d = 2 if str(r.metric).endswith("reached") else 0
        rows.append([esc(r.metric), number(r.a_mean, d), number(r.b_mean, d), number(r.mean_diff, d, True),
                     f"{number(r.diff_p5, d, True)} to {number(r.diff_p95, d, True)}",
                     f"{number(r.ci_low, d, True)} to {number(r.ci_high, d, True)}", esc(r.note)])  # fmt: skip
    return html_table(["metric", "reference (A)", "this (B)", "B - A", "90% of paired differences", "95% CI of the mean", "note"],
                  rows, "lrrrrr")  # fmt: skip


def cannibalisation_table(pair: PairComparison) -> str:
    s = pair.cannibalisation_summary
    if pair.cannibalisation.empty:
        return f"<p>{esc(s.get('note', 'no new products'))}</p>"
    rows = [[esc(r.model), esc(r.brand), number(r.a_units), number(r.b_units), number(r.units_lost),
             f"{number(r.lost_p5)} to {number(r.lost_p95)}", percent(r.share_of_new, 1)]
            for r in pair.cannibalisation.itertuples()]  # fmt: skip
    outside = ["<i>outside option: would not have bought</i>", "", "", "", number(s["outside_option"]), "",
               percent(s["outside_option_share"], 1)]  # fmt: skip
    intro = (f"<p>New in this scenario: <b>{esc(', '.join(s['new_products']))}</b>, {number(s['new_units'])} units "
             f"(mean) delivered {esc(s['window_start'])}..{esc(s['window_end'])}. Units lost = reference - this scenario "
             "over the same months (positive: lost to the new products).</p>")  # fmt: skip
    head = ["product", "brand", "reference units", "this scenario's units", "units lost", "90% of paired losses", "% of new units"]
    table = html_table(head, [*rows[:CANNIBAL_ROWS], outside], "llrrrrr")
    if len(rows) > CANNIBAL_ROWS:
        table += (f"<details><summary>All {len(rows)} products</summary>"
                  f"{html_table(head, [*rows, outside], 'llrrrrr')}</details>")  # fmt: skip
    return intro + table


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
    rows = [[esc(r.brand), esc(r.model if isinstance(r.model, str) else ""), esc(r.frequency), str(r.n),
             number(r.mape, 1), number(r.bias_pct, 1, True), number(r.mase, 2), number(r.coverage, 2), esc(_tolerance(r))]
            for r in c.series.itertuples()]  # fmt: skip
    series = html_table(["brand", "model", "frequency", "figures", "MAPE %", "bias %", "MASE", "coverage", "against the standard"],
                    rows, "lllrrrrr")  # fmt: skip
    shown = c.figures[c.figures["sim_mean"].notna()]
    frows = []
    for r in shown.itertuples():
        period = r.start if r.start == r.end else f"{r.start}..{r.end}"
        rep = ("" if r.qualifier in ("=", "range") else str(r.qualifier)) + number(r.reported)
        frows.append([str(r.figure_id), esc(r.model if isinstance(r.model, str) else r.brand), esc(r.measure), esc(r.frequency),
                      esc(period), rep, esc(r.confidence), number(r.sim_mean), f"{number(r.sim_p5)}-{number(r.sim_p95)}",
                      number(r.pct_error, 1, True), {True: "yes", False: "NO"}.get(r.inside_band, "-"),
                      "yes" if r.used else "no", esc(r.note)])  # fmt: skip
    figures = html_table(["line", "brand / model", "measure", "frequency", "period", "reported", "confidence", "sim mean",
                      "sim 5-95%", "error %", "in band", "in metrics", "note"], frows,
                     "rlllnrlrrr", cls="small")  # fmt: skip
    return (f"<p>{c.runs} runs, {esc(c.period)}. Per series: MAPE and bias against the reported values, MASE against a "
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
    rows = [[esc(label), *(esc(_manifest_value(b.results.manifest, label, key)) for b in batches)] for label, key in _MANIFEST_KEYS]
    packages = sorted({k for b in batches for k in (b.results.manifest.get("packages") or {})})
    rows += [[esc(f"version of {p}"), *(esc((b.results.manifest.get("packages") or {}).get(p, "-")) for b in batches)]
             for p in packages]  # fmt: skip
    return html_table(head, rows, cls="kv")
