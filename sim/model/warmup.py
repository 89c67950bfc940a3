"""Compile the numba choice kernel ahead of the first real run (``sim warmup``, ``sim.warmup()``).

numba compiles :mod:`sim.model.kernel` on first use and caches the machine code on disk
(``cache=True``): beside the module (``sim/model/__pycache__``, in a checkout or a
non-editable install) or, where that folder cannot be written, in numba's user-wide cache
(``NUMBA_CACHE_DIR``, else ``~/.cache/numba``). The first run after installing therefore pays the
compilation (15-45 s), every later process loads it (about a second). :func:`warmup` pays it
now: it runs two months of the shipped baseline at a coarse scale, which calls every entry point
of the kernel with the argument types of real runs, and says whether the code was compiled or
loaded from the cache, and where the cache is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

from sim.scenario.months import format_month

#: Real buyers per buyer agent of the warm-up run (coarse: the types, not the numbers, matter).
WARMUP_SCALE = 2000.0
#: Months the warm-up run simulates (the second month is the first to keep buyers from the first).
WARMUP_MONTHS = 2


@dataclass(frozen=True)
class WarmupReport:
    """What :func:`warmup` did.

    Attributes:
        seconds: wall time of the warm-up run, compilation or cache loading included.
        compiled: compiled functions (signatures) numba found in no cache.
        loaded: compiled functions numba loaded from its cache.
        cache: the folder of the cache (None if numba reports none).
    """

    seconds: float
    compiled: int
    loaded: int
    cache: str | None

    def summary(self) -> str:
        """One line for people: what happened, how long it took, where the cache is."""
        if self.compiled:
            what = f"compiled the numba kernel ({self.compiled} functions) in {self.seconds:.1f} s"
        else:
            what = f"the numba kernel was already compiled: {self.loaded} functions loaded from the cache in {self.seconds:.1f} s"
        return what + (f"; cache: {self.cache}" if self.cache else "")


def warmup() -> WarmupReport:
    """Compile (or load from numba's cache) the choice kernel by a short run of the shipped baseline.

    Raises:
        InputError: numba is not installed (the numpy kernel needs no warm-up).
    """
    from sim.model.kernels import resolve_kernel

    resolve_kernel("numba")
    from sim.model import kernel as compiled
    from sim.model.market_model import MarketModel
    from sim.scenario.load import load_scenario

    before = _counts(compiled)
    t0 = time.perf_counter()
    base = load_scenario("baseline")
    end = format_month(base.start_index + WARMUP_MONTHS - 1)
    model = MarketModel(base, seed=0, scale=WARMUP_SCALE, kernel="numba", end=end)
    model.run()
    seconds = time.perf_counter() - t0
    after = _counts(compiled)
    return WarmupReport(seconds, after[0] - before[0], after[1] - before[1], _cache_folder(compiled))


def _dispatchers(module: ModuleType) -> list[object]:
    """The numba-compiled functions of ``module`` (those with compile statistics)."""
    return [f for f in vars(module).values() if hasattr(f, "stats") and hasattr(f, "py_func")]


def _counts(module: ModuleType) -> tuple[int, int]:
    """Signatures compiled anew and loaded from the cache so far, over ``module``'s compiled functions."""
    misses = hits = 0
    for f in _dispatchers(module):
        stats = f.stats  # type: ignore[attr-defined]
        misses += sum(stats.cache_misses.values())
        hits += sum(stats.cache_hits.values())
    return misses, hits


def _cache_folder(module: ModuleType) -> str | None:
    for f in _dispatchers(module):
        path = f.stats.cache_path  # type: ignore[attr-defined]
        if path:
            return str(path)
    return None
