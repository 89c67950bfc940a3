"""Each reported volume figure against the simulated deliveries over the same months, and the series metrics.

Analysis only: works on a :class:`sim.analysis.unit_cube.UnitCube` and the reported figures table;
:func:`sim.analysis.compare.compare` puts them together for ``sim compare``.

Reported figures
    Every usable reported *volume* figure about a simulated brand (or product) is set against the
    simulated deliveries (``units``) summed over the months it covers: a month, a quarter (3
    months), a year (12), or for a cumulative figure from its start through its end month. When a
    cumulative figure or milestone does not say where its sum starts (``start == end``), the sum
    runs from the brand's (product's) first delivery month in the scenario, and only if that month
    is inside the results. Sums are per replicate; the table gives their mean and 5th-95th
    percentile band across replicates. A figure is compared only where the results cover all its
    months; the others are listed with a note.

    Deliveries, sales, retail and registrations are all compared with simulated deliveries.
    Wholesale and production are different measures: they are shown next to simulated deliveries
    but left out of the metrics, as are figures of an alliance (HIMA), a group, a parent company or
    a disputed attribution, and figures including exports (``market`` empty). ``--all-figures``
    (:func:`all_figures`) puts them all in the metrics. The ``note`` column says why a row is left
    out.

    Conflicting sources keep one row each. In the metrics a row weighs its source's confidence
    (:data:`CONFIDENCE_WEIGHTS`: high 1, medium 0.7, low 0.4) divided by the number of rows
    reporting the same period, so a period counts at most once however many sources report it and
    conflicting sources share it in proportion to their confidence. The weights are a judgement
    (a company statement over a trade site quoting it over an unattributed page); they order the
    sources and change the metrics little.

    A figure is inside the band when its reported interval meets the simulated 5-95% band: an
    exact figure lies in ``[p5, p95]``; ``>x`` needs ``p95 >= x``; ``<x`` needs ``p5 <= x``; ``~x``
    (x +/- 5%) and ranges need an overlap. Only exact, approximate and range figures (their
    midpoint) enter MAPE and MASE; ``>`` and ``<`` figures count in coverage only.

Series metrics (per brand, product and frequency)
    MAPE (:func:`~sim.analysis.metrics.mape`), MASE against a seasonal-naive forecast
    (:func:`~sim.analysis.metrics.mase`) and the coverage of the reported values by the 90% band
    (:func:`~sim.analysis.metrics.coverage`). The MASE scale is the mean absolute error of the
    seasonal-naive forecast (the value 12 months earlier: lag 12 for monthly figures,
    4 for quarterly, 1 for annual) on the reported series itself, all its reported periods
    included; with fewer than two such pairs it falls back to the naive forecast (the previous
    period) and says so in ``mase_basis``. Pairs are matched on dates, never on position, so gaps
    drop pairs instead of shifting them. MASE is not defined for cumulative figures.

Tolerances stated with every comparison (MISSION.md, validation standard): monthly MAPE under
10% is a high, 10-20% a good fit; annual brand totals within 10%; reported values inside the 90%
band at least 80% of the time (:data:`TOLERANCES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.metrics import BAND, band_overlaps, coverage, mape, mase, naive_scale
from sim.analysis.unit_cube import UnitCube
from sim.scenario.months import format_month, parse_month

#: Weight of a figure in the metrics by the confidence of its source.
CONFIDENCE_WEIGHTS: dict[str, float] = {"high": 1.0, "medium": 0.7, "low": 0.4, "none": 0.0}
#: Reported measures compared with simulated deliveries.
DELIVERY_MEASURES = ("deliveries", "sales", "retail", "registrations")
#: Reported measures shown next to simulated deliveries but left out of the metrics by default.
OTHER_MEASURES = ("wholesale", "production")
#: Bases of figures that are not the brand alone, left out of the metrics by default.
EXCLUDED_BASES = ("alliance", "group", "parent", "disputed")
#: Frequencies of reported volume figures.
FREQUENCIES = ("monthly", "quarterly", "annual", "cumulative", "point")
#: Months from one period to the one before it (the non-seasonal naive lag).
STEP_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}
#: The seasonal lag in months, whatever the frequency: the same period a year earlier.
SEASON_MONTHS = 12
#: The validation standard the metrics are read against (MISSION.md).
TOLERANCES = {
    "mape_monthly_high": 10.0,
    "mape_monthly_good": 20.0,
    "annual_abs_pct_error": 10.0,
    "coverage_min": 0.80,
}

FIGURE_COLUMNS = (
    "figure_id", "brand", "model", "measure", "frequency", "start", "end", "reported", "qualifier",
    "confidence", "source", "sim_mean", "sim_p5", "sim_p95", "error", "pct_error", "inside_band",
    "note", "weight", "used",
)  # fmt: skip
SERIES_COLUMNS = (
    "brand", "model", "frequency", "n", "periods", "weight", "mape", "bias_pct", "mase",
    "mase_basis", "coverage", "n_band", "note",
)  # fmt: skip


def _get(row: Mapping[str, Any], key: str) -> Any:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v


def default_figures(figures: pd.DataFrame) -> pd.Series:
    """Why each reported figure is left out of the metrics by default ('' = used).

    Left out: alliance, group, parent and disputed figures (not the brand alone), wholesale and
    production (a different measure from deliveries) and figures including exports.
    """
    reasons = []
    for row in figures.to_dict("records"):
        basis = _get(row, "basis") or ""
        of = _get(row, "cumulative_of")
        measure = row["measure"] if row["measure"] != "cumulative" else (of or "deliveries")
        if basis in EXCLUDED_BASES:
            reasons.append(f"{basis} figure, not the brand alone: not in metrics")
        elif measure in OTHER_MEASURES:
            reasons.append(f"different measure ({measure}), shown against deliveries: not in metrics")
        elif _get(row, "market") is None:
            reasons.append("includes exports, shown against all markets: not in metrics")
        else:
            reasons.append("")
    return pd.Series(reasons, index=figures.index, dtype=object)


def all_figures(figures: pd.DataFrame) -> pd.Series:
    """Every figure with a simulated value is used in the metrics (``--all-figures``)."""
    return pd.Series([""] * len(figures), index=figures.index, dtype=object)


FiguresFilter = Callable[[pd.DataFrame], pd.Series]
#: Columns of the figures table: :data:`FIGURE_COLUMNS` and, hidden, the reported bounds and the filter's reason.
TABLE_COLUMNS = (*FIGURE_COLUMNS, "_low", "_high", "_reason")


def volume_figures(figures: pd.DataFrame) -> pd.DataFrame:
    """The reported rows that can be compared with simulated deliveries: volumes of a brand, with a number."""
    if figures.empty:
        return figures
    keep = (
        figures["measure"].isin(DELIVERY_MEASURES + OTHER_MEASURES + ("cumulative",))
        & figures["frequency"].isin(FREQUENCIES)
        & figures["brand"].notna()
        & pd.to_numeric(figures["value"], errors="coerce").notna()
    )
    return figures[keep]


def _figure_months(row: Mapping[str, Any], cube: UnitCube) -> tuple[int | None, int, str]:
    """First and last month of the sum a figure stands for, and a note (first None: not comparable)."""
    start, end = parse_month(str(row["start"])), parse_month(str(row["end"]))
    if row["frequency"] in ("cumulative", "point") and start == end:
        model, brand = _get(row, "model"), row["brand"]
        names = [model] if model else [p for p, b in zip(cube.products, cube.product_brand, strict=True) if b == brand]
        known = [cube.first_delivery[n] for n in names if n in cube.first_delivery]
        who = model or brand
        if known:
            since = min(known)
        else:
            used = cube.monthly(brand, model).sum(axis=0).nonzero()[0]
            if used.size == 0:
                return None, end, f"no simulated deliveries of {who} to count from"
            since = cube.first + int(used[0])
            if since == cube.first:
                return None, end, f"sum since launch, but {who} delivers from the results' first month: launch unknown"
        if since < cube.first:
            return (
                None,
                end,
                f"sum since launch ({format_month(since)}), before the results start ({format_month(cube.first)})",
            )
        return since, end, f"cumulative since {who}'s first deliveries ({format_month(since)})"
    return start, end, ""


def figure_table(
    figures: pd.DataFrame, cube: UnitCube, figures_filter: FiguresFilter = default_figures
) -> pd.DataFrame:
    """One row per reported volume figure with the simulated sum over the same months.

    Args:
        figures: reported figures (the ``figures`` table of :func:`sim.analysis.reported.load_reported`).
        cube: the simulated deliveries.
        figures_filter: gives per figure why it is left out of the metrics ('' = used).

    Returns:
        Columns :data:`FIGURE_COLUMNS`: ``reported`` (vehicles; the lower bound of a ``>``
        figure, the midpoint of a range), ``sim_mean``/``sim_p5``/``sim_p95`` over replicates,
        ``error = sim_mean - reported``, ``pct_error`` (percent of reported), ``inside_band``,
        ``note``, ``weight`` (confidence weight) and ``used`` (counted in the series metrics).
    """
    vol = volume_figures(figures)
    reasons = figures_filter(vol) if len(vol) else pd.Series([], dtype=object)
    rows = []
    for (_, row), reason in zip(vol.iterrows(), reasons, strict=True):
        row = row.to_dict()
        notes = [reason] if reason else []
        brand, model, market = row["brand"], _get(row, "model"), _get(row, "market")
        value = float(row["value"])
        low, high = (float(row[k]) if pd.notna(row.get(k)) else value for k in ("low", "high"))
        sim = np.full(3, math.nan)
        lo, hi, when = _figure_months(row, cube)
        if when:
            notes.insert(0, when)
        if brand not in cube.brands:
            notes.insert(0, f"brand {brand} not in the results")
        elif model is not None and model not in cube.products:
            notes.insert(0, f"product {model} not in the results")
        elif market is not None and market not in cube.markets:
            notes.insert(0, f"market {market} not in the results")
        elif lo is not None and (lo < cube.first or hi > cube.last):
            notes.insert(0, f"outside the results ({cube.period})")
        elif lo is not None:
            per_run = cube.window(cube.monthly(brand, model, market), lo, hi)
            sim = np.array([per_run.mean(), *np.quantile(per_run, BAND)])
        qualifier = _get(row, "qualifier") or "="
        if qualifier in (">", "<"):
            notes.append("bound: coverage only")
        if _get(row, "basis") == "brand":
            notes.append(f"SERES-brand figure standing for {brand}")
        if _get(row, "note"):
            notes.append(f"reported: {row['note']}")
        error = sim[0] - value
        rows.append({
            "figure_id": int(row["line"]), "brand": brand, "model": model, "measure": row["measure"],
            "frequency": row["frequency"], "start": format_month(lo) if lo is not None else row["start"],
            "end": row["end"], "reported": value, "qualifier": qualifier,
            "confidence": row["confidence"], "source": row.get("source"),
            "sim_mean": sim[0], "sim_p5": sim[1], "sim_p95": sim[2], "error": error,
            "pct_error": 100.0 * error / value if value else math.nan,
            "inside_band": bool(band_overlaps(low, high, sim[1], sim[2])[0]) if np.isfinite(sim[1]) else None,
            "note": "; ".join(notes), "weight": CONFIDENCE_WEIGHTS.get(str(row["confidence"]), 0.0),
            "used": bool(np.isfinite(sim[0]) and not reason),
            "_low": low, "_high": high, "_reason": reason,
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    order = table["frequency"].map({f: i for i, f in enumerate(FREQUENCIES)})
    table = table.assign(_order=order).sort_values(
        ["brand", "model", "_order", "start", "end", "figure_id"], na_position="first", kind="stable"
    )
    return table.drop(columns="_order").reset_index(drop=True)


# --------------------------------------------------------------------------- series


def _history(rows: pd.DataFrame) -> pd.Series:
    """A reported series by month index of its periods' start; a period reported by several
    sources gets their confidence-weighted mean."""
    if rows.empty:
        return pd.Series(dtype=float)
    w = rows["weight"].where(rows["weight"] > 0, 1e-9)
    df = pd.DataFrame({"t": rows["start"].map(parse_month), "wv": w * rows["reported"], "w": w})
    g = df.groupby("t")[["wv", "w"]].sum()
    return g["wv"] / g["w"]


def _mase_for(compared: pd.DataFrame, history: pd.Series, frequency: str) -> tuple[float, str]:
    """MASE of one series and how its scale was found (seasonal lag, or the naive fallback)."""
    if frequency not in STEP_MONTHS:
        return math.nan, "not defined for cumulative figures"
    step = STEP_MONTHS[frequency]
    seasonal_pairs = naive_scale(history, SEASON_MONTHS)[1]
    naive_pairs = naive_scale(history, step)[1]
    if seasonal_pairs >= 2 or step == SEASON_MONTHS:
        lag, pairs, how = SEASON_MONTHS, seasonal_pairs, "seasonal naive (12 months earlier)"
    elif naive_pairs >= 1:
        lag, pairs, how = step, naive_pairs, f"naive, previous period (seasonal pairs: {seasonal_pairs})"
    else:
        lag, pairs, how = SEASON_MONTHS, seasonal_pairs, "seasonal naive (12 months earlier)"
    if pairs == 0:
        return math.nan, "no two reported periods to scale by"
    value = mase(compared["reported"], compared["sim_mean"], history, lag, compared["w"])
    if not math.isfinite(value):
        return value, f"{how}, {pairs} pair(s): scale is zero"
    return value, f"{how}, {pairs} pair(s)"


def _split_weights(table: pd.DataFrame) -> pd.Series:
    """Confidence weight divided by the number of rows reporting the same period."""
    k = table.groupby(["brand", "model", "frequency", "start", "end"], dropna=False)["figure_id"].transform("size")
    return table["weight"] / k


def series_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """MAPE, MASE and coverage per brand, product and frequency, plus totals per frequency.

    Args:
        table: a :func:`figure_table`.

    Returns:
        Columns :data:`SERIES_COLUMNS`: ``n`` rows used, ``periods`` distinct periods, ``weight``
        (sum of weights), ``mape`` and ``bias_pct`` (weighted mean percent error, exact,
        approximate and range figures), ``mase`` with ``mase_basis``, ``coverage`` (weighted share
        inside the band, all used figures) over ``n_band`` figures. Totals have brand ``(all)``.
    """
    used = table[table["used"]].copy()
    if used.empty:
        return pd.DataFrame(columns=list(SERIES_COLUMNS))
    used["w"] = _split_weights(used)
    used["point"] = used["qualifier"].isin(["=", "~", "range"])
    # the history of a series for the MASE scale: every reported period it may use, compared or not
    hist_all = table[(table["_reason"] == "") & table["qualifier"].isin(["=", "~", "range"])]
    rows = []
    used["_order"] = used["frequency"].map({f: i for i, f in enumerate(FREQUENCIES)})
    for (brand, model, _, freq), g in used.groupby(["brand", "model", "_order", "frequency"], dropna=False, sort=True):
        model = None if pd.isna(model) else model
        same = (hist_all["brand"] == brand) & (hist_all["frequency"] == freq)
        same &= hist_all["model"].isna() if model is None else hist_all["model"] == model
        pts = g[g["point"]]
        value, basis = _mase_for(pts, _history(hist_all[same]), freq) if len(pts) else (math.nan, "no exact figures")
        rows.append(_series_row(brand, model, freq, g, value, basis))
    for (_, freq), g in used.groupby(["_order", "frequency"], sort=True):
        rows.append(_series_row("(all)", None, freq, g, math.nan, "per series only"))
    rows.append(_series_row("(all)", None, "(all)", used, math.nan, "per series only"))
    return pd.DataFrame(rows, columns=list(SERIES_COLUMNS))


def _series_row(
    brand: str, model: str | None, freq: str, g: pd.DataFrame, mase_value: float, basis: str
) -> dict[str, Any]:
    pts = g[g["point"]]
    bias = float(np.average(pts["pct_error"], weights=pts["w"])) if len(pts) and pts["w"].sum() > 0 else math.nan
    cov = coverage(g["_low"], g["sim_p5"], g["sim_p95"], g["w"], actual_high=g["_high"])
    notes = []
    if freq == "monthly" and brand != "(all)":
        notes.append("MAPE tolerance: <10 high, 10-20 good")
    if freq == "annual":
        notes.append("tolerance: within 10%")
    notes.append("coverage tolerance: >= 0.80")
    return {
        "brand": brand, "model": model, "frequency": freq, "n": len(g),
        "periods": int(g[["brand", "model", "frequency", "start", "end"]].astype(str).drop_duplicates().shape[0]),
        "weight": float(g["w"].sum()), "mape": mape(pts["reported"], pts["sim_mean"], pts["w"]),
        "bias_pct": bias, "mase": mase_value, "mase_basis": basis, "coverage": cov,
        "n_band": int(g["inside_band"].notna().sum()), "note": "; ".join(notes),
    }  # fmt: skip

