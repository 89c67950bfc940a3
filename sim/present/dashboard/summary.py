"""What the dashboard shows, computed from two batches run on the same seeds: pure pandas/numpy.

Everything here reads :class:`sim.runs.store.Results` (in memory or loaded from a folder) and reuses
:mod:`sim.analysis.compare` for the target (:func:`sim.analysis.compare.target_table`), the paired differences
(:func:`sim.analysis.pair_comparison.compare_pair`) and the reported figures set against the simulation
(:func:`sim.analysis.figure_comparison.figure_table`, the table :func:`sim.analysis.compare.compare` starts from; the series
metrics are left out, as they take seconds and the page does not show them). Nothing re-runs the model.

The fan chart counts deliveries as the target does: the reported cumulative at the window's start
(``reported_cumulative_at_start``, 1,000,000 for AITO in January 2026) plus the simulated
deliveries from the window's first month, so that its line at ``anchor + units`` (2,000,000) is
the target itself. The simulated cumulative since launch is given too (``history``): at the
window's start its gap to the anchor is the model's error on the history, which the target
counting leaves out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.compare import read_reported, target_table
from sim.analysis.figure_comparison import figure_table
from sim.analysis.pair_comparison import compare_pair
from sim.analysis.reported import DEFAULT_PATH as REPORTED_DEFAULT_PATH
from sim.analysis.reported import ReportedFigures
from sim.analysis.unit_cube import UnitCube, unit_cube
from sim.runs.store import Results
from sim.scenario.months import format_month, parse_month

#: Quantiles of the fan chart (columns ``q05`` ... ``q95``).
QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
QUANTILE_COLUMNS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


@dataclass
class Summary:
    """The page's numbers for a scenario against its baseline.

    Attributes:
        scenario_name, baseline_name: the two scenarios.
        replicates, scale, seed: the sampling of both batches.
        target: the scenario's first target (``name``, ``brand``, ``units``, ``start``, ``by``,
            ``reported_cumulative_at_start``), or None.
        anchor: reported cumulative deliveries at the window's start (0 when not given).
        targets: :func:`sim.analysis.compare.target_summary` of the target for ``scenario`` and ``baseline``.
        paired: :func:`sim.analysis.pair_comparison.compare_pair` of baseline (A) and scenario (B): its
            ``paired`` table; ``pair_note`` says on how many replicates.
        reached_diff, delivered_diff: the paired rows of the target (``reached`` 1/0 and window
            deliveries): ``mean_diff``, ``ci_low``/``ci_high`` (95% CI of the mean),
            ``diff_p5``/``diff_p95``.
        fan: per role (``scenario``, ``baseline``) and month, from the month before the window
            (at ``anchor``) to its last, quantiles over replicates of ``anchor`` + cumulative
            window deliveries (``q05`` ... ``q95``) and their mean.
        history: per role and month, quantiles of the brand's cumulative deliveries since the
            results' first month.
        window: per role, the window deliveries of each replicate.
        reported_cumulative: the brand's reported cumulative figures counted since launch, with
            the simulated mean and band over the same months (:func:`sim.analysis.figure_comparison.figure_table`
            rows).
        monthly: mean deliveries per role, month and brand (all markets), vehicles.
        reported_monthly: reported monthly volume figures per brand (``month``, ``brand``,
            ``reported``, ``measure``, ``used``).
        segments: per price segment over the window: each role's share of deliveries and the
            brand's share of the segment (means over replicates), and the differences.
        failed: error texts of failed runs (scenario or baseline).
    """

    scenario_name: str
    baseline_name: str
    replicates: int
    scale: float
    seed: int
    target: dict[str, Any] | None
    anchor: float
    targets: dict[str, dict[str, Any]]
    paired: pd.DataFrame
    pair_note: str
    reached_diff: dict[str, float]
    delivered_diff: dict[str, float]
    fan: pd.DataFrame
    history: pd.DataFrame
    window: dict[str, np.ndarray]
    reported_cumulative: pd.DataFrame
    monthly: pd.DataFrame
    reported_monthly: pd.DataFrame
    segments: pd.DataFrame
    failed: list[str] = field(default_factory=list)

    @property
    def brand(self) -> str:
        return str(self.target["brand"]) if self.target else "AITO"


def _quantile_frame(values: np.ndarray, months: list[str], role: str) -> pd.DataFrame:
    """Quantiles over runs (rows) of a ``[run, month]`` array, one row per month."""
    qs = np.quantile(values, QUANTILES, axis=0) if values.size else np.full((len(QUANTILES), len(months)), np.nan)
    df = pd.DataFrame({"role": role, "month": months, "mean": values.mean(axis=0) if values.size else np.nan})
    for col, row in zip(QUANTILE_COLUMNS, qs, strict=True):
        df[col] = row
    return df


def cumulative_fan(cube: UnitCube, brand: str, start: str, by: str, anchor: float, role: str) -> pd.DataFrame:
    """Quantiles over replicates of ``anchor`` + the brand's cumulative deliveries from ``start``, per month to ``by``.

    The first row is the month before ``start``, at ``anchor``. Months outside the results
    count as zero deliveries (as :func:`sim.analysis.targets.target_outcomes`).
    """
    lo, hi = parse_month(start), parse_month(by)
    monthly = cube.monthly(brand) if brand in cube.brands else np.zeros((cube.run_ids.size, cube.n_months))
    values = np.zeros((cube.run_ids.size, hi - lo + 1))
    for t in range(lo, hi + 1):
        if cube.first <= t <= cube.last:
            values[:, t - lo] = monthly[:, t - cube.first]
    # the month before the window holds the anchor, so that the fan starts from the reported figure
    cum = np.concatenate([np.full((values.shape[0], 1), anchor), anchor + np.cumsum(values, axis=1)], axis=1)
    return _quantile_frame(cum, [format_month(t) for t in range(lo - 1, hi + 1)], role)


def history_fan(cube: UnitCube, brand: str, role: str) -> pd.DataFrame:
    """Quantiles over replicates of the brand's cumulative deliveries since the results' first month."""
    monthly = cube.monthly(brand) if brand in cube.brands else np.zeros((cube.run_ids.size, cube.n_months))
    months = [format_month(t) for t in range(cube.first, cube.last + 1)]
    return _quantile_frame(np.cumsum(monthly, axis=1), months, role)


def monthly_by_brand(cube: UnitCube, role: str) -> pd.DataFrame:
    """Mean deliveries per month and brand over replicates (all markets): ``role, month, brand, units``."""
    months = [format_month(t) for t in range(cube.first, cube.last + 1)]
    frames = [
        pd.DataFrame({"role": role, "month": months, "brand": b, "units": cube.monthly(b).mean(axis=0)})
        for b in cube.brands
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["role", "month", "brand", "units"])


def segment_shares(sales: pd.DataFrame, brand: str, start: str, by: str) -> pd.DataFrame:
    """Per price segment, over months ``start..by``: its share of deliveries and the brand's share of it.

    Shares are computed per run, then averaged over runs. Returns ``segment``, ``share``
    (of all deliveries in the window, 0..1) and ``brand_share`` (of the segment's deliveries;
    NaN where the segment delivered nothing).
    """
    cols = ["segment", "share", "brand_share"]
    if sales.empty:
        return pd.DataFrame(columns=cols)
    months = sales["month"].astype(str)
    sel = sales[(months >= start) & (months <= by)]
    if sel.empty:
        return pd.DataFrame(columns=cols)
    seg = sel.groupby(["run_id", "segment"], observed=True)["units"].sum().unstack(fill_value=0).astype(float)
    own = sel[sel["brand"] == brand].groupby(["run_id", "segment"], observed=True)["units"].sum()
    own = own.unstack(fill_value=0).reindex(index=seg.index, columns=seg.columns, fill_value=0).astype(float)
    total = seg.sum(axis=1)
    share = seg.div(total.where(total > 0), axis=0).mean(axis=0)
    brand_share = own.div(seg.where(seg > 0)).mean(axis=0)
    return pd.DataFrame(
        {"segment": seg.columns.astype(str), "share": share.to_numpy(), "brand_share": brand_share.to_numpy()}
    )


def _segment_table(
    scenario: Results, baseline: Results, brand: str, start: str, by: str, order: list[str]
) -> pd.DataFrame:
    a = segment_shares(_ok_sales(baseline), brand, start, by).set_index("segment")
    b = segment_shares(_ok_sales(scenario), brand, start, by).set_index("segment")
    names = [s for s in order if s in a.index or s in b.index] + sorted((set(a.index) | set(b.index)) - set(order))
    out = pd.DataFrame({"segment": names})
    out["baseline_share"] = a["share"].reindex(names).fillna(0.0).to_numpy()
    out["scenario_share"] = b["share"].reindex(names).fillna(0.0).to_numpy()
    out["share_diff"] = out["scenario_share"] - out["baseline_share"]
    out["baseline_brand_share"] = a["brand_share"].reindex(names).to_numpy()
    out["scenario_brand_share"] = b["brand_share"].reindex(names).to_numpy()
    return out


def _ok_sales(res: Results) -> pd.DataFrame:
    if res.sales.empty or res.runs.empty or "status" not in res.runs:
        return res.sales
    ok = res.runs.loc[res.runs["status"] == "ok", "run_id"]
    return res.sales[res.sales["run_id"].isin(ok)]


def _failures(res: Results) -> list[str]:
    if res.runs.empty or "status" not in res.runs:
        return []
    bad = res.runs[res.runs["status"] != "ok"]
    return [f"{res.manifest.get('scenario_name')} replicate {r['replicate']}: {r['error']}" for _, r in bad.iterrows()]


def _paired_row(paired: pd.DataFrame, metric: str) -> dict[str, float]:
    rows = paired[paired["metric"] == metric]
    if rows.empty:
        return {k: math.nan for k in ("a_mean", "b_mean", "mean_diff", "ci_low", "ci_high", "diff_p5", "diff_p95")}
    r = rows.iloc[0]
    return {k: float(r[k]) for k in ("a_mean", "b_mean", "mean_diff", "ci_low", "ci_high", "diff_p5", "diff_p95")}


def _reported_cumulative(figures: pd.DataFrame, cube: UnitCube, brand: str) -> pd.DataFrame:
    """The brand's cumulative and milestone figures that count from its first delivery."""
    cols = ["month", "reported", "qualifier", "measure", "sim_mean", "sim_p5", "sim_p95", "source", "note"]
    if figures.empty:
        return pd.DataFrame(columns=cols)
    firsts = [
        m
        for p, m in cube.first_delivery.items()
        if p in cube.products and cube.product_brand[cube.products.index(p)] == brand
    ]
    if not firsts:
        return pd.DataFrame(columns=cols)
    since = format_month(min(firsts))
    rows = figures[
        (figures["brand"] == brand)
        & figures["model"].isna()
        & figures["frequency"].isin(["cumulative", "point"])
        & (figures["start"].astype(str) <= since)
    ]
    return rows.rename(columns={"end": "month"})[cols].reset_index(drop=True)


def _reported_monthly(figures: pd.DataFrame) -> pd.DataFrame:
    cols = ["month", "brand", "reported", "measure", "used"]
    if figures.empty:
        return pd.DataFrame(columns=cols)
    rows = figures[(figures["frequency"] == "monthly") & figures["model"].isna()]
    return rows.rename(columns={"start": "month"})[cols].reset_index(drop=True)


_REPORTED: dict[str, pd.DataFrame] = {}


def reported_figures(reported: ReportedFigures | pd.DataFrame | None) -> pd.DataFrame:
    """The reported figures table; None reads the project's file once (empty if it is absent)."""
    if isinstance(reported, pd.DataFrame):
        return reported
    if isinstance(reported, ReportedFigures):
        return reported.figures
    if "default" not in _REPORTED:
        _REPORTED["default"] = read_reported().figures if REPORTED_DEFAULT_PATH.is_file() else pd.DataFrame()
    return _REPORTED["default"]


def summarize_pair(
    scenario: Results, baseline: Results, reported: ReportedFigures | pd.DataFrame | None = None
) -> Summary:
    """The dashboard's numbers for ``scenario`` against ``baseline`` (same seed and replicates).

    Args:
        scenario, baseline: finished batches (in memory or loaded), run on the same root seed.
        reported: reported figures (loaded, or their ``figures`` table); None for the project's
            ``scenarios/reported/figures.csv`` (none if it is absent).

    Raises:
        InputError: when a batch has no finished run or the two cannot be paired.
    """
    cube_s, cube_b = unit_cube(scenario), unit_cube(baseline)
    figures = reported_figures(reported)
    table = figure_table(figures, cube_s) if len(figures) else pd.DataFrame()
    targets_s = {t["name"]: t for t in target_table(scenario, cube_s)}
    targets_b = {t["name"]: t for t in target_table(baseline, cube_b)}
    scen_targets = (scenario.manifest.get("scenario") or {}).get("targets") or []
    target = dict(scen_targets[0]) if scen_targets else None
    pair = compare_pair(baseline, scenario)
    brand = str(target["brand"]) if target else "AITO"
    anchor = float(target.get("reported_cumulative_at_start") or 0.0) if target else 0.0
    scen = scenario.manifest.get("scenario") or {}
    window = (
        (target["start"], target["by"])
        if target
        else (scen.get("forecast_start") or scen.get("start"), scen.get("end"))
    )
    fans, windows = [], {}
    for role, cube in (("scenario", cube_s), ("baseline", cube_b)):
        if target:
            fan = cumulative_fan(cube, brand, target["start"], target["by"], anchor, role)
            fans.append(fan)
            windows[role] = fan_last_values(cube, brand, target["start"], target["by"])
    segment_order = [s["name"] for s in scen.get("segments") or []]
    return Summary(
        scenario_name=str(scenario.manifest.get("scenario_name", "")),
        baseline_name=str(baseline.manifest.get("scenario_name", "")),
        replicates=int(cube_s.run_ids.size),
        scale=float(scenario.manifest.get("scale") or math.nan),
        seed=int(scenario.manifest.get("seed") or 0),
        target=target,
        anchor=anchor,
        targets={
            "scenario": targets_s.get(target["name"], {}) if target else {},
            "baseline": targets_b.get(target["name"], {}) if target else {},
        },
        paired=pair.paired,
        pair_note=pair.note,
        reached_diff=_paired_row(pair.paired, f"{target['name']}: reached") if target else {},
        delivered_diff=_paired_row(pair.paired, f"{target['name']}: window deliveries") if target else {},
        fan=pd.concat(fans, ignore_index=True) if fans else pd.DataFrame(),
        history=pd.concat(
            [history_fan(cube_s, brand, "scenario"), history_fan(cube_b, brand, "baseline")], ignore_index=True
        ),
        window=windows,
        reported_cumulative=_reported_cumulative(table, cube_s, brand),
        monthly=pd.concat(
            [monthly_by_brand(cube_s, "scenario"), monthly_by_brand(cube_b, "baseline")], ignore_index=True
        ),
        reported_monthly=_reported_monthly(table),
        segments=_segment_table(scenario, baseline, brand, str(window[0]), str(window[1]), segment_order),
        failed=_failures(scenario) + (_failures(baseline) if baseline is not scenario else []),
    )


def fan_last_values(cube: UnitCube, brand: str, start: str, by: str) -> np.ndarray:
    """Each replicate's deliveries of ``brand`` in ``start..by`` (months outside the results count zero)."""
    lo, hi = max(parse_month(start), cube.first), min(parse_month(by), cube.last)
    if brand not in cube.brands or lo > hi:
        return np.zeros(cube.run_ids.size)
    return cube.window(cube.monthly(brand), lo, hi)


def top_brands(summary: Summary, n: int = 6) -> list[str]:
    """The ``n`` brands with the most scenario deliveries in the window, the target's brand first."""
    m = summary.monthly
    if m.empty:
        return []
    lo, hi = (summary.target["start"], summary.target["by"]) if summary.target else (m["month"].min(), m["month"].max())
    sel = m[(m["role"] == "scenario") & (m["month"] >= lo) & (m["month"] <= hi)]
    order = sel.groupby("brand")["units"].sum().sort_values(ascending=False).index.tolist()
    first = [summary.brand] if summary.brand in order else []
    return (first + [b for b in order if b != summary.brand])[:n]
