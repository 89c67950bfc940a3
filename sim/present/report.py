"""The report of a batch: one self-contained HTML file (``sim report``; its figures one at a time: ``sim plot``).

Analysis only: reads results folders (:func:`sim.runs.store.load_results`), compares them with the
reported figures and with each other (:mod:`sim.analysis.compare`, :mod:`sim.analysis.pair_comparison`) and
draws with :mod:`sim.present.plots`.

``sim report DIR [--vs DIR2]`` writes one HTML file that opens offline (images embedded as
base64 PNG, styles inline, no script or font from the network) and prints on A4 landscape:

1. the headline: per target of the scenario, the probability of reaching it (95% Wilson
   interval), the month reached and the deliveries in its window; with ``--vs`` the same for
   the reference and the paired differences ``DIR - DIR2``; with a decomposition
   (``decomposition.json`` in or beside ``DIR``, or ``--decomposition``) where the spread of the
   window's deliveries comes from (:mod:`sim.present.anatomy`);
2. the figures (:data:`~sim.present.report_figures.PLOTS`): the fan chart of the target
   brand's cumulative deliveries (of a forecast folder, with the figures it assimilated), the
   target's probability and month reached, monthly deliveries per brand, segment shares and brand
   shares inside each segment; with ``--vs`` also both fans on one axis, the paired differences and
   where the new products' buyers came from;
3. a forecast folder (``sim forecast``): what it assimilated, the effective sample size, what the
   last month's figures moved (:mod:`sim.present.report_forecast`);
4. with ``--backtest BTDIR``: how good the model's forecasts were in a rolling-origin backtest,
   against simple forecasters (:mod:`sim.present.report_backtest`);
5. with ``--vs``: the paired-differences and cannibalisation tables;
6. the scenario's key assumptions (and with ``--vs`` what differs from the reference);
7. the comparison with the reported figures (series metrics and every figure);
8. the manifest(s): seeds, replications, scale, scenario hash, code and package versions.

``DIR`` is the scenario in focus (B of :func:`sim.analysis.pair_comparison.compare_pair`), ``DIR2`` the
reference (A): differences are ``DIR - DIR2`` and the new products are those of ``DIR``.

The pieces: the batch (:mod:`sim.present.report_batch`), the figures (:mod:`sim.present.report_figures`,
also ``sim plot``), the sections (:mod:`sim.present.report_sections`,
:mod:`sim.present.report_assumptions`) built from :mod:`sim.present.report_html`; this module puts
the document together.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from sim.present.anatomy import Decomposition, find_decomposition
from sim.present.backtest_folder import Backtest
from sim.present.report_assumptions import differences_html, key_assumptions
from sim.present.report_backtest import backtest_section, need_backtest
from sim.present.report_batch import Batch, load_batch, pair_of, tell_apart, write_whole
from sim.present.report_figures import make_figure, report_figures
from sim.present.report_forecast import forecast_section
from sim.present.report_html import embedded_figure, esc
from sim.present.report_sections import (
    cannibalisation_table,
    comparison_html,
    headline_html,
    manifest_html,
    paired_table,
    reading_notes,
)

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


def build_report(batch: Batch, vs: Batch | None = None, *, unpaired: bool = False,
                 anatomy: Decomposition | None = None, backtest: Backtest | None = None) -> str:  # fmt: skip
    """The HTML document of ``sim report`` (``anatomy``: the decomposition of the targets' deliveries;
    ``backtest``: a backtest's scores, for the section "How good are these forecasts")."""
    if vs is not None:
        tell_apart(batch, vs)
    pair = pair_of(batch, vs, unpaired) if vs is not None else None
    batches = [batch] + ([vs] if vs else [])
    target = batch.target
    title = (f"{target['name']}: " if target else "") + batch.label + (f" vs {vs.label}" if vs else "")
    figure_html = []
    for anchor, what, caption in report_figures(batch, vs, pair):
        fig = make_figure(what, batch, vs, pair)
        alt = str(fig.get_label())
        figure_html.append(embedded_figure(fig, alt, caption, anchor))
    notes = reading_notes(batches)
    if anatomy is None and target:
        notes += ("<li>Where the spread of the target's deliveries comes from is not shown: make a decomposition with "
                  "<code>sim decompose SCENARIO --out DIR</code> and pass <code>--decomposition DIR</code>.</li>")  # fmt: skip
    sections = [
        ("headline", "Headline", headline_html(batch, vs, pair, anatomy) + f'<ul class="read">{notes}</ul>'),
        ("figures", "Figures", "\n".join(figure_html)),
    ]
    if batch.assimilation is not None:
        sections.append(("forecast", "What the forecast assimilated", forecast_section(batch)))
    if backtest is not None:
        sections.append(("backtest", "How good are these forecasts", backtest_section(backtest)))
    if pair is not None and vs is not None:
        sections.append(("paired", f"Paired differences: {batch.label} - {vs.label}",
                         f"<p>{esc(pair.note)}.</p>" + paired_table(pair)))  # fmt: skip
        sections.append(("cannibalisation", "Cannibalisation", cannibalisation_table(pair)))
    assumptions = key_assumptions(batch.results.manifest)
    if vs is not None:
        assumptions += f"<h3>What differs from {esc(vs.label)}</h3>" + differences_html(batch, vs)
    sections.append(("assumptions", f"Key assumptions of {batch.label}", assumptions))
    sections.append(("reported", f"Against the reported figures ({batch.label})", comparison_html(batch.comparison)))
    sections.append(("manifest", "Manifest", manifest_html(batches)))
    from sim import __version__

    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    meta = " · ".join([f"{esc(b.label)}: {esc(b.results.path)}, {b.runs} runs, seed {esc(b.results.manifest.get('seed'))}, "
                       f"scenario hash {esc(b.results.manifest.get('scenario_hash', '-'))}" for b in batches])  # fmt: skip
    nav = "".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in sections)
    body = "\n".join(f'<section id="{a}"><h2>{esc(h)}</h2>\n{c}\n</section>' for a, h, c in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><div class=\"meta\">{meta}</div><nav>{nav}</nav></header>\n{body}\n"
        f"<footer>Written by sim {esc(__version__)} (<code>sim report</code>) at {now}. Self-contained: the figures are "
        f"embedded, nothing is loaded from the network.</footer><script>{_JS}</script></body></html>\n"
    )


def write_report(results: str | Path, out: str | Path | None = None, vs: str | Path | None = None, *,
                 reported: Any = None, unpaired: bool = False, decomposition: str | Path | None = None,
                 backtest: str | Path | None = None) -> Path:  # fmt: skip
    """Write the HTML report of ``results`` (against ``vs``) to ``out`` (default ``results/report.html``).

    Args:
        decomposition: a decomposition folder (``sim decompose --out``) or its JSON file; default:
            ``decomposition.json`` in ``results`` or beside it, if any.
        backtest: a backtest folder (``sim backtest --out``) for "How good are these forecasts".
    """
    batch = load_batch(results, reported)
    ref = load_batch(vs, reported) if vs is not None else None
    anatomy = find_decomposition(results, decomposition)
    bt = need_backtest(backtest)
    path = Path(out) if out is not None else Path(results) / "report.html"
    write_whole(path, build_report(batch, ref, unpaired=unpaired, anatomy=anatomy, backtest=bt).encode("utf-8"))
    return path
