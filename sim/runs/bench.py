"""``sim bench``: microseconds per buyer-decision of the naive reference, the production path and the floor.

Measured in one process, on one fixed random population per size (buyers x products
utilities, availability, outside utilities, nests, order limits that bind for a few
products):

* **naive**: ``benchmarks/naive.py``, one Mesa agent per buyer and one Python ``step()``
  each, driven by ``shuffle_do``. Its cost per decision is linear in the number of
  buyers, so above ``--naive-max`` buyers a subsample (the first buyers, with the order
  limits scaled down in proportion) is timed, and the table says so. Creating the agents
  is not timed.
* **fast**: the production path, the compiled kernel (:func:`sim.model.kernel.serve`: first
  choices by inverse CDF, then service in a random order with draws again for buyers who
  meet a closed product), on the whole population, its random numbers included.
* **numpy**: the numpy fallback of the same law (:func:`sim.model.market.serve_in_order`, with
  ``Exp(1)`` draws per buyer and product, per buyer and nest, and the serving order), for
  reference.
* **floor**: numpy float32 ``exp`` of the buyers x (products + outside option) matrix
  (into a preallocated buffer) plus ``argmax`` along the options.

Each figure is the median of ``--repeat`` timings of CPU time (``time.process_time``; all
three paths run on one thread), so that other processes on a shared machine do not count;
on an idle machine it equals the wall time. The figures belong in BENCHMARKS.md with the
command and the machine.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sim.model import market

DEFAULT_BUYERS = (10_000, 100_000, 500_000)
NAIVE_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "naive.py"


@dataclass(frozen=True)
class Population:
    """One month's buyers facing the offered products: the inputs of the choice.

    Attributes:
        v: systematic utility, buyers x products (utils), float32.
        available: which products each buyer may choose, buyers x products.
        v0: utility of the outside option per buyer (utils), float32.
        nest: nest (0..K-1) of each product.
        lam: nesting parameter of each nest (one nest with 1.0 = plain logit), float32.
        limits: orders each product may take this month (units; ``inf`` = no limit).
    """

    v: NDArray[np.float32]
    available: NDArray[np.bool_]
    v0: NDArray[np.float32]
    nest: NDArray[np.intp]
    lam: NDArray[np.float32]
    limits: NDArray[np.float64]

    @property
    def n_buyers(self) -> int:
        return int(self.v.shape[0])

    @property
    def n_products(self) -> int:
        return int(self.v.shape[1])

    def head(self, n: int) -> Population:
        """The first ``n`` buyers, with the order limits scaled to their share of the population."""
        share = n / self.n_buyers
        return replace(
            self,
            v=self.v[:n],
            available=self.available[:n],
            v0=self.v0[:n],
            limits=np.floor(self.limits * share),
        )


def make_population(
    n_buyers: int,
    n_products: int,
    seed: int,
    nests: int = 1,
    nest_lambda: float = 0.8,
    binding: int = 3,
    fill: float = 0.6,
) -> Population:
    """A fixed random population whose order limits bind for a few products.

    Utilities are a product quality plus buyer-specific taste (standard normal, utils);
    each buyer is offered about 70% of the products; the outside option takes about half
    of the buyers. The ``binding`` products most demanded without limits get a limit of
    ``fill`` times that demand; the others have none.

    Args:
        n_buyers: buyers (people).
        n_products: products offered.
        seed: seed of the population (and of the pilot draws that size the limits).
        nests: number of nests; product j is in nest ``j % nests``.
        nest_lambda: nesting parameter of every nest (1 with one nest: plain logit).
        binding: products whose limit binds.
        fill: limit of a binding product as a share of its unconstrained demand.
    """
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.0, 1.0, n_products).astype(np.float32)
    v = rng.standard_normal((n_buyers, n_products), dtype=np.float32)
    v += quality[None, :]
    available = rng.random((n_buyers, n_products), dtype=np.float32) < 0.7
    v0 = (rng.standard_normal(n_buyers, dtype=np.float32) + np.float32(3.0)).astype(np.float32)
    nest = (np.arange(n_products) % nests).astype(np.intp)
    lam = np.full(nests, nest_lambda, np.float32)
    e = rng.standard_exponential((n_buyers, n_products), dtype=np.float32)
    e0 = rng.standard_exponential((n_buyers, nests + 1), dtype=np.float32)
    choice = market.choose(v, available, v0, nest, lam, e, e0)
    del e, e0
    demand = np.bincount(choice[choice >= 0], minlength=n_products).astype(float)
    limits = np.full(n_products, np.inf)
    top = np.argsort(-demand, kind="stable")[:binding]
    limits[top] = np.floor(fill * demand[top])
    return Population(v, available, v0, nest, lam, limits)


def load_naive() -> ModuleType:
    """The naive reference, ``benchmarks/naive.py`` of the source tree (not part of the package)."""
    if not NAIVE_PATH.is_file():
        raise FileNotFoundError(f"the naive reference {NAIVE_PATH} is missing: sim bench runs from a source checkout")
    spec = importlib.util.spec_from_file_location("sim_naive_reference", NAIVE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def serve_month(pop: Population, rng: np.random.Generator) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """The production path for one month: the compiled kernel, its draws from one key taken from ``rng``."""
    from sim.model import kernel

    return kernel.serve(pop.v, pop.available, pop.v0, pop.nest, pop.lam, pop.limits, rng)


def serve_month_numpy(pop: Population, rng: np.random.Generator) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """The numpy path for one month: the draws as the model makes them, then :func:`sim.model.market.serve_in_order`."""
    n, j = pop.v.shape
    e = rng.standard_exponential((n, j), dtype=np.float32)
    e0 = rng.standard_exponential((n, pop.lam.size + 1), dtype=np.float32)
    order = rng.permutation(n)
    return market.serve_in_order(pop.v, pop.available, pop.v0, pop.nest, pop.lam, e, e0, pop.limits, order)


def _median_seconds(fn: Any, repeat: int) -> float:
    """Median CPU time of ``fn(r)`` for ``r < repeat``: this process's time, not the other processes' load."""
    times = []
    for r in range(repeat):
        t0 = time.process_time()
        fn(r)
        times.append(time.process_time() - t0)
    return statistics.median(times)


def bench_size(
    n_buyers: int,
    n_products: int,
    repeat: int,
    naive_max: int,
    seed: int = 20261121,
    nests: int = 1,
    nest_lambda: float = 0.8,
) -> dict[str, Any]:
    """Microseconds per buyer-decision of the three paths on one population of ``n_buyers``."""
    pop = make_population(n_buyers, n_products, seed, nests=nests, nest_lambda=nest_lambda)

    closed: list[int] = []

    def fast(r: int) -> None:
        _, shut = serve_month(pop, np.random.default_rng([seed, r]))
        closed.append(int(shut.sum()))

    serve_month(pop.head(min(n_buyers, 1000)), np.random.default_rng(0))  # compiled code loaded (or compiled) before timing
    fast_s = _median_seconds(fast, repeat)
    numpy_s = _median_seconds(lambda r: serve_month_numpy(pop, np.random.default_rng([seed, r])), repeat)

    x = np.concatenate([pop.v, pop.v0[:, None]], axis=1)
    buf = np.empty_like(x)

    def floor(r: int) -> None:
        np.exp(x, out=buf)
        buf.argmax(axis=1)

    floor_s = _median_seconds(floor, repeat)

    naive = load_naive()
    n_naive = min(n_buyers, naive_max)
    sub = pop.head(n_naive)
    t0 = time.perf_counter()
    model = naive.NaiveMarket(sub.v, sub.available, sub.v0, sub.nest, sub.lam, sub.limits, seed=seed)
    create_s = time.perf_counter() - t0
    naive_s = _median_seconds(lambda r: model.step(), repeat)

    return {
        "n_buyers": n_buyers,
        "n_products": n_products,
        "naive_buyers": n_naive,
        "naive_us": 1e6 * naive_s / n_naive,
        "naive_create_us": 1e6 * create_s / n_naive,
        "fast_us": 1e6 * fast_s / n_buyers,
        "numpy_us": 1e6 * numpy_s / n_buyers,
        "floor_us": 1e6 * floor_s / n_buyers,
        "products_closed": int(statistics.median(closed)),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": _version("numba"),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_average": load,
    }


def format_table(sizes: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table, one row per size."""
    rows = [
        "| buyers | naive timed on | naive us | fast us | numpy us | floor us | naive / fast | fast / floor | limits bound |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in sizes:
        sample = f"{s['naive_buyers']:,}" + (" (subsample)" if s["naive_buyers"] < s["n_buyers"] else "")
        rows.append(
            f"| {s['n_buyers']:,} | {sample} | {s['naive_us']:.2f} | {s['fast_us']:.3f} | {s['numpy_us']:.3f} "
            f"| {s['floor_us']:.3f} | {s['naive_us'] / s['fast_us']:.0f}x | {s['fast_us'] / s['floor_us']:.2f}x "
            f"| {s['products_closed']} |"
        )
    return "\n".join(rows)
