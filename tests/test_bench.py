"""The production choice-and-allocation path against the naive Mesa reference (benchmarks/naive.py).

Timing lives in ``sim bench``; here only correctness: on fixed draws the two serve every
buyer identically, and with independent draws their sales per product agree statistically.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from sim import market
from sim.bench import Population, load_naive, make_population
from sim.cli import main

naive = load_naive()

SEEDS = 40
Z_MAX = 3.5

# (nests, lambda): the baseline's one nest at 0.8, plain logit, and three nests.
RULES = [(1, 0.8), (1, 1.0), (3, 0.6)]


def _population(nests: int, lam: float, n: int = 2_000, j: int = 8) -> Population:
    pop = make_population(n, j, seed=7, nests=nests, nest_lambda=lam, binding=3, fill=0.6)
    assert np.isfinite(pop.limits).sum() == 3
    return pop


def _naive_model(pop: Population, seed: int, **draws: np.ndarray) -> object:
    return naive.NaiveMarket(pop.v, pop.available, pop.v0, pop.nest, pop.lam, pop.limits, seed=seed, **draws)


@pytest.mark.parametrize(("nests", "lam"), RULES)
def test_fixed_draws_equal_one_by_one_agents(nests: int, lam: float) -> None:
    """Same V, draws and serving order: serve_in_order equals the agents served one by one, buyer for buyer."""
    pop = _population(nests, lam)
    rng = np.random.default_rng(11)
    e = rng.standard_exponential(pop.v.shape, dtype=np.float32)
    e0 = rng.standard_exponential((pop.n_buyers, nests + 1), dtype=np.float32)
    model = _naive_model(pop, seed=3, e=e, e0=e0)
    model.step()
    order = np.asarray(model.served, np.intp)  # the order shuffle_do served the agents in
    assert sorted(order.tolist()) == list(range(pop.n_buyers))
    choice, closed = market.serve_in_order(pop.v, pop.available, pop.v0, pop.nest, pop.lam, e, e0, pop.limits, order)
    assert closed.sum() >= 2, "the limits should bind"
    mismatch = np.flatnonzero(choice != model.choice)
    assert mismatch.size == 0, f"{mismatch.size} buyers differ, first {mismatch[:10].tolist()}"
    sales = np.bincount(choice[choice >= 0], minlength=pop.n_products)
    assert np.all(sales <= pop.limits)


def _z_scores(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """Per-option z of the difference of means of independent samples (0 where both never vary)."""
    n = fast.shape[0]
    se = np.sqrt(fast.var(axis=0, ddof=1) / n + slow.var(axis=0, ddof=1) / n)
    diff = fast.mean(axis=0) - slow.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.inf))


@pytest.mark.parametrize(("nests", "lam"), RULES)
def test_sales_agree_statistically_over_seeds(nests: int, lam: float) -> None:
    """Per-product sales (and the outside option) over 40 seeds: no |z| beyond 3.5, independent draws."""
    pop = _population(nests, lam)
    j = pop.n_products
    fast = np.empty((SEEDS, j + 1))
    slow = np.empty((SEEDS, j + 1))
    for s in range(SEEDS):
        rng = np.random.default_rng([1, s])
        e = rng.standard_exponential(pop.v.shape, dtype=np.float32)
        e0 = rng.standard_exponential((pop.n_buyers, nests + 1), dtype=np.float32)
        choice, _ = market.serve_in_order(
            pop.v, pop.available, pop.v0, pop.nest, pop.lam, e, e0, pop.limits, rng.permutation(pop.n_buyers)
        )
        fast[s] = np.bincount(choice + 1, minlength=j + 1)[np.r_[1 : j + 1, 0]]
        model = _naive_model(pop, seed=10_000 + s)
        model.step()
        slow[s] = np.append(model.sales(), np.sum(model.choice < 0))
    z = _z_scores(fast, slow)
    listing = ", ".join(f"{'outside' if i == j else f'product {i}'}: z={v:+.2f}" for i, v in enumerate(z))
    print(f"z-scores ({nests} nest(s), lambda {lam}): {listing}")
    assert np.all(np.abs(z) <= Z_MAX), f"sales differ beyond |z| = {Z_MAX}: {listing}"
    # The binding limits are reached by both paths in every seed.
    bound = np.flatnonzero(np.isfinite(pop.limits))
    assert np.all(fast[:, bound] == pop.limits[bound]) and np.all(slow[:, bound] == pop.limits[bound])


def test_bench_json_smoke() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["bench", "--json", "--buyers", "2000", "--repeat", "1"])
    assert status == 0
    doc = json.loads(out.getvalue())
    for key in ("naive_us", "fast_us", "floor_us", "n_buyers", "n_products"):
        assert doc[key] > 0, key
    assert doc["n_buyers"] == 2000 and doc["n_products"] == 60
    assert [s["n_buyers"] for s in doc["sizes"]] == [2000]
    assert all(s[k] > 0 for s in doc["sizes"] for k in ("naive_us", "fast_us", "floor_us"))
