"""Compare stored results with reported figures; the targets; two scenarios on the same seeds.

Analysis only: reads a results folder (``sim.runs.store.load_results``) and never re-runs the model.

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
    MAPE (:func:`mape`), MASE against a seasonal-naive forecast (:func:`mase`) and the coverage of
    the reported values by the 90% band (:func:`coverage`). The MASE scale is the mean absolute
    error of the seasonal-naive forecast (the value 12 months earlier: lag 12 for monthly figures,
    4 for quarterly, 1 for annual) on the reported series itself, all its reported periods
    included; with fewer than two such pairs it falls back to the naive forecast (the previous
    period) and says so in ``mase_basis``. Pairs are matched on dates, never on position, so gaps
    drop pairs instead of shifting them. MASE is not defined for cumulative figures.

Tolerances stated with every comparison (MISSION.md, validation standard): monthly MAPE under
10% is a high, 10-20% a good fit; annual brand totals within 10%; reported values inside the 90%
band at least 80% of the time (:data:`TOLERANCES`).

Targets
    Per target of the scenario: :func:`sim.analysis.targets.summarize` of :func:`sim.analysis.targets.target_outcomes`.

Two scenarios (:func:`compare_pair`)
    Paired differences ``B - A`` per replicate of the headline numbers when both folders were run
    with the same root seed (common random numbers), and the cannibalisation table of products new
    in B.

The metrics themselves are pure functions in :mod:`sim.analysis.metrics`; the text, JSON and CSV output and
the command line are in :mod:`sim.present.comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.metrics import BAND, _arrays, band_overlaps, coverage, mape, mase, naive_scale, paired_summary  # noqa: F401
from sim.analysis.reported import DEFAULT_PATH as REPORTED_DEFAULT_PATH
from sim.analysis.reported import ReportedFigures, load_reported
from sim.analysis.targets import summarize, target_outcomes
from sim.runs.store import Results, load_results
from sim.scenario.months import format_month, parse_month
from sim.scenario.yamlio import InputError

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
PAIRED_COLUMNS = (
    "metric", "a_mean", "b_mean", "mean_diff", "diff_p5", "diff_p95", "ci_low", "ci_high", "n",
    "paired", "note",
)  # fmt: skip
CANNIBAL_COLUMNS = ("model", "brand", "a_units", "b_units", "units_lost", "lost_p5", "lost_p95", "share_of_new")
WHAT = ("figures", "series", "targets", "paired", "cannibalisation")



# --------------------------------------------------------------------------- simulated units


@dataclass(frozen=True)
class UnitCube:
    """Simulated deliveries of the finished runs as one array (vehicles per month).

    Attributes:
        run_ids: run of each row of ``units``.
        replicates: replicate number of each run.
        first: month index (:func:`sim.scenario.months.parse_month`) of the first month.
        products, product_brand: product names and their brands.
        markets: market names.
        units: ``[run, product, month, market]`` deliveries; zero where nothing was recorded.
        first_delivery: month index of each product's first delivery in the scenario (from its
            ``delivery_start`` or ``launch``), when the manifest says.
    """

    run_ids: np.ndarray
    replicates: np.ndarray
    first: int
    products: tuple[str, ...]
    product_brand: tuple[str, ...]
    markets: tuple[str, ...]
    units: np.ndarray
    first_delivery: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_months(self) -> int:
        return int(self.units.shape[2])

    @property
    def last(self) -> int:
        return self.first + self.n_months - 1

    @property
    def period(self) -> str:
        return f"{format_month(self.first)}..{format_month(self.last)}"

    @property
    def brands(self) -> list[str]:
        return sorted(set(self.product_brand))

    def mask(self, brand: str | None = None, model: str | None = None) -> np.ndarray:
        """Products of ``brand`` (and named ``model`` when given)."""
        p = np.ones(len(self.products), bool)
        if brand is not None:
            p &= np.array([b == brand for b in self.product_brand], bool)
        if model is not None:
            p &= np.array([m == model for m in self.products], bool)
        return p

    def monthly(self, brand: str | None = None, model: str | None = None, market: str | None = None) -> np.ndarray:
        """Deliveries per run and month (``[run, month]``) of a brand or product; all markets when None."""
        u = self.units[:, self.mask(brand, model)]
        u = u.sum(axis=(1, 3)) if market is None else u[..., self.markets.index(market)].sum(axis=1)
        return u

    def window(self, values: np.ndarray, start: int, end: int) -> np.ndarray:
        """Sum of a ``[run, month]`` array over months ``start..end`` (month indices), per run."""
        return values[:, start - self.first : end - self.first + 1].sum(axis=1)


def unit_cube(results: Results) -> UnitCube:
    """Build the :class:`UnitCube` of a results folder's finished runs.

    Raises:
        InputError: when the folder has no finished run.
    """
    runs, sales = results.runs, results.sales
    if len(runs) and "status" in runs:
        ok = runs[runs["status"] == "ok"].sort_values("run_id")
        run_ids = ok["run_id"].to_numpy()
        reps = ok["replicate"].to_numpy() if "replicate" in ok else np.arange(len(ok))
    elif len(sales):
        first_rows = sales.drop_duplicates("run_id").sort_values("run_id")
        run_ids = first_rows["run_id"].to_numpy()
        reps = first_rows["replicate"].to_numpy() if "replicate" in first_rows else np.arange(len(run_ids))
    else:
        run_ids = reps = np.array([], dtype=np.int64)
    if run_ids.size == 0:
        raise InputError(f"{results.path}: no finished runs to compare")
    scen = results.manifest.get("scenario") or {}
    months = [parse_month(m) for m in ([scen["start"], scen["end"]] if scen.get("start") and scen.get("end") else [])]
    if len(sales):
        sales = sales[sales["run_id"].isin(run_ids)]
        months += [parse_month(m) for m in pd.unique(sales["month"].astype(str))]
    if not months:
        raise InputError(f"{results.path}: no months in the results")
    first, last = min(months), max(months)
    products = tuple(sorted(pd.unique(sales["model"].astype(str)))) if len(sales) else ()
    firsts = sales.drop_duplicates("model") if len(sales) else sales
    brand_of = dict(zip(firsts["model"].astype(str), firsts["brand"].astype(str), strict=True)) if len(sales) else {}
    markets = tuple(sorted(pd.unique(sales["market"].astype(str)))) if len(sales) else ()
    shape = (run_ids.size, len(products), last - first + 1, max(len(markets), 1))
    units = np.zeros(shape)
    if len(sales):
        r = pd.Index(run_ids).get_indexer(sales["run_id"])
        p = pd.Index(products).get_indexer(sales["model"].astype(str))
        month_idx = {m: parse_month(m) - first for m in pd.unique(sales["month"].astype(str))}
        t = sales["month"].astype(str).map(month_idx).to_numpy(dtype=np.int64)
        m = pd.Index(markets).get_indexer(sales["market"].astype(str))
        flat = ((r * shape[1] + p) * shape[2] + t) * shape[3] + m
        units = np.bincount(flat, weights=sales["units"].to_numpy(float), minlength=int(np.prod(shape))).reshape(shape)
    first_delivery = {}
    for prod in scen.get("products") or []:
        when = prod.get("delivery_start") or prod.get("launch")
        if prod.get("name") and when:
            first_delivery[str(prod["name"])] = parse_month(str(when))
    return UnitCube(
        run_ids=run_ids,
        replicates=np.asarray(reps),
        first=first,
        products=products,
        product_brand=tuple(str(brand_of[p]) for p in products),
        markets=markets,
        units=units,
        first_delivery=first_delivery,
    )


# --------------------------------------------------------------------------- figures


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
# the figures table keeps, hidden, the reported bounds and the filter's reason
_TABLE_COLUMNS = (*FIGURE_COLUMNS, "_low", "_high", "_reason")


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
    table = pd.DataFrame(rows, columns=list(_TABLE_COLUMNS))
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


# --------------------------------------------------------------------------- targets


def target_summary(
    sales: pd.DataFrame, target: Mapping[str, Any], period: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Probability of reaching one target, the month reached, deliveries and shortfall.

    Args:
        sales: sales table of the finished runs.
        target: ``name``, ``brand``, ``units``, ``start``, ``by`` (a scenario's target).
        period: first and last month of the results; a window outside it gets a note.

    Returns:
        ``name``, ``brand``, ``units``, ``start``, ``by``, ``reported_cumulative_at_start``
        and the keys of :func:`sim.analysis.targets.summarize` (``probability`` with its 95% Wilson
        interval ``probability_low``/``probability_high``, ``month_reached_p5``/``_median``/
        ``_p95`` (None: not reached by then), ``delivered_*``, ``shortfall_*``, ``runs``), and
        ``note``.
    """
    units = float(target["units"])
    outcomes = target_outcomes(sales, target["brand"], units, target["start"], target["by"])
    out: dict[str, Any] = {
        "name": target["name"], "brand": target["brand"], "units": units, "start": target["start"],
        "by": target["by"], "reported_cumulative_at_start": target.get("reported_cumulative_at_start"),
    }  # fmt: skip
    out.update(summarize(outcomes, units))
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
    return [target_summary(sales, t, period) for t in (results.manifest.get("scenario") or {}).get("targets") or []]


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


def _as_results(results: Results | str | Path) -> Results:
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
        figures_filter: why a figure is left out of the metrics (:func:`default_figures`, or
            :func:`all_figures` to use them all).

    Returns:
        The figures table (:func:`figure_table`), series metrics (:func:`series_metrics`) and
        targets (:func:`target_table`).
    """
    res = _as_results(results)
    cube = unit_cube(res)
    if reported is None and not REPORTED_DEFAULT_PATH.is_file():
        figs = pd.DataFrame()
    else:
        figs = _as_figures(reported)
    table = figure_table(figs, cube, figures_filter) if len(figs) else pd.DataFrame(columns=list(_TABLE_COLUMNS))
    return Comparison(
        path=res.path,
        scenario_name=str(res.manifest.get("scenario_name", "")),
        runs=int(cube.run_ids.size),
        period=cube.period,
        figures=table,
        series=series_metrics(table),
        targets=target_table(res, cube),
    )


# --------------------------------------------------------------------------- two folders


@dataclass
class PairComparison:
    """Scenario B against scenario A: paired differences and cannibalisation."""

    paired: pd.DataFrame
    cannibalisation: pd.DataFrame
    cannibalisation_summary: dict[str, Any]
    is_paired: bool
    replicates: int
    note: str = ""


def _pairing(a: Results, b: Results, ca: UnitCube, cb: UnitCube, unpaired: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """Rows of each cube to pair (same replicate), or all rows when unpaired; refuses bad pairs."""
    if unpaired:
        return np.arange(ca.run_ids.size), np.arange(cb.run_ids.size), "unpaired: differences of independent runs"
    sa, sb = a.manifest.get("seed"), b.manifest.get("seed")
    hint = "; pass --unpaired to compare them as independent samples"
    if sa is None or sb is None or sa != sb:
        raise InputError(f"{a.path} and {b.path} were not run on the same seed ({sa} and {sb}){hint}")
    for c, r in ((ca, a), (cb, b)):
        if len(set(c.replicates.tolist())) != c.replicates.size:
            raise InputError(f"{r.path}: several runs per replicate number (a sweep?); cannot pair{hint}")
    reps_a = set(a.runs["replicate"].tolist()) if "replicate" in a.runs else set(ca.replicates.tolist())
    reps_b = set(b.runs["replicate"].tolist()) if "replicate" in b.runs else set(cb.replicates.tolist())
    if reps_a != reps_b:
        raise InputError(
            f"{a.path} and {b.path} hold different replicate numbers ({len(reps_a)} and {len(reps_b)} runs){hint}"
        )
    common = sorted(set(ca.replicates.tolist()) & set(cb.replicates.tolist()))
    if not common:
        raise InputError(f"{a.path} and {b.path}: no replicate finished in both{hint}")
    for col in ("seed_entropy", "spawn_key"):
        if col in a.runs and col in b.runs:
            ka = a.runs.set_index("replicate")[col].astype(str)
            kb = b.runs.set_index("replicate")[col].astype(str)
            if not (ka.loc[common] == kb.loc[common]).all():
                raise InputError(f"{a.path} and {b.path}: replicates ran on different random streams ({col}){hint}")
    ia = pd.Index(ca.replicates).get_indexer(common)
    ib = pd.Index(cb.replicates).get_indexer(common)
    dropped = len(reps_a) - len(common)
    note = f"paired on {len(common)} replicate(s), seed {sa}" + (
        f"; {dropped} replicate(s) failed in A or B, left out" if dropped else ""
    )
    return ia, ib, note


def _outcomes_by_row(res: Results, cube: UnitCube, target: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Window deliveries and reached (1/0) of one target per run, in the cube's order."""
    sales = res.sales[res.sales["run_id"].isin(cube.run_ids)] if len(res.sales) else res.sales
    oc = target_outcomes(sales, target["brand"], float(target["units"]), target["start"], target["by"]).set_index(
        "run_id"
    )
    delivered = oc["delivered"].astype(float).reindex(cube.run_ids, fill_value=0.0).to_numpy(float)
    reached = oc["reached"].astype(float).reindex(cube.run_ids, fill_value=0.0).to_numpy(float)
    return delivered, reached


def headline_numbers(
    res: Results, cube: UnitCube, years: Iterable[int], brands: Iterable[str], targets: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Headline numbers per run (in cube order): deliveries per brand and year, and per target.

    Returns:
        ``"<brand> deliveries <year>"`` (vehicles, all markets), ``"<target> window deliveries"``
        and ``"<target> reached"`` (1 or 0) mapped to one value per run.
    """
    out: dict[str, np.ndarray] = {}
    for brand in brands:
        monthly = cube.monthly(brand)
        for y in years:
            lo, hi = max(y * 12, cube.first), min(y * 12 + 11, cube.last)
            out[f"{brand} deliveries {y}"] = cube.window(monthly, lo, hi) if lo <= hi else np.zeros(cube.run_ids.size)
    for t in targets:
        out[f"{t['name']}: window deliveries"], out[f"{t['name']}: reached"] = _outcomes_by_row(res, cube, t)
    return out


def compare_pair(a: Results | str | Path, b: Results | str | Path, *, unpaired: bool = False) -> PairComparison:
    """Scenario B against scenario A, replicate by replicate.

    Args:
        a: the reference results (scenario A).
        b: the alternative (scenario B), run with the same root seed so that replicate ``r`` of
            both draws the same random numbers.
        unpaired: compare as independent samples instead of refusing folders not run on the
            same seeds.

    Returns:
        ``paired``: per headline number (the brands of the targets and AITO, deliveries per
        calendar year of the results; per target, window deliveries and reached 1/0), the means,
        mean difference ``B - A``, 90% interval of the differences and 95% CI of the mean
        (:func:`paired_summary`). ``cannibalisation``: see :func:`cannibalisation`.

    Raises:
        InputError: when the folders were not run on the same seed and replicates, unless
            ``unpaired``.
    """
    ra, rb = _as_results(a), _as_results(b)
    ca, cb = unit_cube(ra), unit_cube(rb)
    ia, ib, note = _pairing(ra, rb, ca, cb, unpaired)
    targets = {t["name"]: t for t in (rb.manifest.get("scenario") or {}).get("targets") or []}
    targets.update({t["name"]: t for t in (ra.manifest.get("scenario") or {}).get("targets") or []})
    brands = ["AITO"] + sorted({t["brand"] for t in targets.values()} - {"AITO"})
    brands = [x for x in brands if x in ca.brands or x in cb.brands]
    lo, hi = max(ca.first, cb.first), min(ca.last, cb.last)
    years = range(lo // 12, hi // 12 + 1)
    na = headline_numbers(ra, ca, years, brands, list(targets.values()))
    nb = headline_numbers(rb, cb, years, brands, list(targets.values()))
    rows = []
    for key in na:
        s = paired_summary(na[key][ia], nb[key][ib], paired=not unpaired)
        row_note = ""
        y = key.rsplit(" ", 1)[-1]
        if "deliveries" in key and y.isdigit():
            first, last = max(int(y) * 12, lo), min(int(y) * 12 + 11, hi)
            if (first, last) != (int(y) * 12, int(y) * 12 + 11):
                row_note = f"months {format_month(first)}..{format_month(last)} only"
        rows.append({"metric": key, **s, "paired": not unpaired, "note": row_note})
    paired = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))
    table, summary = cannibalisation(ca, cb, ia, ib, paired=not unpaired)
    return PairComparison(paired, table, summary, not unpaired, int(min(ia.size, ib.size)), note)


def cannibalisation(
    ca: UnitCube, cb: UnitCube, ia: np.ndarray, ib: np.ndarray, *, paired: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Where the buyers of B's new products came from.

    New products are those in B's results and not in A's. Over the window of their deliveries
    in B (first to last month any run delivers one, within the months of both results), every
    other product's mean deliveries in A minus in B are the units it lost (positive = lost).

    Args:
        ca, cb: simulated deliveries of A and B.
        ia, ib: rows of each cube to use (paired replicates in the same order when ``paired``).
        paired: whether ``ia[i]`` and ``ib[i]`` share random numbers (gives the 90% interval
            ``lost_p5``/``lost_p95`` of the per-replicate losses; NaN otherwise).

    Returns:
        The products table (:data:`CANNIBAL_COLUMNS`, sorted by units lost, ``share_of_new`` =
        units lost / new units) and a summary: ``new_products``, ``window_start``, ``window_end``,
        ``new_units`` (mean deliveries of the new products in the window), ``units_lost_total``,
        ``outside_option`` (new units minus the units lost by others: buyers who would not have
        bought at all in A) and ``outside_option_share``.
    """
    new = [p for p in cb.products if p not in ca.products]
    summary: dict[str, Any] = {"new_products": new, "window_start": None, "window_end": None, "new_units": 0.0,
                               "units_lost_total": 0.0, "outside_option": 0.0, "outside_option_share": math.nan}  # fmt: skip
    empty = pd.DataFrame(columns=list(CANNIBAL_COLUMNS))
    lo, hi = max(ca.first, cb.first), min(ca.last, cb.last)
    if not new or lo > hi:
        summary["note"] = "no new products in B" if not new else "the results share no month"
        return empty, summary
    new_mask = np.isin(np.array(cb.products), new)
    new_monthly = cb.units[ib][:, new_mask].sum(axis=(1, 3))  # run x month
    active = np.flatnonzero(new_monthly.sum(axis=0) > 0) + cb.first
    active = active[(active >= lo) & (active <= hi)]
    if active.size == 0:
        summary["note"] = "the new products deliver nothing in the months of both results"
        return empty, summary
    w0, w1 = int(active.min()), int(active.max())
    new_units = float(cb.window(new_monthly, w0, w1).mean())
    rows = []
    for name in sorted((set(ca.products) | set(cb.products)) - set(new)):
        ua = ca.window(ca.monthly(model=name)[ia], w0, w1) if name in ca.products else np.zeros(ia.size)
        ub = cb.window(cb.monthly(model=name)[ib], w0, w1) if name in cb.products else np.zeros(ib.size)
        lost = float(ua.mean() - ub.mean())
        band = np.quantile(ua - ub, BAND) if paired and ua.size else (math.nan, math.nan)
        brand = (
            ca.product_brand[ca.products.index(name)]
            if name in ca.products
            else cb.product_brand[cb.products.index(name)]
        )
        rows.append({"model": name, "brand": brand, "a_units": float(ua.mean()), "b_units": float(ub.mean()),
                     "units_lost": lost, "lost_p5": float(band[0]), "lost_p95": float(band[1]),
                     "share_of_new": lost / new_units if new_units else math.nan})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(CANNIBAL_COLUMNS))
    table = table.sort_values(["units_lost", "model"], ascending=[False, True], kind="stable").reset_index(drop=True)
    lost_total = float(table["units_lost"].sum())
    summary.update({
        "window_start": format_month(w0), "window_end": format_month(w1), "new_units": new_units,
        "units_lost_total": lost_total, "outside_option": new_units - lost_total,
        "outside_option_share": (new_units - lost_total) / new_units if new_units else math.nan,
    })  # fmt: skip
    return table, summary
