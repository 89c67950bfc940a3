"""Pattern checks: does a stored batch show the market patterns of MISSION.md?

Each check reads a results folder's sales table (means over runs) and the scenario, and passes or
fails with the figure it rests on (:class:`Check`; None when it cannot be computed):

- **New Year trough, December peak**: in every full year, the market's deliveries in the
  month holding the Lunar New Year are among its two lowest months, and December among its
  two highest;
- **pull-forward before the 2026 tax change, dip after**: NEV orders Dec 2025 / Nov 2025 above
  the same ratio a year before, and Jan 2026 / Dec 2025 below it (a seasonal control);
- **dip before a refresh**: a product's orders in an announced refresh window below its
  orders in the three months before; **spike after a launch, with backlog**: orders above
  deliveries in a launch's first three months of orders;
- **legacy luxury declining, domestic premium growing**: deliveries of foreign dealer-stock
  brands fall, and of domestic brands rise, from the first to the last full year;
- **capacity-bound launches with long waits**: the longest expected wait in a launch's first
  six months of deliveries;
- **discount dispersion**: the units-weighted discount (1 - transaction / list price) of the
  foreign dealer-stock brands exceeds that of the others by at least 10 points;
- the brief's own, each a reported figure (``scenarios/reported/figures.csv``): **the AITO M9 at
  about 70% of the >RMB 500k segment** in Jan 2026; **the M8 first in the RMB 400-500k segment for
  six consecutive months** (Jul-Dec 2025); **a record AITO month of over 57,000 deliveries** in
  Dec 2025. Segments are the sales table's, by transaction price across each product's trims.

``sim validate-model`` (:mod:`sim.analysis.validate_model`) runs them all (:func:`pattern_checks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario

#: A legacy brand's discount must exceed the others' by this much (share of list price).
DISCOUNT_GAP = 0.10
#: A launch's wait counts as long from this many months.
LONG_WAIT_MONTHS = 1.0

#: Products counted as one model line, as the reported figures count them (a line's BEV is a version of it).
LINES = {"AITO M9 EV": "AITO M9", "AITO M8 EV": "AITO M8", "AITO M5 EV": "AITO M5"}
#: data: 2026-01 "AITO M9 share of >RMB 500k segment" 70% (thesinoreport.com, medium; Yu Chengdong at the
#: 1,000,000th car: 7 of every 10 cars sold in China's >RMB 500k NEV market are M9s).
M9_SHARE, M9_MONTH, M9_FLOOR = 0.70, "2026-01", 500_000.0
#: Pass band around the M9's share, points: the figure is a rounded "7 in 10" (+-5 points) for the NEV
#: market by the makers' price classes, where the model's segment is by transaction price after the
#: brand's discount and holds the imported ICE luxury lines too, and one month of a coarse batch has a
#: few points of sampling noise.
M9_TOLERANCE = 0.15
#: data: 2026-01 "AITO M8 rank in RMB 400k segment (six consecutive months up to the article, Jan 2026)" #1
#: (thesinoreport.com, low): the six months before the article's; 2025-05 #1 too (ichongqing.info, medium).
M8_MONTHS, M8_FLOOR = ("2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12"), 400_000.0
#: data: 2025-12 "AITO monthly deliveries (record month)" ">57,000" (thesinoreport.com, medium).
AITO_RECORD, AITO_RECORD_MONTH = 57_000.0, "2025-12"


@dataclass
class Check:
    """One pattern: passed or not (None: could not be computed), with its figure."""

    pattern: str
    passed: bool | None
    figure: str
    detail: list[str]

    def __post_init__(self) -> None:
        self.passed = None if self.passed is None else bool(self.passed)  # not numpy's bool

    def as_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "passed": None if self.passed is None else bool(self.passed), "figure": self.figure,
                "detail": self.detail}


# -------------------------------------------------------------------- tables


def monthly(sales: pd.DataFrame, by: list[str], value: str = "units") -> pd.DataFrame:
    """Mean over runs of ``value`` summed by ``by`` + month (every run counted, zero where absent)."""
    runs = sales["run_id"].nunique()
    total = sales.groupby([*by, "month"], observed=True)[value].sum()
    return (total / max(runs, 1)).reset_index()


def _series(df: pd.DataFrame, value: str = "units") -> pd.Series:
    s = df.groupby("month")[value].sum()
    s.index = [parse_month(m) for m in s.index]
    return s.sort_index()


def _full_years(series: pd.Series) -> list[int]:
    years = sorted({m // 12 for m in series.index})
    return [y for y in years if all((12 * y + k) in series.index for k in range(12))]


# -------------------------------------------------------------------- patterns


def _trough_month(lny: str, window_days: int) -> int:
    """The month index holding most days of the Lunar New Year window (from 3 days before the date)."""
    import datetime as dt

    first = dt.date.fromisoformat(lny) - dt.timedelta(days=3)
    days = [first + dt.timedelta(days=k) for k in range(window_days)]
    counts: dict[int, int] = {}
    for d in days:
        key = 12 * d.year + d.month - 1
        counts[key] = counts.get(key, 0) + 1
    return max(counts, key=lambda k: (counts[k], -k))


def check_seasonality(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    name = "New Year trough and December peak"
    cn = sales[sales["market"] == sc.markets[0].name]
    s = _series(monthly(cn, []))
    season = sc.markets[0].seasonality
    detail, ok = [], True
    for y in _full_years(s):
        if str(y) not in season.lunar_new_year:
            continue
        m = _trough_month(season.lunar_new_year[str(y)], season.lunar_new_year_window_days)
        if m - 1 not in s.index or m + 1 not in s.index:
            continue
        around = (s[m - 1] + s[m + 1]) / 2
        year = s[[12 * y + k for k in range(12)]]
        trough, peak = bool(s[m] < around), bool(year.idxmax() == 12 * y + 11)
        ok &= trough and peak
        detail.append(f"{y}: {format_month(m)} (Lunar New Year) at {s[m] / around:.2f} of its neighbours' mean; "
                      f"December at {year.iloc[11] / year.mean():.2f} of the year's mean, "
                      f"{'the highest month' if peak else 'below ' + format_month(int(year.idxmax()))}"
                      + ("" if trough and peak else " FAIL"))
    if not detail:
        return Check(name, None, "no full year with a Lunar New Year date", [])
    good = sum("FAIL" not in d for d in detail)
    return Check(name, ok, f"{good} of {len(detail)} years: the Lunar New Year month below its neighbours and December the highest month",
                 detail + ["the monthly multipliers and the holiday depth are inputs (markets[].seasonality): this checks that "
                           "they survive capacity limits and buyers' deferral in the deliveries"])


def check_tax_pull_forward(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None,
                           change: str = "2026-01") -> Check:
    """NEV orders around a tax change: against a counterfactual run on the same seeds if given
    (``control``: e.g. no_tax_change), else against the same months a year before."""
    name = f"pull-forward before the {change[:4]} tax change, dip after"
    c = parse_month(change)

    def nev_orders(df: pd.DataFrame) -> pd.Series:
        return _series(monthly(df[(df["market"] == sc.markets[0].name) & (df["powertrain"] != "ICE")], [], "orders"), "orders")

    s = nev_orders(sales)
    if control is not None:
        k = nev_orders(control)
        if not all(m in s.index and m in k.index for m in (c - 1, c)):
            return Check(name, None, f"the results do not cover {format_month(c - 1)}..{change}", [])
        pull, dip = s[c - 1] / k[c - 1], s[c] / k[c]
        return Check(name, bool(pull > 1 and dip < 1),
                     f"NEV orders against the counterfactual: {format_month(c - 1)} {pull - 1:+.1%}, {change} {dip - 1:+.1%}",
                     ["counterfactual: the scenario without the change, run on the same seeds (paired)"])
    need = [c - 14, c - 13, c - 2, c - 1, c - 12, c]
    if not all(m in s.index for m in need):
        return Check(name, None, f"the results do not cover {format_month(c - 14)}..{change}", [])
    pull_now, pull_before = s[c - 1] / s[c - 2], s[c - 13] / s[c - 14]
    dip_now, dip_before = s[c] / s[c - 1], s[c - 12] / s[c - 13]
    passed = bool(pull_now > pull_before and dip_now < dip_before)
    return Check(name, passed,
                 f"NEV orders Dec/Nov {pull_now:.2f} (a year before {pull_before:.2f}); Jan/Dec {dip_now:.2f} (a year before {dip_before:.2f})",
                 ["seasonal control: the same months a year earlier (give --counterfactual for a paired comparison); the "
                  "Lunar New Year falls in Jan 2025 but Feb 2026, which lowers the earlier Jan/Dec ratio"])


def check_refresh_dip(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    per = monthly(sales, ["model"], "orders")
    months = set(per["month"])
    detail, dips = [], 0
    for ev in sc.events:
        if ev.type != "refresh" or not ev.announce_months or ev.product is None:
            continue
        r, a = parse_month(ev.month), ev.announce_months
        window = [format_month(m) for m in range(r - a, r)]
        before = [format_month(m) for m in range(r - a - 3, r - a)]
        if not set(window + before) <= months:
            continue
        g = per[per["model"] == ev.product].set_index("month")["orders"]
        if not set(before) <= set(g.index) or g.reindex(before).fillna(0).mean() <= 0:
            continue
        ratio = g.reindex(window).fillna(0).mean() / g.reindex(before).fillna(0).mean()
        dips += ratio < 1
        detail.append(f"{ev.product} refresh {ev.month} (announced {a} month(s) ahead): orders at {ratio:.2f} of the 3 months before")
    if not detail:
        return Check("dip before a refresh", None, "no announced refresh inside the results", [])
    return Check("dip before a refresh", dips * 2 > len(detail), f"{dips} of {len(detail)} refreshes dip", detail)


def _launches(sc: Scenario, first: int, last: int) -> list[tuple[str, int, int]]:
    """(product, launch month, delivery start) of products launched inside the results' months."""
    out = []
    for p in sc.products:
        lo = parse_month(p.launch)
        ds = parse_month(p.delivery_start or p.launch)
        if first < lo and ds + 5 <= last:
            out.append((p.name, lo, ds))
    return out


def _launch_table(sales: pd.DataFrame, sc: Scenario) -> list[dict[str, Any]]:
    """Per launch inside the results: orders and deliveries from its launch to its third month of
    deliveries, orders in its first quarter and two quarters on, backlog then and longest wait."""
    per = monthly(sales, ["model"], "orders").merge(monthly(sales, ["model"], "units"), on=["model", "month"])
    per = per.merge(monthly(sales, ["model"], "backlog"), on=["model", "month"])
    per["m"] = per["month"].map(parse_month)
    waits = sales[["run_id", "model", "month", "wait_months"]].assign(m=sales["month"].map(parse_month))
    first, last = int(per["m"].min()), int(per["m"].max())
    out = []
    for name, lo, ds in _launches(sc, first, last):
        g = per[per["model"] == name]
        start = g[(g["m"] >= lo) & (g["m"] <= ds + 2)]
        if start.empty or start["orders"].sum() <= 0:
            continue
        q1 = g[(g["m"] >= lo) & (g["m"] < lo + 3)]["orders"].mean()
        q3 = g[(g["m"] >= lo + 6) & (g["m"] < lo + 9)]["orders"].mean()
        w = waits[(waits["model"] == name) & (waits["m"] >= ds) & (waits["m"] < ds + 6)]
        out.append({
            "product": name, "launch": format_month(lo), "delivery_start": format_month(ds),
            "orders": float(start["orders"].sum()), "units": float(start["units"].sum()),
            "backlog": float(g.loc[g["m"] == ds + 2, "backlog"].sum()),
            "spike": float(q1 / q3) if q3 and q3 > 0 else math.inf,
            "wait": float(w.groupby("run_id")["wait_months"].max().mean()) if len(w) else 0.0,
        })
    return out


def check_launch_spike(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    name = "spike after a launch, with backlog"
    rows = _launch_table(sales, sc)
    if not rows:
        return Check(name, None, "no launch inside the results", [])
    hits = [r for r in rows if r["spike"] > 1]
    backlog = sum(r["orders"] > r["units"] for r in rows)
    detail = [f"{r['product']} (orders from {r['launch']}, deliveries from {r['delivery_start']}): orders {r['orders']:,.0f} "
              f"against deliveries {r['units']:,.0f} up to its third month of deliveries; first-quarter orders "
              f"{r['spike']:.2f}x those two quarters on" for r in rows]
    return Check(name, len(hits) * 2 > len(rows),
                 f"{len(hits)} of {len(rows)} launches take more orders in their first quarter than two quarters on; "
                 f"{backlog} take more orders than they deliver up to their third month of deliveries", detail)


def _legacy_brands(sc: Scenario) -> set[str]:
    """Foreign brands that sell from dealer stock (BMW, Mercedes-Benz, Audi, Porsche, Lexus in the baseline)."""
    return {b.name for b in sc.brands if b.origin == "foreign" and b.pricing.stock_months >= 1.0}


def check_legacy_decline(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    legacy = _legacy_brands(sc)
    domestic = {b.name for b in sc.brands if b.origin == "domestic"}
    cn = sales[sales["market"] == sc.markets[0].name]
    per = monthly(cn, ["brand"])
    per["year"] = per["month"].str[:4].astype(int)
    years = _full_years(_series(per))
    if len(years) < 2 or not legacy or not domestic:
        return Check("legacy luxury declining, domestic premium growing", None, "needs two full years and both groups", [])
    y0, y1 = years[0], years[-1]
    leg = {y: float(per[(per["year"] == y) & per["brand"].isin(legacy)]["units"].sum()) for y in years}
    dom = {y: float(per[(per["year"] == y) & per["brand"].isin(domestic)]["units"].sum()) for y in years}
    passed = leg[y1] < leg[y0] and dom[y1] > dom[y0]
    cagr = (lambda d: (d[y1] / d[y0]) ** (1 / (y1 - y0)) - 1 if d[y0] > 0 else math.nan)  # noqa: E731
    return Check("legacy luxury declining, domestic premium growing", passed,
                 f"{y0}->{y1}: legacy {cagr(leg):+.1%}/yr, domestic {cagr(dom):+.1%}/yr",
                 [f"legacy ({', '.join(sorted(legacy))}): " + ", ".join(f"{y} {leg[y]:,.0f}" for y in years),
                  "domestic: " + ", ".join(f"{y} {dom[y]:,.0f}" for y in years)])


def check_launch_waits(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    name = "capacity-bound launches with long waits"
    rows = [r for r in _launch_table(sales, sc) if r["backlog"] > 0.05 * max(r["units"] / 3, 1.0)]
    if not rows:
        return Check(name, None, "no launch holds a backlog after its third month of deliveries", [])
    waits = [r["wait"] for r in rows]
    med = float(np.median(waits))
    detail = [f"{r['product']} (deliveries from {r['delivery_start']}): backlog {r['backlog']:,.0f} after three months of "
              f"deliveries, longest expected wait in its first six months {r['wait']:.1f} months" for r in rows]
    return Check(name, med >= LONG_WAIT_MONTHS,
                 f"median longest wait {med:.1f} months over the {len(rows)} launches still holding a backlog after three "
                 f"months of deliveries (needs {LONG_WAIT_MONTHS:g})", detail)


def check_discounts(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    legacy = _legacy_brands(sc)
    cn = sales[(sales["market"] == sc.markets[0].name) & (sales["units"] > 0)].copy()
    cn["discount"] = 1 - cn["transaction_price"] / cn["list_price"]
    cn["year"] = cn["month"].str[:4]
    cn["group"] = np.where(cn["brand"].isin(legacy), "legacy", "tech-led")
    last_history = str(parse_month(sc.forecast_start) // 12 - 1) if sc.forecast_start else None
    years = [y for y in sorted(cn["year"].unique()) if y in (last_history, max(cn["year"]))]
    detail, gaps = [], {}
    for y in years:
        g = cn[cn["year"] == y]
        w = g.groupby("group").apply(lambda d: float(np.average(d["discount"], weights=d["units"])), include_groups=False)
        if {"legacy", "tech-led"} <= set(w.index):
            gaps[y] = w["legacy"] - w["tech-led"]
            detail.append(f"{y}: legacy {w['legacy']:.1%}, tech-led {w['tech-led']:.1%}")
    if not gaps:
        return Check("discount dispersion, tech-led vs legacy", None, "no year with both groups", [])
    y = last_history if last_history in gaps else max(gaps)
    return Check("discount dispersion, tech-led vs legacy", gaps[y] >= DISCOUNT_GAP,
                 f"{y}: legacy brands discount {100 * gaps[y]:.1f} points more (needs {100 * DISCOUNT_GAP:.0f})",
                 detail + ["MISSION.md: about 28-31% for BMW/Mercedes/Audi against 4-6% for AITO and Tesla (Nov 2025)"])


def _segment_from(sc: Scenario, floor: float) -> str | None:
    """The name of the segment whose lowest transaction price is ``floor`` (RMB), if the scenario has one."""
    return next((sg.name for sg in sc.segments if sg.min_price == floor), None)


def _line(model: pd.Series) -> pd.Series:
    return model.map(lambda m: LINES.get(m, m))


def check_m9_segment_share(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    """The AITO M9 line's share of the >RMB 500k segment's deliveries in Jan 2026, within
    :data:`M9_TOLERANCE` of the reported 70%."""
    name = "the AITO M9 at about 70% of the >RMB 500k segment"
    segment = _segment_from(sc, M9_FLOOR)
    cn = sales[(sales["market"] == sc.markets[0].name) & (sales["month"] == M9_MONTH)]
    if segment is None or cn.empty:
        return Check(name, None, f"no {segment or '>RMB 500k'} segment or no {M9_MONTH} in the results", [])
    runs = max(sales["run_id"].nunique(), 1)
    seg = cn[cn["segment"] == segment]
    m9 = _line(seg["model"]) == "AITO M9"
    total, own = seg["units"].sum() / runs, seg.loc[m9, "units"].sum() / runs
    if total <= 0:
        return Check(name, False, f"{M9_MONTH}: no deliveries in the {segment} segment", [])
    share = own / total
    nev = seg["powertrain"] != "ICE"
    nev_total = seg.loc[nev, "units"].sum() / runs
    line_units = cn.loc[_line(cn["model"]) == "AITO M9", "units"].sum() / runs
    leaders = (seg.groupby(_line(seg["model"]))["units"].sum() / runs).sort_values(ascending=False).head(5)
    detail = [f"{M9_MONTH}: the M9 line (M9 and M9 EV) delivers {own:,.0f} of the segment's {total:,.0f} ({share:.0%})"
              + (f"; {own / nev_total:.0%} of its NEV deliveries" if nev_total > 0 else "")]
    if line_units > 0:
        detail.append(f"{M9_MONTH}: {own / line_units:.0%} of the M9 line's {line_units:,.0f} units fall in the segment "
                      "(by their trims' transaction prices)")
    detail += [
        "largest in the segment: " + ", ".join(f"{m} {u:,.0f}" for m, u in leaders.items()),
        f"figure: 70% (data: 2026-01 AITO M9 share of >RMB 500k segment, thesinoreport.com; Yu Chengdong: 7 of 10 "
        f"cars in the >RMB 500k NEV market); pass within +-{M9_TOLERANCE * 100:.0f} points: a rounded figure for the NEV "
        "market by list-price class, against a segment by transaction price that holds imported ICE lines too",
    ]
    return Check(name, abs(share - M9_SHARE) <= M9_TOLERANCE,
                 f"{M9_MONTH}: {share:.0%} of the {segment} segment (reported 70%, pass {M9_SHARE - M9_TOLERANCE:.0%}-"
                 f"{M9_SHARE + M9_TOLERANCE:.0%})", detail)


def check_m8_segment_lead(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    """The AITO M8 line first by deliveries in the RMB 400-500k segment in each of Jul-Dec 2025."""
    name = "the M8 first in the RMB 400-500k segment for six months"
    segment = _segment_from(sc, M8_FLOOR)
    cn = sales[(sales["market"] == sc.markets[0].name) & sales["month"].isin(M8_MONTHS)]
    if segment is None or set(cn["month"]) != set(M8_MONTHS):
        return Check(name, None, f"no {segment or 'RMB 400-500k'} segment or the results miss {M8_MONTHS[0]}..{M8_MONTHS[-1]}", [])
    runs = max(sales["run_id"].nunique(), 1)
    seg = cn[cn["segment"] == segment]
    per = seg.groupby(["month", _line(seg["model"]).rename("line")])["units"].sum() / runs
    detail, first = [], 0
    for m in M8_MONTHS:
        month = per.loc[m].sort_values(ascending=False) if m in per.index.get_level_values(0) else pd.Series(dtype=float)
        m8 = float(month.get("AITO M8", 0.0))
        rank = int((month > m8).sum()) + 1
        lead = month.index[0] if len(month) else "none"
        first += rank == 1 and m8 > 0
        detail.append(f"{m}: the M8 line {m8:,.0f} (rank {rank}); first {lead} {month.iloc[0] if len(month) else 0:,.0f}"
                      + ("" if rank == 1 else " FAIL"))
    detail.append("figure: #1 for six consecutive months (data: 2026-01 AITO M8 rank in RMB 400k segment, thesinoreport.com, "
                  "low; 2025-05 #1 too, ichongqing.info); the months are the six before the article's (Jan 2026). The "
                  "press's '400k segment' is a list-price class; the model's is by transaction price")
    return Check(name, first == len(M8_MONTHS), f"first in {first} of the {len(M8_MONTHS)} months {M8_MONTHS[0]}..{M8_MONTHS[-1]} "
                 f"in the {segment} segment", detail)


def check_aito_record_december(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> Check:
    """AITO's deliveries in Dec 2025 above 57,000 and above every earlier month (a record)."""
    name = "a record AITO month of over 57,000 deliveries in Dec 2025"
    aito = sales[sales["brand"] == "AITO"]
    s = _series(monthly(aito, []))
    at = parse_month(AITO_RECORD_MONTH)
    if at not in s.index:
        return Check(name, None, f"the results do not cover {AITO_RECORD_MONTH}", [])
    dec, before = float(s[at]), s[s.index < at]
    best = (format_month(int(before.idxmax())), float(before.max())) if len(before) else ("none", 0.0)
    per_run = aito[aito["month"] == AITO_RECORD_MONTH].groupby("run_id")["units"].sum()
    above = float((per_run > AITO_RECORD).mean()) if len(per_run) else 0.0
    passed = dec > AITO_RECORD and dec > best[1]
    return Check(name, passed,
                 f"{AITO_RECORD_MONTH}: {dec:,.0f} (reported >57,000); the highest month before it {best[0]} {best[1]:,.0f}",
                 [f"{above:.0%} of the runs deliver more than 57,000 in {AITO_RECORD_MONTH}",
                  "figure: >57,000, the record month (data: 2025-12 AITO monthly deliveries (record month), thesinoreport.com, "
                  "medium); the model's months are deliveries in all its markets"])


CHECKS = (check_seasonality, check_tax_pull_forward, check_refresh_dip, check_launch_spike, check_legacy_decline,
          check_launch_waits, check_discounts, check_m9_segment_share, check_m8_segment_lead, check_aito_record_december)


def pattern_checks(sales: pd.DataFrame, sc: Scenario, control: pd.DataFrame | None = None) -> list[Check]:
    """Every pattern check on a results folder's sales table (``control``: a counterfactual's, for the tax change)."""
    return [f(sales, sc, control) for f in CHECKS]


