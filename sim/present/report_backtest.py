"""How good are these forecasts: a backtest (``sim backtest``) in the report and as ``sim plot --what backtest``.

:func:`backtest_figure` draws the model's mean absolute log error by horizon against the benchmark
forecasters', the same forecast with and without assimilating the figures before each origin, and the
coverage of its 50% and 90% bands against nominal; :func:`backtest_section` adds the pooled numbers
(coverage, CRPS, error relative to each benchmark) over all brands and over the five named ones, by
horizon, and what assimilation changed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.present.backtest_folder import (
    BENCHMARK_LABELS,
    MODEL,
    Backtest,
    assimilation_errors,
    horizon_coverage,
    horizon_errors,
    load_backtest,
)
from sim.present.report_batch import write_whole
from sim.present.report_html import embedded_figure, esc, html_table, number, percent
from sim.scenario.yamlio import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The coverage a backtest's bands should reach, pooled (the standard of "Forecasts that deserve belief").
COVERAGE_90, COVERAGE_50 = (0.80, 0.95), (0.40, 0.60)


def _origins(bt: Backtest) -> str:
    o = [str(x) for x in bt.summary.get("origins") or []]
    return f"{len(o)} origin{'s' if len(o) != 1 else ''} ({', '.join(o)})" if o else "no origins"


def backtest_figure(bt: Backtest) -> Figure:
    """Mean |log error| by horizon, model against benchmarks, and the model's band coverage."""
    from sim.present import plots

    errors, n = horizon_errors(bt)
    labels = {MODEL: "the model", **BENCHMARK_LABELS}
    return plots.plot_backtest(
        errors, horizon_coverage(bt), labels=labels, assimilated=assimilation_errors(bt),
        title="How good are these forecasts? Rolling-origin backtest against simple forecasters",
        subtitle=f"{_origins(bt)} · errors on the {n} figure forecasts every forecaster made · coverage over all "
                 f"{bt.summary.get('n_figures', '?')} the model made",
    )  # fmt: skip


def write_backtest_plot(folder: str | Path, out: str | Path, fmt: str, dpi: int) -> Path:
    """Write :func:`backtest_figure` of a backtest folder as ``fmt`` (png, svg or pdf)."""
    from sim.present import plots

    fig = backtest_figure(load_backtest(folder))
    buf = io.BytesIO()
    plots.save(fig, buf, fmt, dpi)
    write_whole(Path(out), buf.getvalue())
    return Path(out)


def _rel(x: Any) -> str:
    return "-" if x is None else number(x, 2)


def _pooled_row(label: str, s: dict[str, Any], benchmarks: list[str]) -> list[str]:
    return [esc(label), str(s.get("n_figures", "-")), percent(s.get("coverage_50")), percent(s.get("coverage_90")),
            number(s.get("crps"), 3), number(s.get("mae_log"), 3),
            *(_rel((s.get("relative_mae") or {}).get(b)) for b in benchmarks)]  # fmt: skip


def _verdict(bt: Backtest) -> str:
    s, focus = bt.summary, bt.summary.get("focus") or {}
    c90, c50 = s.get("coverage_90"), s.get("coverage_50")
    out = []
    if c90 is not None and c50 is not None:
        ok = COVERAGE_90[0] <= c90 <= COVERAGE_90[1] and COVERAGE_50[0] <= c50 <= COVERAGE_50[1]
        out.append(f"Pooled, the 90% bands cover {percent(c90)} of the reported figures and the 50% bands "
                   f"{percent(c50)}: {'within' if ok else '<b>outside</b>'} the standard (80-95% and 40-60%).")  # fmt: skip
    rel = focus.get("relative_mae") or {}
    named = ", ".join(str(b) for b in focus.get("brands") or [])
    parts = [f"{BENCHMARK_LABELS.get(b, b)} {_rel(rel.get(b))}" for b in ("seasonal_naive", "bass") if b in rel]
    if parts:
        better = all(rel[b] is not None and rel[b] < 1 for b in ("seasonal_naive", "bass") if b in rel)
        out.append(f"Over {esc(named)}, the model's mean |log error| relative to {', '.join(parts)} "
                   f"(below 1: the model is better): {'better than both' if better else '<b>not better than both</b>'}.")  # fmt: skip
    return " ".join(out)


def assimilation_html(bt: Backtest) -> str:
    """What starting the forecast from the state a particle filter left changed (the summary's ``assimilation``)."""
    a = bt.summary.get("assimilation") or {}
    if not a.get("n_figures"):
        return ""
    lo, hi = a.get("horizons") or ("?", "?")
    rel = a.get("relative")
    verdict = "" if rel is None else (" lower" if rel < 1 else " <b>not lower</b>")
    return (f"<p><b>Assimilation.</b> At each origin after the first, the fit made at the previous origin was also "
            f"forecast from this one twice: once with the figures reported since assimilated by a particle filter "
            f"({esc(a.get('particles', '?'))} particles), as the production forecast does, and once without. On the "
            f"{a['n_figures']} figures both scored at horizons {esc(lo)}-{esc(hi)}, its mean |log error| was "
            f"{number(a.get('mae_log_with'), 3)} with them against {number(a.get('mae_log_without'), 3)} without "
            f"(ratio {_rel(rel)}:{verdict}; the refit at the origin: {number(a.get('mae_log_refit'), 3)}). Its 90% "
            f"bands covered {percent(a.get('coverage_90_with'))} of those figures with assimilation and "
            f"{percent(a.get('coverage_90_without'))} without.</p>")  # fmt: skip


def backtest_section(bt: Backtest) -> str:
    """The report's section "How good are these forecasts": the figure, the pooled table, by horizon."""
    s = bt.summary
    benchmarks = bt.benchmarks
    plan = bt.manifest.get("plan") or {}
    intro = (f"<p>At each of {_origins(bt)} the model was refitted on the figures reported up to that month only and "
             f"forecast the next {esc(plan.get('horizon', '?'))} months; every reported figure after the origin "
             f"(through {esc(plan.get('through', '?'))}) was scored, and the same figures were forecast by simple "
             f"forecasters fitted to the same data. {esc(s.get('inputs_note', '')).capitalize()}. From "
             f"<code>{esc(bt.path)}</code>.</p><p>{_verdict(bt)}</p>")  # fmt: skip
    middle = ("Middle: the model's mean absolute log error without (black) and with (dashed) assimilation, on the "
              "figures both forecasts scored. ") if len(assimilation_errors(bt)) else ""  # fmt: skip
    fig = embedded_figure(backtest_figure(bt), "backtest", "Left: mean absolute log error of the model (black, solid) "
                          "and of each benchmark by months ahead, on the figure forecasts every forecaster made (an "
                          f"error of 0.1 is about 10%). {middle}Right: the share of reported figures inside the model's "
                          "50% (dashed) and 90% (solid) bands by months ahead, against their nominal share (dotted); the "
                          "numbers under the horizons are the figures scored.", "fig-backtest")  # fmt: skip
    head = ["", "figures", "50% band covers", "90% band covers", "CRPS", "mean |log error|",
            *(f"vs {BENCHMARK_LABELS.get(b, b)}" for b in benchmarks)]  # fmt: skip
    focus = s.get("focus") or {}
    rows = [_pooled_row("all brands", s, benchmarks)]
    named = ", ".join(focus.get("brands") or [])
    if focus:
        rows.append(_pooled_row(f"the {len(focus.get('brands') or [])} named", focus, benchmarks))
    table = ("<p class=sub>Nominal coverage: 50% and 90%. CRPS and errors in log units (lower is better). "
             "The last columns: the model's mean |log error| divided by each benchmark's on the same figures "
             f"(below 1: the model is better).{' The named brands: ' + esc(named) + '.' if named else ''}</p>"
             + html_table(head, rows, "l" + "r" * (len(head) - 1), cls="small"))  # fmt: skip
    hrows = [[str(h["horizon"]), str(h.get("n_figures", "-")), percent(h.get("coverage_50")), percent(h.get("coverage_90")),
              number(h.get("crps"), 3), number(h.get("mae_log"), 3),
              *(_rel((h.get("relative_mae") or {}).get(b)) for b in benchmarks)] for h in s.get("by_horizon") or []]  # fmt: skip
    by_h = (f"<details><summary>By horizon ({len(hrows)} rows)</summary>"
            f"{html_table(['months ahead', *head[1:]], hrows, 'r' * len(head), cls='small')}</details>")  # fmt: skip
    return intro + fig + table + assimilation_html(bt) + by_h


def need_backtest(folder: str | Path | None) -> Backtest | None:
    """:func:`load_backtest` of ``folder`` (None: no backtest asked)."""
    if folder is None:
        return None
    bt = load_backtest(folder)
    if not bt.summary.get("by_horizon"):
        raise InputError(f"{folder}: the backtest scored no figures (empty summary)")
    return bt
