"""Output of ``sim compare``: JSON, text tables and CSV.

Besides the comparison, a folder's :class:`FolderContext`: a forecast's assimilation (origin, figures,
final effective sample size) and its targets before the last month's figures, and the decomposition
of its targets' deliveries (:mod:`sim.present.anatomy`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.compare import Comparison, target_table
from sim.analysis.pair_comparison import PairComparison
from sim.present.anatomy import Decomposition, anatomy_lines, anatomy_rows, find_decomposition
from sim.present.forecast_folder import Assimilation, assimilation_of, before_folder
from sim.runs.store import Results, load_results
from sim.scenario.yamlio import InputError


@dataclass(frozen=True)
class FolderContext:
    """What ``sim compare`` says of a folder besides its comparison.

    Attributes:
        assimilation: a forecast folder's assimilation (None: not a forecast).
        before: the targets (:func:`sim.analysis.compare.target_table`) of the forecast before the last
            month's figures (``DIR/before``; None: none).
        anatomy: the decomposition of the targets' deliveries (None: none found).
    """

    assimilation: Assimilation | None = None
    before: list[dict[str, Any]] | None = None
    anatomy: Decomposition | None = None


def folder_context(res: Results, decomposition: str | Path | None = None) -> FolderContext:
    """A folder's :class:`FolderContext` (``decomposition``: a decomposition folder or file; default: the one in
    or beside the folder)."""
    a = assimilation_of(res.manifest)
    folder = before_folder(res.path) if a is not None else None
    before = target_table(load_results(folder)) if folder is not None else None
    return FolderContext(a, before, find_decomposition(res.path, decomposition))

# --------------------------------------------------------------------------- output


def jsonable(obj: Any) -> Any:
    """Plain JSON data: NaN and infinities become None, numpy and pandas scalars Python ones."""
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict("records")]
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, bool | int | str):
        return obj
    return str(obj)


def _public(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in df.columns if not str(c).startswith("_")]]


def _with_results(df: pd.DataFrame, label: str | None) -> pd.DataFrame:
    df = _public(df)
    return df if label is None else df.assign(results=label)[["results", *df.columns]]


def build_document(comps: Sequence[Comparison], pair: PairComparison | None = None,
                   contexts: Sequence[FolderContext] = ()) -> dict[str, Any]:  # fmt: skip
    """The JSON document of ``sim compare --format json`` (NaN and infinities as null).

    Shape::

        {"figures": [{figure_id, brand, model, measure, frequency, start, end, reported,
                      qualifier, confidence, source, sim_mean, sim_p5, sim_p95, error,
                      pct_error, inside_band, note, weight, used}, ...],
         "series": [{brand, model, frequency, n, periods, weight, mape, bias_pct, mase,
                     mase_basis, coverage, n_band, note}, ...],
         "targets": [{name, brand, units, start, by, reported_cumulative_at_start, runs,
                      probability, probability_low, probability_high, month_reached_p5,
                      month_reached_median, month_reached_p95, delivered_mean, delivered_p5,
                      delivered_p95, shortfall_mean, shortfall_p50, shortfall_p95, note}, ...],
         # two folders only:
         "paired": [{metric, a_mean, b_mean, mean_diff, diff_p5, diff_p95, ci_low, ci_high,
                     n, paired, note}, ...],
         "cannibalisation": {new_products, window_start, window_end, new_units,
                             units_lost_total, outside_option, outside_option_share,
                             products: [{model, brand, a_units, b_units, units_lost,
                                         lost_p5, lost_p95, share_of_new}, ...],
                             paired, replicates, pairing},
         # a forecast folder (sim forecast) only:
         "forecast": [{origin, first_uncertain_month, particles, final_ess, ess, resampled,
                       assimilated: [{figure, lines, month, reported, qualifier, sd, simulated_mean,
                                      simulated_p5, simulated_median, simulated_p95, inside,
                                      date, basis, fraction}, ...],
                       before: [targets of DIR/before, as "targets"] or null}, ...],
         # with a decomposition (decomposition.json in or beside the folder, or --decomposition):
         "decomposition": [{path, scenario, targets: [{target, probability, probability_interval,
                            mean, sd, rows: [{source, sd, share, probability, mean}, ...]}, ...]}, ...]}

    With two folders every row of the first three (and of the last two) carries ``results`` (the folder's path).
    """
    two = len(comps) > 1
    doc: dict[str, Any] = {
        "figures": pd.concat([_with_results(c.figures, str(c.path) if two else None) for c in comps], ignore_index=True)
        if any(len(c.figures) for c in comps) else [],
        "series": pd.concat([_with_results(c.series, str(c.path) if two else None) for c in comps], ignore_index=True)
        if any(len(c.series) for c in comps) else [],
        "targets": [({"results": str(c.path)} if two else {}) | t for c in comps for t in c.targets],
    }  # fmt: skip
    if pair is not None:
        doc["paired"] = pair.paired
        doc["cannibalisation"] = {**pair.cannibalisation_summary, "products": pair.cannibalisation,
                                  "paired": pair.is_paired, "replicates": pair.replicates, "pairing": pair.note}  # fmt: skip
    where = [({"results": str(c.path)} if two else {}) for c in comps]
    forecasts = [w | _forecast_entry(x) for w, x in zip(where, contexts, strict=False) if x.assimilation is not None]
    if forecasts:
        doc["forecast"] = forecasts
    anatomies = [w | _anatomy_entry(x.anatomy) for w, x in zip(where, contexts, strict=False) if x.anatomy is not None]
    if anatomies:
        doc["decomposition"] = anatomies
    return jsonable(doc)


def _forecast_entry(x: FolderContext) -> dict[str, Any]:
    a = x.assimilation
    assert a is not None
    return {"origin": a.origin, "first_uncertain_month": a.first_month, "particles": a.particles,
            "final_ess": a.final_ess, "ess": a.ess.to_dict(), "resampled": a.resampled,
            "assimilated": a.figures.drop(columns=["entity", "level", "kind", "start", "end"]), "before": x.before}  # fmt: skip


def _anatomy_entry(d: Decomposition) -> dict[str, Any]:
    targets = [{"target": t["target"], "probability": t.get("probability_all"),
                "probability_interval": t.get("probability_all_interval"), "mean": t.get("mean_all"),
                "sd": t.get("sd_all"), "rows": [asdict(r) for r in anatomy_rows(t)]}
               for t in d.data.get("targets") or []]  # fmt: skip
    return {"path": str(d.path), "scenario": d.scenario, "targets": targets}


def _text(x: Any) -> str:
    """A cell as text; missing values blank."""
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA else str(x)


def _num(x: Any, digits: int = 0) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-" if x is None else str(x)
    return "-" if not math.isfinite(v) else f"{v:,.{digits}f}"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_targets(c: Comparison, anatomy: Decomposition | None = None, forecast: bool = False) -> str:
    """The targets of one folder, probability first (with ``anatomy``, where the spread of each comes from;
    ``forecast``: the folder is a forecast's)."""
    out = []
    for t in c.targets:
        out.append(f"TARGET '{t['name']}': {_num(t['units'])} {t['brand']} deliveries {t['start']}..{t['by']}")
        out.append(f"  PROBABILITY OF REACHING IT: {_num(t['probability'], 2)}"
                   f"  (95% CI {_num(t['probability_low'], 2)}-{_num(t['probability_high'], 2)}, {t['runs']} runs)")  # fmt: skip
        out.append(f"  month reached: median {t['month_reached_median'] or 'not reached'}"
                   f" [5%: {t['month_reached_p5'] or 'not reached'}, 95%: {t['month_reached_p95'] or 'not reached'}]")  # fmt: skip
        out.append(
            f"  delivered in the window: mean {_num(t['delivered_mean'])} [5%: {_num(t['delivered_p5'])}, 95%: {_num(t['delivered_p95'])}]"
        )
        out.append(
            f"  shortfall at {t['by']}: mean {_num(t['shortfall_mean'])}, median {_num(t['shortfall_p50'])}, 95%: {_num(t['shortfall_p95'])}"
        )
        if t.get("reported_cumulative_at_start") is not None:
            out.append(f"  reported cumulative at {t['start']}: {_num(t['reported_cumulative_at_start'])}")
        if t.get("note"):
            out.append(f"  note: {t['note']}")
        if anatomy is not None:
            out += anatomy_lines(anatomy, t["name"], c.scenario_name, forecast=forecast)
    return "\n".join(out) if out else "no targets in the scenario"


def format_forecast(x: FolderContext) -> str:
    """A forecast folder's assimilation: origin, figures (against the particles before each), final ESS, before/after."""
    a = x.assimilation
    if a is None:
        return ""
    out = [f"FORECAST {a.summary_line()}"]
    if len(a.figures):
        out.append(f"  {a.inside_text()}; each figure (reported; the particles' median [5%, 95%] just before it):")
    for f in a.figures.itertuples():
        rep = ("" if f.qualifier in ("=", "range") else f.qualifier) + _num(f.reported)
        out.append(f"    {f.figure}: {rep}; {_num(f.simulated_median)} [{_num(f.simulated_p5)}, {_num(f.simulated_p95)}]"
                   + ("" if f.inside else "  outside"))  # fmt: skip
    for t in x.before or []:
        out.append(f"  before the figures of {a.last_month} ({t['runs']} runs in before/): target '{t['name']}' probability "
                   f"{_num(t['probability'], 2)} (95% CI {_num(t['probability_low'], 2)}-{_num(t['probability_high'], 2)}), "
                   f"delivered {_num(t['delivered_mean'])} [5%: {_num(t['delivered_p5'])}, 95%: {_num(t['delivered_p95'])}]")  # fmt: skip
    return "\n".join(out)


def format_series(series: pd.DataFrame) -> str:
    if series.empty:
        return "no reported figures compared"
    rows = [[str(r.brand), _text(r.model), str(r.frequency), str(r.n), _num(r.mape, 1), _num(r.bias_pct, 1),
             _num(r.mase, 2), _num(r.coverage, 2), str(r.mase_basis)] for r in series.itertuples()]  # fmt: skip
    head = ["brand", "model", "frequency", "n", "MAPE %", "bias %", "MASE", "coverage", "MASE scale"]
    tol = ("tolerances (MISSION.md): monthly MAPE <10% high, 10-20% good; annual within 10%; "
           "coverage of the 90% band >= 0.80; weights by source confidence (high 1, medium 0.7, low 0.4)")  # fmt: skip
    return _text_table(head, rows, [False, False, False, True, True, True, True, True, False]) + "\n" + tol


def format_figures(figures: pd.DataFrame) -> str:
    if figures.empty:
        return "no reported volume figures"
    shown = figures[figures["sim_mean"].notna()]
    rows = []
    for r in shown.itertuples():
        rep = ("" if r.qualifier in ("=", "range") else r.qualifier) + _num(r.reported)
        period = r.start if r.start == r.end else f"{r.start}..{r.end}"
        inside = {True: "yes", False: "NO"}.get(r.inside_band, "-")
        rows.append([str(r.figure_id), _text(r.model) or str(r.brand), str(r.measure), str(r.frequency), period, rep,
                     str(r.confidence), _num(r.sim_mean), f"{_num(r.sim_p5)}-{_num(r.sim_p95)}", _num(r.pct_error, 1),
                     inside, "" if r.used else "no", str(r.note)])  # fmt: skip
    head = ["line", "brand/model", "measure", "frequency", "period", "reported", "conf", "sim mean", "sim 5-95%",
            "error %", "in band", "used", "note"]  # fmt: skip
    text = _text_table(
        head, rows, [True, False, False, False, False, True, False, True, True, True, False, False, False]
    )
    hidden = len(figures) - len(shown)
    if hidden:
        text += f"\n{hidden} figure(s) not compared (outside the results, or not simulated): see --format csv"
    return text


def format_pair(pair: PairComparison) -> str:
    out = [f"PAIRED DIFFERENCES B - A ({pair.note})"]
    rows = [[str(r.metric), _num(r.a_mean, 2 if "reached" in r.metric else 0), _num(r.b_mean, 2 if "reached" in r.metric else 0),
             _num(r.mean_diff, 2 if "reached" in r.metric else 0),
             f"{_num(r.diff_p5, 2 if 'reached' in r.metric else 0)} to {_num(r.diff_p95, 2 if 'reached' in r.metric else 0)}",
             f"{_num(r.ci_low, 2 if 'reached' in r.metric else 0)} to {_num(r.ci_high, 2 if 'reached' in r.metric else 0)}",
             str(r.note)] for r in pair.paired.itertuples()]  # fmt: skip
    out.append(_text_table(["metric", "A mean", "B mean", "B - A", "90% of differences", "95% CI of mean", "note"], rows,
                           [False, True, True, True, True, True, False]))  # fmt: skip
    s = pair.cannibalisation_summary
    out.append("")
    if pair.cannibalisation.empty:
        out.append(f"CANNIBALISATION: {s.get('note', 'nothing to show')}")
        return "\n".join(out)
    out.append(f"CANNIBALISATION: new in B: {', '.join(s['new_products'])}; {_num(s['new_units'])} units "
               f"{s['window_start']}..{s['window_end']} came from (units lost = A - B, positive = lost):")  # fmt: skip
    rows = [[str(r.model), str(r.brand), _num(r.a_units), _num(r.b_units), _num(r.units_lost),
             f"{_num(r.lost_p5)} to {_num(r.lost_p95)}", _num(100 * r.share_of_new, 1)] for r in pair.cannibalisation.itertuples()]  # fmt: skip
    rows.append(
        [
            "(outside option: would not have bought)",
            "",
            "",
            "",
            _num(s["outside_option"]),
            "",
            _num(100 * s["outside_option_share"], 1),
        ]
    )
    out.append(_text_table(["product", "brand", "A units", "B units", "units lost", "90% of losses", "% of new"], rows,
                           [False, False, True, True, True, True, True]))  # fmt: skip
    return "\n".join(out)


def format_table(comps: Sequence[Comparison], pair: PairComparison | None = None, what: str | None = None,
                 contexts: Sequence[FolderContext] = ()) -> str:  # fmt: skip
    """Readable text: a forecast's assimilation and the targets first, then paired differences, series metrics
    and figures."""
    parts = []
    for i, (label, c) in enumerate(zip("AB", comps, strict=False)):
        x = contexts[i] if i < len(contexts) else FolderContext()
        name = f"{label}: " if len(comps) > 1 else ""
        head = f"{name}{c.path} (scenario '{c.scenario_name}', {c.runs} finished runs, {c.period})"
        if x.assimilation is not None and what in (None, "targets"):
            head += "\n" + format_forecast(x)
        sections = {
            "targets": format_targets(c, x.anatomy, x.assimilation is not None),
            "series": "SERIES METRICS\n" + format_series(c.series),
            "figures": "REPORTED FIGURES (vehicles; sim = mean and 5-95% band over replicates)\n" + format_figures(c.figures),
        }  # fmt: skip
        keep = [k for k in ("targets", "series", "figures") if what in (None, k)]
        if keep:
            parts.append("\n\n".join([head, *(sections[k] for k in keep)]))
    if pair is not None and what in (None, "paired", "cannibalisation"):
        parts.append(format_pair(pair))
    return "\n\n".join(parts) + "\n"


def format_csv(comps: Sequence[Comparison], pair: PairComparison | None, what: str) -> str:
    """One table as CSV: figures (default), series, targets, paired or cannibalisation."""

    def label(c: Comparison) -> str | None:
        return str(c.path) if len(comps) > 1 else None

    if what in ("figures", "series"):
        frames = [_with_results(getattr(c, what), label(c)) for c in comps]
        df = pd.concat(frames, ignore_index=True) if any(len(f) for f in frames) else frames[0]
    elif what == "targets":
        df = pd.DataFrame([({"results": label(c)} if len(comps) > 1 else {}) | t for c in comps for t in c.targets])
    elif pair is None:
        raise InputError(f"--what {what} needs two results folders")
    elif what == "paired":
        df = pair.paired
    else:
        s = pair.cannibalisation_summary
        outside = {
            "model": "(outside option)",
            "units_lost": s["outside_option"],
            "share_of_new": s["outside_option_share"],
        }
        df = pair.cannibalisation
        if len(df):
            df = pd.concat([df, pd.DataFrame([outside], columns=df.columns)], ignore_index=True)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()
