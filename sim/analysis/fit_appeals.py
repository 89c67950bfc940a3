"""Fitting appeals, brand trends and life cycles to reported volumes (a first, deterministic calibration).

``fit_appeals`` adjusts brand and product mean utilities (``appeal``), each brand's appeal trend
(``appeal_trend``, utils a year up to the cut-off and flat after it, for brands with figures in
more than one year) and each product's life-cycle rate (``ageing``, utils lost a year of age) so
that the simulated deliveries match the reported monthly, quarterly, annual and cumulative
(period-sum) figures through a cut-off month (Dec 2024 by default: later volumes are kept out of
the fit on purpose).

Method: Levenberg-Marquardt on log volumes, brand by brand. The residual of target ``t`` is
``log(simulated_t / reported_t)``, weighted by the confidence of its sources and its
frequency (the monthly or quarterly figures of one series in one year share out their weight).
Its derivative follows deliveries through the order book: a target's units over months
``s..e`` are cumulative deliveries to ``e`` less those to ``s-1``, and cumulative deliveries to
a month move one for one with cumulative orders when the product's order book is empty then, and
not at all while buyers are still waiting (the plant is full). Orders move with the nested-logit
share derivative, ``(1 / lambda)`` times the orders the parameter moves (a brand's appeal moves
all its products); with respect to an ageing rate, minus that weighted by the product's age;
with respect to a brand's trend, minus that weighted by the years before the cut-off (trends
carry a prior, ``TREND_PRIOR``). So a launch held at its capacity does not take the fit (raising
its appeal would only lengthen its order book), and a backlog that clears inside a target's
months answers with all the orders behind it (see :func:`delivery_response`). The rule is
one-sided: for a target with too many deliveries, a product held at its capacity answers with its
orders (its deliveries fall once its demand falls below its capacity).

Every product of a brand with figures has a free appeal; products whose age the model counts
(first delivered inside the scenario, or on sale since a given month, ``on_sale_since``) with at
least ``AGEING_MIN_MONTHS`` in sample also have a free ageing rate (kept >= 0: products
only lose appeal with age); the other such products (too few months in sample, or launched after
the cut-off) age at the median of the fitted rates, and a
product launched after the cut-off takes its brand's typical appeal (the fitted product appeals
weighted by their deliveries in sample). The Jacobian is block-diagonal by brand, so each brand
has its own damping and keeps its step only when its own loss falls; a brand that stopped taking
steps takes them again once its loss has risen well above its lowest
(:func:`block_levenberg_marquardt`). Each
evaluation runs the model with the same seeds (common random numbers), so the fit is
deterministic. The ensemble calibration of parameter uncertainty is ``sim calibrate``
(:mod:`sim.analysis.calibrate`); this gives the baseline its starting values, and the command that
produced them is written at the top of the overlay it writes.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from sim.runs.batch import BLAS_THREADS, collect
from sim.runs.run import execute, make_specs
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario, load_scenario

#: Weight of a reported figure by its confidence.
CONFIDENCE_WEIGHT = {"high": 1.0, "medium": 0.7, "low": 0.3}
VOLUME_MEASURES = ("deliveries", "sales", "retail", "registrations")


#: Weight of a figure by its frequency (many monthly figures should not drown the annual totals).
FREQUENCY_WEIGHT = {"annual": 1.0, "quarterly": 0.6, "monthly": 0.3, "cumulative": 0.6}
#: The fit stops when the damping needed for a step that lowers the loss passes this (steps too short to matter).
MAX_DAMPING = 1e3
#: A product's own ageing rate is fitted only with at least this many months of deliveries in sample.
AGEING_MIN_MONTHS = 9
#: Prior weight on a brand's appeal trend: a trend of 1 util a year costs the weighted loss as much
#: as a log error of sqrt(0.05) = 0.22 (a 25% miss) on one annual figure of high confidence.
TREND_PRIOR = 0.05
#: Where each kind of fitted parameter lives in a scenario: (section, field).
PARAM_FIELDS = {"brand": ("brands", "appeal"), "trend": ("brands", "appeal_trend"),
                "product": ("products", "appeal"), "ageing": ("products", "ageing")}


@dataclass(frozen=True)
class VolumeTarget:
    """A reported volume over a period that the fit aims at."""

    brand: str
    model: str | None
    start: str
    end: str
    value: float
    weight: float
    lines: str

    @property
    def key(self) -> str:
        period = self.start[:4] if (self.start.endswith("-01") and self.end == self.start[:4] + "-12") else (
            self.start if self.start == self.end else f"{self.start}..{self.end}")
        return f"{self.model or self.brand} {period}"


def volume_targets(scenario: Scenario, through: str, reported: Any = None) -> list[VolumeTarget]:
    """Monthly, quarterly and annual brand and product volumes reported up to ``through``.

    Only figures whose months lie inside the scenario are used. Conflicting sources for
    the same brand/product and period are averaged, weighted by confidence.
    """
    from sim.analysis.reported import load_reported

    rf = reported if reported is not None else load_reported()
    fig = rf.figures
    cut = min(parse_month(through), scenario.end_index)
    brands = {b.name for b in scenario.brands}
    products = {p.name for p in scenario.products}
    sel = fig[
        (fig["measure"].isin(VOLUME_MEASURES) | (fig["measure"] == "cumulative"))
        & fig["frequency"].isin(list(FREQUENCY_WEIGHT))
        & fig["brand"].notna()
        & fig["basis"].fillna("").isin(["", "brand", "group"])
        & fig["confidence"].isin(list(CONFIDENCE_WEIGHT))
        & fig["value"].notna()
    ].copy()
    sel = sel[(sel["end"].map(parse_month) <= cut) & (sel["start"].map(parse_month) >= scenario.start_index)]
    # A cumulative figure is a period sum only when its first month is known (start before end).
    sel = sel[(sel["frequency"] != "cumulative") | (sel["start"] < sel["end"])]
    if "cumulative_of" in sel.columns:
        sel = sel[(sel["frequency"] != "cumulative") | sel["cumulative_of"].isin(["deliveries", "sales"])]
    sel = sel[sel["brand"].isin(brands) & (sel["model"].isna() | sel["model"].isin(products))]
    sel["w"] = sel["confidence"].map(CONFIDENCE_WEIGHT)
    out = []
    keys = ["brand", sel["model"].fillna(""), "start", "end", "frequency"]
    groups = list(sel.groupby(keys, sort=True))
    # Monthly and quarterly figures of one brand or product in one year share their weight:
    # each counts 1/sqrt(n) of its frequency's weight when the year has n of them, so that a
    # series reported every month (Tesla's models, with their export-cycle swings) does not
    # outweigh the annual totals of every other brand.
    per_year = Counter((brand, model, start[:4], freq) for (brand, model, start, _, freq), _ in groups)
    for (brand, model, start, end, freq), g in groups:
        value = float(np.average(g["value"], weights=g["w"]))
        share = 1.0 / np.sqrt(per_year[brand, model, start[:4], freq]) if freq in ("monthly", "quarterly") else 1.0
        weight = float(g["w"].max()) * FREQUENCY_WEIGHT[freq] * share
        out.append(VolumeTarget(brand, model or None, start, end, value, weight, ",".join(map(str, g["line"]))))
    return out


def simulate_monthly(scenario: Scenario, replications: int, seed: int, scale: float | None) -> pd.DataFrame:
    """Mean monthly units per brand and product over replicates (China market)."""
    per = _replicate_monthly(scenario, replications, seed, scale)
    out = per.groupby(["brand", "model", "month"], observed=True)[["units", "orders"]].mean().reset_index()
    out["m"] = out["month"].map(parse_month)
    return out


def _replicate_monthly(scenario: Scenario, replications: int, seed: int, scale: float | None) -> pd.DataFrame:
    """Units, orders and backlog per replicate, brand, product and month (China market)."""
    specs = make_specs(scenario, replications, seed=seed, scale=scale)
    with threadpool_limits(BLAS_THREADS):  # as in batches, so that fits and batches agree bit for bit
        runs, sales = collect([execute(s) for s in specs])
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"a fitting run failed:\n{failed['error'].iloc[0]}")
    sales = sales[sales["market"] == "CN"]
    cols = ["units", "orders", "backlog"]
    return sales.groupby(["replicate", "brand", "model", "month"], observed=True)[cols].sum().reset_index()


def delivery_response(per: pd.DataFrame, months: range, weights: dict[str, Any]) -> pd.DataFrame:
    """Mean monthly units and orders, with how cumulative deliveries answer to demand.

    A product's deliveries up to month ``m`` are its orders up to ``m`` less what is still in its
    order book (and what was cancelled). When its order book is empty at ``m``, every order so
    far has been delivered, so cumulative deliveries move one for one with cumulative orders;
    when buyers are still waiting, the product delivers at its capacity, which demand does not
    move. For each weight ``w`` (a function of a frame with ``model`` and ``m`` columns, giving
    how a parameter moves the log of each month's orders) the column ``r_<name>`` is the mean
    over replicates of ``[backlog(m) == 0] * sum of w * orders up to m``: the derivative of
    cumulative deliveries to ``m``; ``c_<name>`` is the same without the order-book condition
    (the derivative of cumulative orders). Months in which a product is not on sale (before its
    launch, after its end) have no orders and no backlog.
    """
    per = per.astype({"brand": str, "model": str, "month": str})
    keys = per[["brand", "model"]].drop_duplicates()
    grid = pd.MultiIndex.from_product(
        [sorted(per["replicate"].unique()), keys["model"], [format_month(m) for m in months]],
        names=["replicate", "model", "month"],
    )
    full = (per.drop(columns="brand").set_index(["replicate", "model", "month"])
            .reindex(grid, fill_value=0).reset_index())
    full = full.merge(keys, on="model")
    full["m"] = full["month"].map(parse_month)
    full = full.sort_values(["replicate", "model", "m"], kind="stable")
    free = (full["backlog"] <= 0).to_numpy()
    by = [full["replicate"], full["model"]]
    for name, w in weights.items():
        full[f"c_{name}"] = (full["orders"] * w(full)).groupby(by).cumsum()
        full[f"r_{name}"] = free * full[f"c_{name}"]
    cols = ["units", "orders"] + [f"{k}_{n}" for n in weights for k in ("r", "c")]
    return full.groupby(["brand", "model", "month", "m"], observed=True)[cols].mean().reset_index()


def _target_rows(sim: pd.DataFrame, t: VolumeTarget) -> pd.DataFrame:
    rows = sim[(sim["brand"] == t.brand) & (sim["m"] >= parse_month(t.start)) & (sim["m"] <= parse_month(t.end))]
    return rows[rows["model"] == t.model] if t.model else rows


def _residuals(targets: list[VolumeTarget], sim: pd.DataFrame) -> tuple[np.ndarray, list[float]]:
    res, got = [], []
    for t in targets:
        units = float(_target_rows(sim, t)["units"].sum())
        got.append(units)
        res.append(np.log(max(units, 1.0) / t.value))
    return np.array(res), got


def _product_ages(scenario: Scenario) -> dict[tuple[str, int], float]:
    """Age in years of each product in each month (the model's life-cycle clock)."""
    from sim.model.market_model import MarketModel

    model = MarketModel(scenario, seed=0)
    months = range(model.start_index, model.start_index + model.n_months)
    return {
        (name, m): float(model.calendar.age[t, j])
        for j, name in enumerate(model.product_names)
        for t, m in enumerate(months)
        if model.calendar.age[t, j] > 0
    }


def fit_appeals(
    path: str | Path,
    *,
    through: str = "2024-12",
    replications: int = 2,
    seed: int = 1,
    scale: float | None = None,
    iterations: int = 12,
    tolerance: float = 0.03,
    ridge: float = 0.2,
    reported: Any = None,
    overrides: dict[str, Any] | None = None,
    fit_ageing: bool = True,
    fit_trend: bool = True,
    log: Any = sys.stderr,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]], pd.DataFrame]:
    """Fit brand and product appeals to reported volumes up to ``through``.

    Returns:
        ``(brand_fit, product_fit, report)``: fitted values by name (only for fitted
        parameters: a brand's ``appeal`` and, with a trend, ``appeal_trend`` and
        ``appeal_trend_until``; a product's ``appeal`` and ``ageing``) and a table of targets
        with reported and simulated units.
    """
    fixed = dict(overrides or {})
    base = load_scenario(path, fixed)
    targets = volume_targets(base, through, reported)
    if not targets:
        raise ValueError("no reported volumes to fit")
    fit_end = min(parse_month(through), base.end_index)
    brands = sorted({t.brand for t in targets})
    # Every product of a brand with figures is free, so that products launched at different
    # times can share out a brand's yearly totals; the ridge term damps the steps.
    prods = sorted(
        p.name for p in base.products
        if p.brand in brands and parse_month(p.delivery_start or p.launch) <= fit_end
    )
    # A life-cycle rate (utils lost a year of age) is free for products whose age the model
    # counts (first delivered inside the scenario, or with ``on_sale_since``) with at least
    # AGEING_MIN_MONTHS of deliveries before the cut-off.
    def ages_in_model(p: Any) -> bool:
        return parse_month(p.delivery_start or p.launch) > base.start_index or p.on_sale_since is not None

    aged = sorted(
        p.name for p in base.products
        if p.name in prods and ages_in_model(p) and parse_month(p.delivery_start or p.launch) <= fit_end - AGEING_MIN_MONTHS + 1
    ) if fit_ageing else []
    # Products whose age is counted but without enough data of their own (too few months in
    # sample, or launched after the cut-off) age at the median fitted rate.
    borrowed = [p.name for p in base.products if p.name not in aged and ages_in_model(p)] if fit_ageing else []
    ages = _product_ages(base)
    product_brand = {p.name: p.brand for p in base.products}
    # A brand's appeal trend (utils a year up to the cut-off, flat after it) is free when its
    # figures span more than one calendar year: growth or decline in the data that awareness,
    # stores and launches do not explain, kept out of the forecast.
    years: dict[str, set[str]] = {}
    for t in targets:
        years.setdefault(t.brand, set()).update((t.start[:4], t.end[:4]))
    trended = [b for b in brands if len(years[b]) > 1] if fit_trend else []
    params = ([("brand", b) for b in brands] + [("trend", b) for b in trended] + [("product", p) for p in prods]
              + [("ageing", p) for p in aged])
    items: dict[str, dict[str, Any]] = {"brands": {b.name: b for b in base.brands}, "products": {p.name: p for p in base.products}}
    theta = np.array([getattr(items[PARAM_FIELDS[k][0]][n], PARAM_FIELDS[k][1]) for k, n in params])
    cut = format_month(fit_end)
    lam = base.buyers.choice.nest_lambda if base.buyers.choice.model == "nested_logit" else 1.0
    weights = np.array([t.weight for t in targets])
    is_ageing = np.array([k == "ageing" for k, _ in params])
    # The trends' prior: the weighted loss grows by TREND_PRIOR * trend**2 for each brand.
    prior = np.where([k == "trend" for k, _ in params], TREND_PRIOR, 0.0)

    brand_products = {b: [p.name for p in base.products if p.brand == b] for b in brands}
    months = range(base.start_index, fit_end + 1)
    # How a parameter moves the log of a month's orders (see delivery_response).
    response = {
        "appeal": lambda f: 1.0,
        "age": lambda f: np.array([ages.get(key, 0.0) for key in zip(f["model"], f["m"], strict=True)]),
        "trend": lambda f: np.maximum(fit_end - f["m"], 0) / 12.0,
    }

    def median_rate(theta: np.ndarray) -> float:
        return round(float(np.median(theta[is_ageing])), 4) if is_ageing.any() else 0.0

    def evaluate(theta: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, list[float], float]:
        over: dict[str, Any] = {**fixed, "end": cut}
        for (kind, name), value in zip(params, theta, strict=True):
            section, field = PARAM_FIELDS[kind]
            over[f"{section}.{name}.{field}"] = float(value)
            if kind == "trend":
                over[f"brands.{name}.appeal_trend_until"] = cut
        for name in borrowed:
            over[f"products.{name}.ageing"] = median_rate(theta)
        per = _replicate_monthly(load_scenario(path, over), replications, seed, scale)
        sim = delivery_response(per, months, response)
        r, got = _residuals(targets, sim)
        return sim, r, got, float(np.sum(weights * r**2) + np.sum(prior * theta**2)) / float(np.sum(weights))

    def jacobian(sim: pd.DataFrame, r: np.ndarray) -> np.ndarray:
        # d log(units of a target) = d(units) / units, and a target's units over months s..e are
        # cumulative deliveries to e less those to s-1; how those answer to each parameter is
        # in the columns of delivery_response (the logit derivative of orders, 1/lambda times
        # the orders a parameter moves, counted only up to months with an empty order book).
        # A product held at its capacity through a target's months does not answer at all (the
        # fit does not raise a capacity-bound launch's demand without limit), and a backlog
        # that clears inside them answers with all the orders behind it. Each line's answer is
        # worked out once per target; a brand's appeal or trend moves the sum over its lines.
        tables = {f"{k}_{col}": sim.pivot_table(index="model", columns="m", values=f"{k}_{col}", aggfunc="sum")
                  for col in response for k in ("r", "c")}
        column = {"product": "appeal", "brand": "appeal", "ageing": "age", "trend": "trend"}
        sign = {"product": 1.0, "brand": 1.0, "ageing": -1.0, "trend": -1.0}

        def moved(table: pd.DataFrame, name: str, t: VolumeTarget) -> float:
            end, before = parse_month(t.end), parse_month(t.start) - 1
            if name not in table.index:
                return 0.0
            d = float(table.at[name, end]) if end in table.columns else 0.0
            return d - (float(table.at[name, before]) if before in table.columns else 0.0)

        def answer(col: str, name: str, t: VolumeTarget, too_many: bool) -> float:
            d = moved(tables["r_" + col], name, t)
            # Too many deliveries: a product held at its capacity delivers fewer only once its
            # demand falls below that capacity, so lowering its demand is the way down
            # (one-sided: more demand would only lengthen its queue).
            return max(d, moved(tables["c_" + col], name, t), key=abs) if too_many else d

        jac = np.zeros((len(targets), len(params)))
        for i, t in enumerate(targets):
            units = max(float(_target_rows(sim, t)["units"].sum()), 1.0)
            lines = [t.model] if t.model else brand_products[t.brand]
            answers = {col: {p: answer(col, p, t, r[i] > 0) for p in lines} for col in response}
            for k, (kind, name) in enumerate(params):
                by_line = answers[column[kind]]
                if kind in ("brand", "trend"):
                    total = sum(by_line.values()) if name == t.brand else 0.0
                else:
                    total = by_line.get(name, 0.0)
                jac[i, k] = sign[kind] * total / units / lam
        return jac

    owner = [name if kind in ("brand", "trend") else product_brand[name] for kind, name in params]
    target_brand = [t.brand for t in targets]
    blocks = {
        b: (np.array([k for k, o in enumerate(owner) if o == b]), np.array([i for i, o in enumerate(target_brand) if o == b]))
        for b in brands
    }
    best, it, evaluations = block_levenberg_marquardt(
        theta, evaluate, jacobian, blocks, weights, prior, ridge=ridge, iterations=iterations, tolerance=tolerance,
        lower=np.where(is_ageing, 0.0, -np.inf), log=log,
    )
    theta, sim, r, got, loss = best
    print(f"fit result: weighted RMS {np.sqrt(loss):.3f} after {it} steps and {evaluations} runs", file=log)
    report = pd.DataFrame(
        {"target": [t.key for t in targets], "reported": [t.value for t in targets], "simulated": got,
         "pct_error": 100 * (np.array(got) / np.array([t.value for t in targets]) - 1), "lines": [t.lines for t in targets]}
    )
    values: dict[str, dict[str, dict[str, Any]]] = {"brands": {}, "products": {}}
    for (k, n), v in zip(params, theta, strict=True):
        section, field = PARAM_FIELDS[k]
        values[section].setdefault(n, {})[field] = round(float(v), 4)
        if k == "trend":
            values[section][n]["appeal_trend_until"] = cut
    brand_fit, prod_fit = values["brands"], values["products"]
    for n in borrowed:
        prod_fit.setdefault(n, {})["ageing"] = median_rate(theta)
    # A product launched after the cut-off has no data of its own: it is taken to be as appealing
    # as the brand's typical product, the mean of its fitted product appeals weighted by their
    # deliveries in sample (unless the scenario says otherwise with appeal_like).
    units = sim.groupby("model")["units"].sum()
    for b in brands:
        fitted = [n for n in prods if product_brand[n] == b]
        w = np.array([float(units.get(n, 0.0)) for n in fitted])
        if not fitted or w.sum() <= 0:
            continue
        typical = float(np.average([prod_fit[n]["appeal"] for n in fitted], weights=w))
        for p in base.products:
            if p.brand == b and p.name not in prods and not p.appeal_like:
                prod_fit.setdefault(p.name, {})["appeal"] = round(typical, 4)
    return brand_fit, prod_fit, report


#: A brand whose damping passed MAX_DAMPING (its steps kept raising its own loss) is given steps
#: again while its loss is above this multiple of the lowest it has had: the other brands' moves
#: have changed its market.
REVIVE = 1.25
#: ... and by at least this much (a loss of 0.02 is a 14% miss on one annual figure of weight 1), so
#: that brands fitted to within the noise are left alone.
REVIVE_MIN = 0.02


def block_levenberg_marquardt(
    theta: np.ndarray,
    evaluate: Any,
    jacobian: Any,
    blocks: dict[str, tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    prior: np.ndarray,
    *,
    ridge: float,
    iterations: int,
    tolerance: float,
    lower: np.ndarray,
    max_step: float = 1.5,
    log: Any = sys.stderr,
) -> tuple[tuple[Any, ...], int, int]:
    """Levenberg-Marquardt with one damping per block of parameters (block Jacobi).

    ``evaluate(theta) -> (sim, r, got, loss)`` gives the residuals ``r`` and the weighted loss;
    ``jacobian(sim, r)`` the derivatives of ``r``; ``blocks[b] = (parameters, targets)`` of block
    ``b`` (a brand). The Jacobian is block-diagonal to first order (a brand's parameters move
    only its own targets; brands interact through competition, a second-order effect), so the
    damped Gauss-Newton step is solved block by block. A candidate is run once; each block whose
    own loss (its targets, plus its parameters' prior) fell keeps its part of the step and halves
    its damping, the others go back and quadruple theirs; that mixed point is run and is the
    next iterate. Judging each block by the whole loss let the noise of other brands' figures
    (Tesla's export-cycle months) reject its good steps and stall the fit.

    A block whose damping passes :data:`MAX_DAMPING` stops taking steps; it takes them again
    (damping back to ``ridge``) when its own loss is above :data:`REVIVE` times the lowest it has
    had (and :data:`REVIVE_MIN` above it), the other blocks' moves having shifted its market (a
    brand left behind while the others converge: its steps are judged at candidates where the
    others move too, and large moves of a competitor can make them look bad).
    Parameters are clipped below at ``lower`` and steps at ``max_step``.

    Returns:
        ``(best, steps, evaluations)``: the iterate with the lowest loss as ``(theta, sim, r,
        got, loss)`` (block Jacobi need not lower the whole loss at every step), the steps taken
        and the model evaluations.
    """
    damping = dict.fromkeys(blocks, ridge)

    def say(it: int, r: np.ndarray, loss: float) -> None:
        print(f"fit iteration {it}: max |log error| {np.max(np.abs(r)):.3f}, weighted RMS {np.sqrt(loss):.3f}", file=log)

    def block_loss(r: np.ndarray, theta: np.ndarray) -> dict[str, float]:
        return {b: float(np.sum(weights[ti] * r[ti] ** 2) + np.sum(prior[pi] * theta[pi] ** 2)) for b, (pi, ti) in blocks.items()}

    evaluations = 0

    def run(point: np.ndarray) -> tuple[Any, np.ndarray, Any, float]:
        nonlocal evaluations
        evaluations += 1
        return evaluate(point)  # type: ignore[no-any-return]

    owner = np.empty(len(theta), dtype=object)
    for b, (pi, _) in blocks.items():
        owner[pi] = b
    sim, r, got, loss = run(theta)
    say(0, r, loss)
    best = (theta, sim, r, got, loss)
    lowest = block_loss(r, theta)
    it = 0
    while it < iterations and np.max(np.abs(r)) >= tolerance and evaluations < 3 * iterations + 1:
        live = [b for b in blocks if damping[b] < MAX_DAMPING]
        if not live:
            break
        jac = jacobian(sim, r)
        step = np.zeros(len(theta))
        for b in live:
            pi, ti = blocks[b]
            jb = jac[np.ix_(ti, pi)]
            wj = jb * weights[ti, None]
            step[pi] = -np.linalg.solve(jb.T @ wj + np.diag(prior[pi] + damping[b]), wj.T @ r[ti] + prior[pi] * theta[pi])
        cand = np.maximum(theta + np.clip(step, -max_step, max_step), lower)
        c_sim, c_r, c_got, c_loss = run(cand)
        before, after = block_loss(r, theta), block_loss(c_r, cand)
        gained = [b for b in live if after[b] < before[b]]
        for b in live:
            damping[b] = max(damping[b] / 2.0, 1e-3) if b in gained else damping[b] * 4.0
        if not gained:
            print(f"  step rejected for every brand (weighted RMS {np.sqrt(c_loss):.3f}); damping raised", file=log)
            continue
        if len(gained) < len(live):
            cand = np.where(np.isin(owner, gained), cand, theta)
            c_sim, c_r, c_got, c_loss = run(cand)
        it += 1
        theta, sim, r, got, loss = cand, c_sim, c_r, c_got, c_loss
        say(it, r, loss)
        if loss < best[-1]:
            best = (theta, sim, r, got, loss)
        now = block_loss(r, theta)
        for b in blocks:
            if damping[b] >= MAX_DAMPING and now[b] > max(REVIVE * lowest[b], lowest[b] + REVIVE_MIN):
                print(f"  {b}: loss {now[b]:.3f}, against {lowest[b]:.3f} at best, without steps; steps again", file=log)
                damping[b] = ridge
            lowest[b] = min(lowest[b], now[b])
    return best, it, evaluations


def write_overlay(
    out: str | Path,
    extends: str,
    name: str,
    brand_fit: dict[str, dict[str, Any]],
    product_fit: dict[str, dict[str, float]],
    report: pd.DataFrame,
    command: str,
    description: str = "",
) -> None:
    """Write a scenario that extends ``extends`` and sets the fitted appeals."""
    header = [
        "# Generated by the appeal fit (sim/calibrate.py); do not edit by hand, rerun:",
        f"#   {command}",
        "# Fitted to reported volumes up to the cut-off (scenarios/reported/figures.csv lines in brackets):",
    ]
    for _, row in report.iterrows():
        header.append(
            f"#   {row['target']:<28} reported {row['reported']:>10,.0f}  simulated {row['simulated']:>10,.0f}  "
            f"({row['pct_error']:+.1f}%)  [lines {row['lines']}]"
        )
    doc: dict[str, Any] = {"name": name, "extends": extends}
    if description:
        doc["description"] = description
    doc["brands"] = [{"name": b, **v} for b, v in brand_fit.items()]
    doc["products"] = [{"name": p, **v} for p, v in product_fit.items()]
    text = "\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    Path(out).write_text(text)


def add_calibrate_commands(sub: Any) -> None:
    """Register ``sim fit-appeals``."""
    p = sub.add_parser("fit-appeals", help="fit brand/product appeals to reported volumes (writes an overlay scenario)")
    p.add_argument("scenario", help="the scenario to fit (e.g. scenarios/base/market.yaml)")
    p.add_argument("--through", default="2024-12", help="last month of data used (default 2024-12)")
    p.add_argument("--replications", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float)
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--write", required=True, help="overlay scenario to write (e.g. scenarios/baseline.yaml)")
    p.add_argument("--name", default="baseline")
    p.add_argument("--no-ageing", dest="ageing", action="store_false",
                   help="fit appeals only, not the products' life-cycle (ageing) rates")
    p.add_argument("--no-trend", dest="trend", action="store_false",
                   help="no brand appeal trends (utils a year up to the cut-off, flat after it)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                   help="hold a scenario value fixed during the fit, e.g. --set buyers.price_sensitivity=1.2")
    p.set_defaults(func=_cmd_fit)


def _cmd_fit(args: Any) -> int:
    import os

    from sim.scenario.schema import parse_set_option
    from sim.scenario.yamlio import InputError

    try:
        parse_month(args.through)
    except ValueError as exc:
        raise InputError(f"--through: {exc}") from None
    if args.iterations < 0 or args.replications < 1:
        raise InputError("--iterations must be >= 0 and --replications >= 1")
    out_dir = Path(args.write).resolve().parent
    if not out_dir.is_dir():
        raise InputError(f"--write: folder {out_dir} does not exist")
    brand_fit, prod_fit, report = fit_appeals(
        args.scenario, through=args.through, replications=args.replications, seed=args.seed,
        scale=args.scale, iterations=args.iterations, fit_ageing=args.ageing, fit_trend=args.trend,
        overrides=dict(parse_set_option(s) for s in args.sets),
    )
    out = Path(args.write)
    extends = os.path.relpath(Path(args.scenario).resolve(), out.resolve().parent)
    # The command as typed (``sim ...`` or ``python -m sim ...``), for the overlay's header.
    typed = sys.argv and sys.argv[0].endswith(("sim", "__main__.py"))
    command = "sim " + " ".join(sys.argv[1:]) if typed else "sim fit-appeals ..."
    write_overlay(out, extends, args.name, brand_fit, prod_fit, report, command)
    print(report.to_string(index=False))
    print(f"wrote {out}")
    return 0
