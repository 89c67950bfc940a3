"""Chunks of runs: what a worker executes, and how many runs go in one task.

A chunk is a list of run specs executed one after the other in one worker
(:func:`run_chunk`), so that short runs do not drown in task overhead. Chunking
never changes results: run ``r`` always gets the same seed identity, and
:func:`sim.runs.store.read_table` sorts rows by run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import pandas as pd
from threadpoolctl import threadpool_limits

from sim.runs import store
from sim.runs.run import RunOutput, RunSpec, empty_sales, execute

#: Largest adaptive chunk, in runs.
MAX_CHUNK = 100
#: Work an adaptive chunk aims at, in seconds of run time.
CHUNK_SECONDS = 10.0
#: BLAS/OpenMP threads of a run (see :func:`run_chunk`).
BLAS_THREADS = 1


def run_chunk(specs: list[RunSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Execute a chunk of runs with one BLAS thread; returns (runs rows, sales rows).

    One thread, whatever the executor: a multi-threaded BLAS may sum in another
    order and flip a buyer's choice (seen on the baseline: one cell in 12 runs), and
    Dask workers are single-threaded anyway; a worker process is a core, so more
    threads would only oversubscribe the machine. Runs of a sweep carry their design
    ``point``; :func:`run_batch` adds the parameter columns from the design table.
    """
    with threadpool_limits(BLAS_THREADS):
        outs = [execute(s) for s in specs]
    rows = []
    for spec, out in zip(specs, outs, strict=True):
        row = dict(out.run)
        if spec.point is not None:
            row["point"] = spec.point
        rows.append(row)
    runs = pd.DataFrame(rows)
    sales = pd.concat([o.sales for o in outs], ignore_index=True) if outs else empty_sales()
    return runs, sales


def run_chunk_encoded(specs: list[RunSpec]) -> tuple[pd.DataFrame, bytes]:
    """:func:`run_chunk`, the sales rows returned as the bytes of their Parquet part (:func:`sim.runs.store.encode_part`).

    What a batch's worker sends back: the part the parent writes as it is, about a hundredth of the
    size of the rows pickled, so the parent neither unpickles nor encodes them and holds little while
    chunks are in flight. The file is the one the parent would write from the rows.
    """
    runs, sales = run_chunk(specs)
    return runs, store.encode_part(sales)


def with_design(runs: pd.DataFrame, design: pd.DataFrame | None) -> pd.DataFrame:
    """Add the design table's ``param:<path>`` columns to runs rows, by ``point``."""
    if design is None or "point" not in runs.columns:
        return runs
    params = design[["point", *(c for c in design.columns if c.startswith("param:"))]]
    return runs.merge(params, on="point", how="left", sort=False, validate="many_to_one")


def chunked(specs: Sequence[RunSpec], size: int) -> list[list[RunSpec]]:
    """Fixed-size chunks of ``specs``."""
    return [list(specs[i : i + size]) for i in range(0, len(specs), size)]


class ChunkSizer:
    """Chunk sizes from the run times seen so far.

    Without ``fixed``, the first chunks hold one run each (to learn how long a run
    takes); later ones about :data:`CHUNK_SECONDS` of work, at most :data:`MAX_CHUNK`
    runs, and at most half a round of the remaining runs per worker so that the
    tail keeps every worker busy. Chunking never changes results.
    """

    def __init__(self, slots: int, fixed: int | None = None):
        self.slots, self.fixed = max(1, slots), fixed
        self.runs, self.seconds = 0, 0.0

    def observe(self, runs: pd.DataFrame) -> None:
        self.runs += len(runs)
        self.seconds += float(runs["seconds"].sum())

    def size(self, remaining: int) -> int:
        if self.fixed is not None:
            return self.fixed
        if self.runs == 0:
            return 1
        per_run = self.seconds / self.runs
        want = int(CHUNK_SECONDS / max(per_run, 1e-6))
        balance = math.ceil(remaining / (2 * self.slots))
        return max(1, min(MAX_CHUNK, want, balance))


def iter_chunks(specs: Sequence[RunSpec], sizer: ChunkSizer) -> Iterator[list[RunSpec]]:
    """Chunks of ``specs`` in order, each sized when it is needed."""
    i = 0
    while i < len(specs):
        n = sizer.size(len(specs) - i)
        yield list(specs[i : i + n])
        i += n



def collect(outputs: Iterable[RunOutput]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables of runs held in memory (for small in-process use and tests)."""
    outs = list(outputs)
    return pd.DataFrame([o.run for o in outs]), pd.concat([o.sales for o in outs], ignore_index=True)
