"""Batches: map runs over an executor and store each finished chunk as its own part.

Runs are grouped into chunks (so that short runs do not drown in overhead);
each chunk is executed in a worker and written by the parent as soon as it
returns, so the parent holds at most a few chunks in memory. Results do not
depend on the number of workers: replicate ``r`` always gets the same seed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import store
from .run import RunOutput, RunSpec, execute, sales_frame


def run_chunk(specs: list[RunSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Execute a chunk of runs; returns (runs rows, sales rows)."""
    outs = [execute(s) for s in specs]
    runs = pd.DataFrame([o.run for o in outs])
    sales = pd.concat([o.sales for o in outs], ignore_index=True) if outs else sales_frame({})
    return runs, sales


def chunked(specs: list[RunSpec], size: int) -> list[list[RunSpec]]:
    return [specs[i : i + size] for i in range(0, len(specs), size)]


class SerialExecutor(Executor):
    """Runs each task in the calling process, lazily (one at a time)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # pragma: no cover - run_chunk does not raise
            fut.set_exception(exc)
        return fut


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def make_executor(workers: int | None) -> Executor:
    """``workers`` = 1 runs in this process; more uses local processes."""
    n = default_workers() if workers is None else workers
    if n <= 1:
        return SerialExecutor()
    return ProcessPoolExecutor(max_workers=n)


@dataclass
class BatchReport:
    asked: int
    finished: int
    failed: int
    seconds: float


class Progress:
    """A progress line on a terminal (tqdm) or plain lines otherwise."""

    def __init__(self, total: int, label: str, enabled: bool = True):
        self.total, self.label, self.done, self.t0 = total, label, 0, time.perf_counter()
        self.enabled = enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=label, unit="run", file=sys.stderr)
            except ImportError:  # pragma: no cover
                self.bar = None
        self._last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= 5.0 or self.done == self.total:
            self._last = now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(f"{self.label}: {self.done}/{self.total} runs, {rate:.2f} runs/s, ETA {eta:.0f} s", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(
    specs: list[RunSpec],
    out: Path,
    manifest: dict[str, Any],
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
) -> BatchReport:
    """Execute ``specs`` and write their tables as parts of ``out``, then the manifest."""
    t0 = time.perf_counter()
    n_workers = default_workers() if workers is None else workers
    if chunk_size is None:
        chunk_size = max(1, min(20, len(specs) // (4 * max(n_workers, 1)) or 1))
    chunks = chunked(specs, chunk_size)
    manifest = dict(manifest)
    manifest.update({"asked": len(specs), "finished": 0, "failed": 0, "status": "running"})
    store.write_manifest(out, manifest)
    bar = Progress(len(specs), manifest.get("scenario_name", "runs"), progress)
    finished = failed = 0
    with make_executor(n_workers) as ex:
        for runs, sales in _results(ex, chunks):
            name = f"{int(runs['run_id'].min()):08d}"
            store.write_part(out, "sales", name, sales)
            store.write_part(out, "runs", name, runs)
            finished += len(runs)
            failed += int((runs["status"] != "ok").sum())
            bar.update(len(runs))
    bar.close()
    seconds = time.perf_counter() - t0
    manifest.update(
        {"finished": finished, "failed": failed, "status": "complete", "seconds": round(seconds, 3), "completed": store.now_utc()}
    )
    store.write_manifest(out, manifest)
    return BatchReport(len(specs), finished, failed, seconds)


def _results(ex: Executor, chunks: list[list[RunSpec]]) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield chunk results as they finish, keeping at most 2 x workers chunks in flight."""
    pending: set[Future[Any]] = set()
    it: Iterable[list[RunSpec]] = iter(chunks)
    window = max(2, 2 * getattr(ex, "_max_workers", 1))
    for chunk in it:
        pending.add(ex.submit(run_chunk, chunk))
        if len(pending) >= window:
            done = next(as_completed(pending))
            pending.discard(done)
            yield done.result()
    for fut in as_completed(pending):
        yield fut.result()


def collect(outputs: Iterable[RunOutput]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables of runs held in memory (for small in-process use and tests)."""
    outs = list(outputs)
    return pd.DataFrame([o.run for o in outs]), pd.concat([o.sales for o in outs], ignore_index=True)
