"""What a run will ask of the machine, estimated before it starts: buyer agents a month and memory.

A run's cost is set by its buyer agents: the buyers arriving in a month divided by the scale
(real buyers per agent), plus those who wait for a later month. :func:`peak_agents` bounds
that number from the scenario alone (no model is built), and :func:`check_agents` refuses,
with a message that says what to change, a run that would have no buyer agent at all or more
than :data:`MAX_AGENTS_PER_MONTH`, and a batch whose runs at once would not fit in the
machine's memory (they would end in ``MemoryError``, or a machine swapping for hours).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from sim.model import market
from sim.runs.run import RunSpec
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

#: Most buyer agents a run may hold in one month (arrivals and those waiting): about 6 GB of memory.
MAX_AGENTS_PER_MONTH = 20_000_000
#: Memory of one buyer agent of the month, bytes (measured: about 250 with the compiled kernel,
#: on 3 and on 65 products); the numpy kernel adds a buyers x products matrix (:data:`BYTES_PER_CHOICE`).
BYTES_PER_AGENT = 300
#: Bytes per buyer and product of the numpy kernel's matrices (measured: about 13 on 65 products).
BYTES_PER_CHOICE = 16
#: Share of the machine's memory a batch's concurrent runs may plan to use.
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class Peak:
    """The busiest month of a run: its month, the real buyers who arrive, the agents it holds."""

    month: str
    buyers: float
    agents: float


def peak_agents(scenario: Scenario, scale: float | None = None) -> Peak:
    """The month with most buyer agents, an upper bound: arrivals / scale, plus every buyer who chooses
    the outside option waiting up to ``max_defer_months`` (a share ``defer_share`` a month)."""
    s = float(scenario.scale if scale is None else scale)
    b = scenario.buyers
    carry = sum(b.defer_share**k for k in range(b.max_defer_months + 1))
    best = Peak(scenario.start, 0.0, 0.0)
    for mi in range(parse_month(scenario.start), parse_month(scenario.end) + 1):
        year, mon = mi // 12, mi % 12 + 1
        buyers = 0.0
        for mk in scenario.markets:
            sea = mk.seasonality
            season = market.seasonality_factor(year, mon, sea.monthly, sea.lunar_new_year, sea.lunar_new_year_depth,
                                               sea.lunar_new_year_window_days)  # fmt: skip
            buyers += market.expected_arrivals(mk.buyers_per_month, mi - parse_month(mk.reference_month),
                                               mk.growth_per_year, mk.growth.get(str(year), 1.0), season)  # fmt: skip
        if buyers > best.buyers:
            best = Peak(format_month(mi), buyers, buyers * carry / s)
    return best


def physical_memory() -> int | None:
    """This machine's memory, bytes (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def run_bytes(scenario: Scenario, agents: float, kernel: str = "numba") -> float:
    """Memory a run holding ``agents`` buyer agents needs, bytes (beyond the interpreter's)."""
    per = BYTES_PER_AGENT + (BYTES_PER_CHOICE * (len(scenario.products) + 1) if kernel == "numpy" else 0)
    return agents * per


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_agents(scenario: Scenario, scale: float | None = None, *, workers: int = 1, kernel: str = "numba",
                 option: str = "--scale") -> Peak:  # fmt: skip
    """Refuse runs of ``scenario`` at ``scale`` that would have no buyer agent, too many, or not fit in memory.

    Args:
        workers: runs held in memory at once (a batch's worker processes).
        option: what sets the scale, for the message (``--scale``, or a sweep file's ``scale``).

    Returns:
        The busiest month (:func:`peak_agents`).

    Raises:
        InputError: what is wrong and what to change.
    """
    s = float(scenario.scale if scale is None else scale)
    peak = peak_agents(scenario, s)
    if peak.buyers > 0 and peak.buyers / s < 1:
        raise InputError(
            f"{option} {s:g}: the busiest month ({peak.month}) has {peak.buyers:,.0f} buyers, fewer than one buyer "
            f"agent at this scale, so the runs would have no buyers; use a scale below {peak.buyers:,.0f}"
        )
    if peak.agents > MAX_AGENTS_PER_MONTH:
        raise InputError(
            f"{option} {s:g}: the busiest month ({peak.month}) would hold up to {peak.agents:,.0f} buyer agents, more "
            f"than the limit of {MAX_AGENTS_PER_MONTH:,} a month (about {_gb(run_bytes(scenario, MAX_AGENTS_PER_MONTH, kernel))} "
            f"of memory); use a scale of at least {s * peak.agents / MAX_AGENTS_PER_MONTH:.3g}"
        )
    memory = physical_memory()
    need = run_bytes(scenario, peak.agents, kernel) * max(1, workers)
    if memory is not None and need > MEMORY_SHARE * memory:
        raise InputError(
            f"{option} {s:g}: {max(1, workers)} run(s) at once of up to {peak.agents:,.0f} buyer agents a month need "
            f"about {_gb(need)} of memory; this machine has {_gb(memory)}; use a larger scale or fewer --workers"
        )
    return peak


def check_specs(specs: Iterable[RunSpec], workers: int = 1) -> None:
    """:func:`check_agents` for each scenario and scale of a batch's runs (their overrides aside: a sweep
    checks its points' scenarios when it loads)."""
    seen: set[tuple[int, float | None]] = set()
    for spec in specs:
        key = (id(spec.scenario), spec.scale)
        if key not in seen:
            seen.add(key)
            check_agents(spec.scenario, spec.scale, workers=workers, kernel=spec.kernel)


#: Memory of ``sim bench`` per buyer and product, bytes: the utilities and availability, the numpy
#: path's draws, the floor's matrix and its buffer, and their temporaries.
BENCH_BYTES_PER_CHOICE = 48


def check_bench(buyers: int, products: int) -> None:
    """Refuse a ``sim bench`` population (``buyers x products``) that would not fit in memory.

    Raises:
        InputError: with the memory it needs and the machine's.
    """
    need = BENCH_BYTES_PER_CHOICE * buyers * (products + 1)
    memory = physical_memory()
    if memory is not None and need > MEMORY_SHARE * memory:
        raise InputError(
            f"--buyers {buyers:,} x --products {products:,}: the population needs about {_gb(need)} of memory; this "
            f"machine has {_gb(memory)}; measure fewer buyers (the cost per decision hardly depends on them)"
        )
