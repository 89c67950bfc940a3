"""The choice-and-allocation paths against the naive Mesa reference (benchmarks/naive.py).

Timing lives in ``sim bench``; here only correctness. The numpy path draws as the naive
agents do (Gumbel-max with Exp(1) draws): on fixed draws the two serve every buyer
identically. The compiled kernel (the production path) draws the same law differently
(inverse CDF, draws again from the residual law): its sales per product agree with the naive
agents' statistically, as the numpy path's do.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json

import numpy as np
import pytest

from sim.cli import main
from sim.model import kernel, market
from sim.runs.bench import Population, load_naive, make_population, serve_month

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


def _sales(choice: np.ndarray, j: int) -> np.ndarray:
    """Orders of products 0..J-1 and (last) buyers taking the outside option."""
    return np.bincount(np.asarray(choice) + 1, minlength=j + 1)[np.r_[1 : j + 1, 0]]


@functools.cache
def _naive_sales_of(nests: int, lam: float) -> np.ndarray:
    """The naive agents' sales on the population of a rule (computed once: the slowest part of these tests)."""
    return _naive_sales(_population(nests, lam), SEEDS)


def _naive_sales(pop: Population, seeds: int) -> np.ndarray:
    out = np.empty((seeds, pop.n_products + 1))
    for s in range(seeds):
        model = _naive_model(pop, seed=10_000 + s)
        model.step()
        out[s] = np.append(model.sales(), np.sum(model.choice < 0))
    return out


def _numpy_sales(pop: Population, seeds: int) -> np.ndarray:
    out = np.empty((seeds, pop.n_products + 1))
    for s in range(seeds):
        rng = np.random.default_rng([1, s])
        e = rng.standard_exponential(pop.v.shape, dtype=np.float32)
        e0 = rng.standard_exponential((pop.n_buyers, pop.lam.size + 1), dtype=np.float32)
        choice, _ = market.serve_in_order(
            pop.v, pop.available, pop.v0, pop.nest, pop.lam, e, e0, pop.limits, rng.permutation(pop.n_buyers)
        )
        out[s] = _sales(choice, pop.n_products)
    return out


def _kernel_sales(pop: Population, seeds: int) -> np.ndarray:
    out = np.empty((seeds, pop.n_products + 1))
    for s in range(seeds):
        choice, _ = serve_month(pop, np.random.default_rng([2, s]))
        out[s] = _sales(choice, pop.n_products)
    return out


def _assert_agree(label: str, pop: Population, a: np.ndarray, b: np.ndarray) -> None:
    """No product (nor the outside option) beyond |z| = 3.5; the binding limits reached in every seed by both."""
    j = pop.n_products
    z = _z_scores(a, b)
    listing = ", ".join(f"{'outside' if i == j else f'product {i}'}: z={v:+.2f}" for i, v in enumerate(z))
    print(f"z-scores, {label}: {listing}")
    assert np.all(np.abs(z) <= Z_MAX), f"{label}: sales differ beyond |z| = {Z_MAX}: {listing}"
    bound = np.flatnonzero(np.isfinite(pop.limits))
    assert np.all(a[:, bound] == pop.limits[bound]) and np.all(b[:, bound] == pop.limits[bound])


@pytest.mark.parametrize(("nests", "lam"), RULES)
def test_numpy_path_sales_agree_with_the_naive_agents_over_seeds(nests: int, lam: float) -> None:
    """Per-product sales (and the outside option) over 40 seeds: no |z| beyond 3.5, independent draws."""
    pop = _population(nests, lam)
    _assert_agree(f"numpy path vs naive, {nests} nest(s), lambda {lam}", pop, _numpy_sales(pop, SEEDS), _naive_sales_of(nests, lam))


@pytest.mark.parametrize(("nests", "lam"), RULES)
def test_compiled_kernel_sales_agree_with_the_naive_agents_over_seeds(nests: int, lam: float) -> None:
    """The production path: per-product sales over 40 seeds against the naive agents, no |z| beyond 3.5."""
    pop = _population(nests, lam)
    _assert_agree(f"kernel vs naive, {nests} nest(s), lambda {lam}", pop, _kernel_sales(pop, SEEDS), _naive_sales_of(nests, lam))


@pytest.mark.parametrize(("nests", "lam"), RULES)
def test_compiled_kernel_and_numpy_fallback_agree_over_seeds(nests: int, lam: float) -> None:
    """The fallback is the same law: its sales and the kernel's agree over 40 seeds."""
    pop = _population(nests, lam)
    _assert_agree(f"kernel vs numpy path, {nests} nest(s), lambda {lam}", pop, _kernel_sales(pop, SEEDS), _numpy_sales(pop, SEEDS))


def test_compiled_kernel_serves_the_naive_agents_queue_one_by_one() -> None:
    """The kernel on the serving order of the naive agents' shuffle_do: what it allocates equals its rule applied
    one buyer at a time in that order, and every sold-out product took exactly its limit."""
    pop = _population(3, 0.6, n=600)
    model = _naive_model(pop, seed=5)
    model.step()
    order = np.asarray(model.served, np.int64)
    u = np.random.default_rng(6).random((pop.n_buyers, 4))
    args = (pop.v, pop.available, pop.v0, pop.nest.astype(np.int64), pop.lam.astype(float))
    limits = np.where(np.isfinite(pop.limits), pop.limits, pop.n_buyers + 1).astype(np.int64)
    choice, closed = kernel.serve_matrix(*args, limits, np.uint64(0), order, u)
    is_open = limits > 0
    taken = np.zeros(pop.n_products, np.int64)
    for r in order:
        row = slice(r, r + 1)
        c = int(kernel.choose_rows(pop.v[row], pop.available[row], pop.v0[row], *args[3:], limits > 0, is_open, u[row])[0])
        assert c == choice[r], f"buyer {r}"
        if c >= 0:
            taken[c] += 1
            is_open[c] = taken[c] < limits[c]
    assert closed.sum() >= 2 and np.all(taken[closed] == limits[closed])


def test_bench_json_smoke() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["bench", "--json", "--buyers", "2000", "--repeat", "1"])
    assert status == 0
    doc = json.loads(out.getvalue())
    for key in ("naive_us", "fast_us", "floor_us", "numpy_us", "n_buyers", "n_products"):
        assert doc[key] > 0, key
    assert doc["n_buyers"] == 2000 and doc["n_products"] == 60
    assert [s["n_buyers"] for s in doc["sizes"]] == [2000]
    assert all(s[k] > 0 for s in doc["sizes"] for k in ("naive_us", "fast_us", "numpy_us", "floor_us"))
    assert doc["machine"]["numba"]
