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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sim.analysis.fit_targets import (
    VolumeTarget,
    delivery_response,
    replicate_monthly,
    residuals,
    target_rows,
    volume_targets,
)
from sim.analysis.levenberg_marquardt import block_levenberg_marquardt
from sim.analysis.posterior import Laplace, laplace
from sim.scenario.load import load_scenario
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario

#: A product's own ageing rate is fitted only with at least this many months of deliveries in sample.
AGEING_MIN_MONTHS = 9
#: Prior weight on a brand's appeal trend: a trend of 1 util a year costs the weighted loss as much
#: as a log error of sqrt(0.05) = 0.22 (a 25% miss) on one annual figure of high confidence.
TREND_PRIOR = 0.05
#: A brand's appeal trend is at most this many utils a year either way (the scenario's bound).
TREND_BOUND = 3.0
#: Where each kind of fitted parameter lives in a scenario: (section, field).
PARAM_FIELDS = {"brand": ("brands", "appeal"), "trend": ("brands", "appeal_trend"),
                "product": ("products", "appeal"), "ageing": ("products", "ageing")}


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


def median_rate(theta: np.ndarray, is_ageing: np.ndarray) -> float:
    """The median of the fitted life-cycle rates (utils a year), for products without data of their own."""
    return round(float(np.median(theta[is_ageing])), 4) if is_ageing.any() else 0.0


@dataclass(frozen=True)
class AppealFit:
    """The result of :func:`fit`: the fitted parameters, their approximate posterior and the report.

    Attributes:
        params: ``(kind, name)`` of each free parameter: ``brand`` (a brand's appeal, utils),
            ``trend`` (its appeal trend, utils a year before the cut-off), ``product`` (a product's
            appeal, utils, its offset from its brand's) or ``ageing`` (utils lost a year of age).
        theta: their fitted values.
        lower: lowest value each may take (life-cycle rates are not negative).
        cut: the last month of data (``YYYY-MM``).
        borrowed: products whose age counts but whose rate is the median fitted rate.
        later: per brand, ``(fitted products, their deliveries in sample, products launched after
            the cut-off)``: the later launches take the fitted appeals' delivery-weighted mean.
        report: one row per target: reported, simulated, error.
        loss: the weighted loss at the fit (log units squared).
        steps, evaluations: steps taken and model evaluations.
        posterior: the Laplace approximation at the fit (:mod:`sim.analysis.posterior`).
        residuals: the log error of each target at the fit. frequencies: each target's frequency.
    """

    params: list[tuple[str, str]]
    theta: np.ndarray
    lower: np.ndarray
    cut: str
    borrowed: list[str]
    later: dict[str, tuple[list[str], np.ndarray, list[str]]]
    report: pd.DataFrame
    loss: float
    steps: int
    evaluations: int
    posterior: Laplace
    residuals: np.ndarray
    frequencies: list[str]

    def observation_sd(self, floor: float = 0.02) -> dict[str, float]:
        """The RMS of the fit's log errors by the figures' frequency (at least ``floor``): how far a reported
        figure sits from the model's aggregate once the parameters are fitted, for assimilation."""
        out = {}
        for freq in sorted(set(self.frequencies)):
            r = self.residuals[[f == freq for f in self.frequencies]]
            out[freq] = round(max(float(np.sqrt(np.mean(r**2))), floor), 4)
        return out

    def values(self, theta: np.ndarray | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Scenario values of a parameter vector (default: the fit), rounded to 4 decimals.

        Returns:
            ``(brand_fit, product_fit)``: by name, the fields to set: a brand's ``appeal`` and, with
            a trend, ``appeal_trend`` and ``appeal_trend_until``; a product's ``appeal`` and
            ``ageing``, including the products that borrow the median rate and the later launches
            that take their brand's typical appeal.
        """
        theta = self.theta if theta is None else theta
        is_ageing = np.array([k == "ageing" for k, _ in self.params])
        values: dict[str, dict[str, dict[str, Any]]] = {"brands": {}, "products": {}}
        for (k, n), v in zip(self.params, theta, strict=True):
            section, field = PARAM_FIELDS[k]
            values[section].setdefault(n, {})[field] = round(float(v), 4)
            if k == "trend":
                values[section][n]["appeal_trend_until"] = self.cut
        brand_fit, prod_fit = values["brands"], values["products"]
        for n in self.borrowed:
            prod_fit.setdefault(n, {})["ageing"] = median_rate(theta, is_ageing)
        for fitted, w, heirs in self.later.values():
            typical = float(np.average([prod_fit[n]["appeal"] for n in fitted], weights=w))
            for name in heirs:
                prod_fit.setdefault(name, {})["appeal"] = round(typical, 4)
        return brand_fit, prod_fit

    def members(self, count: int, seed: int) -> list[dict[str, Any]]:
        """``count`` parameter sets drawn from the posterior, as scenario values by path.

        Each member holds every fitted value (:meth:`values` of the draw) as ``--set``-style
        paths, ready for a scenario's ``ensemble``. The draws come from their own generator
        (``seed``), so the same fit gives the same members.
        """
        trend = np.array([k == "trend" for k, _ in self.params])
        lower = np.where(trend, -TREND_BOUND, self.lower)
        upper = np.where(trend, TREND_BOUND, np.inf)
        draws = self.posterior.draw(count, np.random.default_rng(seed), lower=lower, upper=upper)
        out = []
        for theta in draws:
            brand_fit, prod_fit = self.values(theta)
            member: dict[str, Any] = {}
            for section, fitted in (("brands", brand_fit), ("products", prod_fit)):
                for name, fields in fitted.items():
                    for field, value in fields.items():
                        if field != "appeal_trend_until":
                            member[f"{section}.{name}.{field}"] = value
            out.append(member)
        return out

    def new_product_spread(self) -> tuple[float, int]:
        """Standard deviation (utils) of the fitted appeals of products with data, and their number.

        The spread of past launches' appeals around their brands' is what a product launched after
        the data may take: its appeal is drawn from it in a forecast (``uncertainty.new_product_appeal``).
        """
        appeals = np.array([v for (k, _), v in zip(self.params, self.theta, strict=True) if k == "product"])
        if appeals.size < 2:
            return 0.0, int(appeals.size)
        return float(np.sqrt(np.mean(appeals**2))), int(appeals.size)


def fit(
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
    kernel: str = "numba",
    product_prior: float = 0.0,
    ageing_prior: float = 0.0,
    log: Any = sys.stderr,
) -> AppealFit:
    """Fit brand and product appeals to reported volumes up to ``through`` (runs on the choice ``kernel``).

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
    # Quadratic priors, added to the weighted loss: TREND_PRIOR * trend**2 for each brand's trend;
    # partial pooling of the products toward their brand, product_prior * appeal**2 (a product's
    # appeal is its offset from its brand's) and ageing_prior * rate**2 (its life-cycle rate).
    kind_prior = {"trend": TREND_PRIOR, "product": product_prior, "ageing": ageing_prior}
    prior = np.array([kind_prior.get(k, 0.0) for k, _ in params], float)

    brand_products = {b: [p.name for p in base.products if p.brand == b] for b in brands}
    months = range(base.start_index, fit_end + 1)
    # How a parameter moves the log of a month's orders (see delivery_response).
    response = {
        "appeal": lambda f: 1.0,
        "age": lambda f: np.array([ages.get(key, 0.0) for key in zip(f["model"], f["m"], strict=True)]),
        "trend": lambda f: np.maximum(fit_end - f["m"], 0) / 12.0,
    }

    def evaluate(theta: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, list[float], float]:
        over: dict[str, Any] = {**fixed, "end": cut}
        for (kind, name), value in zip(params, theta, strict=True):
            section, field = PARAM_FIELDS[kind]
            over[f"{section}.{name}.{field}"] = float(value)
            if kind == "trend":
                over[f"brands.{name}.appeal_trend_until"] = cut
        for name in borrowed:
            over[f"products.{name}.ageing"] = median_rate(theta, is_ageing)
        per = replicate_monthly(load_scenario(path, over), replications, seed, scale, kernel)
        sim = delivery_response(per, months, response)
        r, got = residuals(targets, sim)
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
            units = max(float(target_rows(sim, t)["units"].sum()), 1.0)
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
    units = sim.groupby("model")["units"].sum()
    # A product launched after the cut-off has no data of its own: it is taken to be as appealing
    # as the brand's typical product, the mean of its fitted product appeals weighted by their
    # deliveries in sample (unless the scenario says otherwise with appeal_like).
    later = {}
    for b in brands:
        fitted = [n for n in prods if product_brand[n] == b]
        w = np.array([float(units.get(n, 0.0)) for n in fitted])
        heirs = [p.name for p in base.products if p.brand == b and p.name not in prods and not p.appeal_like]
        if fitted and w.sum() > 0 and heirs:
            later[b] = (fitted, w, heirs)
    return AppealFit(
        params=params, theta=theta, lower=np.where(is_ageing, 0.0, -np.inf), cut=cut, borrowed=borrowed,
        later=later, report=report, loss=loss, steps=it, evaluations=evaluations,
        posterior=laplace(theta, jacobian(sim, r), r, weights, prior), residuals=np.asarray(r, float),
        frequencies=[t.frequency for t in targets],
    )


def fit_appeals(path: str | Path, **options: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], pd.DataFrame]:
    """:func:`fit`'s values and report: ``(brand_fit, product_fit, report)`` (see :meth:`AppealFit.values`)."""
    result = fit(path, **options)
    brand_fit, product_fit = result.values()
    return brand_fit, product_fit, result.report


def write_overlay(
    out: str | Path,
    extends: str,
    name: str,
    brand_fit: dict[str, dict[str, Any]],
    product_fit: dict[str, dict[str, float]],
    report: pd.DataFrame,
    command: str,
    description: str = "",
    *,
    members: list[dict[str, Any]] | None = None,
    uncertainty: dict[str, Any] | None = None,
) -> None:
    """Write a scenario that extends ``extends`` and sets the fitted appeals.

    Args:
        members: parameter sets drawn from the fit's posterior (:meth:`AppealFit.members`),
            written as the scenario's ``ensemble`` (each run draws one); none: no ensemble.
        uncertainty: entries of the scenario's ``uncertainty`` section to set (the first month
            after the data, the spread of new products' appeal).
    """
    header = [
        "# Generated by the appeal fit (sim fit-appeals, sim/analysis/fit_appeals.py); do not edit by hand, rerun:",
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
    if uncertainty:
        doc["uncertainty"] = dict(uncertainty)
    if members:
        doc["ensemble"] = {
            "source": f"{command}: {len(members)} draws from the fit's Laplace posterior",
            "assign": "draw",
            "members": [{"set": m} for m in members],
        }
    text = "\n".join(header) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    Path(out).write_text(text)
