"""Batches: map runs over an executor and store each finished chunk as its own part.

Runs are grouped into chunks (:mod:`sim.runs.chunks`; so that short runs do not drown
in overhead); each chunk is executed in a worker (:mod:`sim.runs.executors`), which
encodes its sales part (:func:`sim.runs.chunks.run_chunk_encoded`), and written by the
parent as soon as it returns, so the parent holds at most ``2 x workers`` chunks in
memory whatever the number of runs. After every chunk the
manifest is rewritten (atomically) with what finished and what failed, so a batch
killed at any moment leaves a truthful folder that ``resume=True`` continues. A write
that fails (disk full, read-only folder) stops the batch with an ``OSError`` that says
what is stored; the parts already written stay whole, and ``resume=True`` continues.

Results do not depend on the executor, the number of workers or the chunking:
run ``r`` always gets the same seed identity, and :func:`sim.runs.store.read_table`
sorts rows by run. Common random numbers: two batches with the same root seed
give replicate ``r`` the same random stream, whatever their scenarios.
"""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.runs import lock, store
from sim.runs.chunks import BLAS_THREADS, ChunkSizer, iter_chunks, run_chunk_encoded, with_design
from sim.runs.chunks import collect as collect  # sim.analysis.fit_appeals imports it from here
from sim.runs.chunks import run_chunk as run_chunk  # sim.api imports it from here
from sim.runs.executors import executor_slots, make_executor
from sim.runs.progress import Progress
from sim.runs.run import RunSpec
from sim.scenario.yamlio import InputError

#: Most failed run ids listed in the manifest (the runs table has them all).
MAX_LISTED_FAILURES = 1000
#: Most runs in one batch (a guard against a mistyped replication count or design size).
MAX_RUNS = 1_000_000
#: Manifest fields rewritten after every chunk.
PROGRESS_KEYS = (
    "status", "asked", "finished", "failed", "pending", "failed_run_ids", "parts", "updated",
    "seconds", "completed", "abort_reason",
)


@dataclass
class BatchReport:
    asked: int
    finished: int
    failed: int
    seconds: float
    skipped: int = 0


# ---------------------------------------------------------------------- batch


def check_resumable(out: Path, new: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse to resume a folder that holds a different batch; returns its manifest (None if it has none).

    Compares the manifests' ``request`` entries (scenario hash, seed, replications,
    scale, design...) and the choice kernel; executor, workers and chunking may change between
    sessions.
    """
    if not (out / store.MANIFEST).is_file():
        return None
    old = store.read_manifest(out)
    old_req = old.get("request")
    new_req = json.loads(json.dumps(new.get("request") or {}, default=str))  # as the manifest stores it
    if old_req is None:
        raise InputError(f"{out}: the manifest does not say what was asked (written by an older sim); cannot resume")
    keys = sorted(set(old_req) | set(new_req))
    diffs = [f"{k}: stored {old_req.get(k)!r}, asked {new_req.get(k)!r}" for k in keys if old_req.get(k) != new_req.get(k)]
    if old.get("kernel") and new.get("kernel") and old["kernel"] != new["kernel"]:  # older folders do not say
        diffs.append(f"kernel: stored {old['kernel']!r}, asked {new['kernel']!r}")
    if diffs:
        raise InputError(
            f"{out}: cannot resume: the folder holds a different batch "
            "(use another --out, or --force to replace it):\n  " + "\n  ".join(diffs)
        )
    return old


@dataclass
class _State:
    """Counters of a batch, as the manifest shows them."""

    asked: int
    finished: int = 0
    failed: int = 0
    failed_ids: list[int] = field(default_factory=list)
    parts: int = 0


def _progress(st: _State, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "asked": st.asked,
        "finished": st.finished,
        "failed": st.failed,
        "pending": st.asked - st.finished,
        "failed_run_ids": st.failed_ids[:MAX_LISTED_FAILURES],
        "parts": st.parts,
        "updated": store.now_utc(),
        **extra,
    }


def run_batch(
    specs: Sequence[RunSpec],
    out: Path,
    manifest: dict[str, Any],
    *,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    executor: str = "processes",
    resume: bool = False,
    design: pd.DataFrame | None = None,
) -> BatchReport:
    """Execute ``specs`` and write their tables as parts of ``out``, updating the manifest per chunk.

    Args:
        specs: the runs asked for (run ids unique).
        out: a results folder from :func:`sim.runs.store.prepare_output`.
        manifest: what was asked (:func:`sim.runs.manifest.new_manifest`); its ``request`` entry
            identifies the batch for ``resume``. The batch adds its runs' choice kernel and how it ran.
        workers: worker processes (default: all cores).
        chunk_size: runs per task (default: adaptive, see :class:`ChunkSizer`).
        executor: see :data:`EXECUTORS`.
        resume: continue the batch already in ``out``: skip runs that have a runs part,
            refuse if the folder's manifest asked for something else.
        design: a sweep's design table; its ``param:`` columns are added to the runs rows.

    Returns:
        Counts over the whole batch (including runs finished before a resume).
    """
    with lock.holding(out):  # re-entrant: a command that prepared the folder holds it already
        return _run_locked(specs, out, {**manifest, "kernel": batch_kernel(specs)}, workers=workers,
                           chunk_size=chunk_size, progress=progress, executor=executor, resume=resume, design=design)  # fmt: skip


class BatchInterrupted(KeyboardInterrupt):
    """A batch stopped by Ctrl-C or SIGTERM; ``str()`` says what is stored and how to continue."""


def _start(out: Path, specs: Sequence[RunSpec], manifest: dict[str, Any], resume: bool) -> tuple[_State, list[RunSpec], float]:
    """The batch's counters, the runs left to do and the seconds spent before (a resume continues them).

    A resume records when it happened in ``manifest`` (``resumed``) and keeps the first ``created``.
    """
    st = _State(asked=len(specs))
    old = check_resumable(out, manifest) if resume else None
    if old is None and any((out / "runs").glob("part-*.parquet")):
        raise InputError(f"{out}: holds results but no manifest; cannot tell what they are (use another --out or --force)")
    if old is None:
        return st, list(specs), 0.0
    store.clean_temporary(out)
    done = store.scan_finished(out)
    stray = done.run_ids - {s.run_id for s in specs}
    if stray:
        raise InputError(f"{out}: holds runs that were not asked for (run ids {sorted(stray)[:5]}...); cannot resume")
    st.finished, st.failed_ids, st.parts = len(done.run_ids), list(done.failed_run_ids), done.parts
    st.failed = len(done.failed_run_ids)
    manifest["created"] = old.get("created", manifest.get("created"))
    manifest["resumed"] = [*old.get("resumed", []), {"at": store.now_utc(), "finished_before": st.finished}]
    return st, [s for s in specs if s.run_id not in done.run_ids], float(old.get("seconds") or 0.0)


def _run_locked(specs: Sequence[RunSpec], out: Path, manifest: dict[str, Any], *, workers: int | None,
                chunk_size: int | None, progress: bool, executor: str, resume: bool,
                design: pd.DataFrame | None) -> BatchReport:  # fmt: skip
    """:func:`run_batch`, with the folder's lock held."""
    t0 = time.perf_counter()
    st, todo, seconds_before = _start(out, specs, manifest, resume)
    skipped = st.finished
    ex = make_executor(workers, executor)
    slots = executor_slots(ex)
    sizer = ChunkSizer(slots, chunk_size)
    manifest.update(
        {
            "executor": executor,
            "workers": slots,
            "chunk_size": chunk_size or "adaptive",
            "blas_threads": BLAS_THREADS,
            "pid": os.getpid(),
            "host": platform.node(),
        }
    )
    writer = store.ManifestWriter(out, {k: v for k, v in manifest.items() if k not in PROGRESS_KEYS})
    bar = Progress(st.asked, manifest.get("label") or manifest.get("scenario_name", "runs"), progress, initial=st.finished)
    status = "complete"
    writing = True  # an OSError while writing is the disk's (full, read-only), not the batch's
    try:
        writer.write(_progress(st, "running", seconds=round(seconds_before, 3)))
        writing = False
        for runs, sales in _results(ex, iter_chunks(todo, sizer), 2 * slots):
            writing = True
            sizer.observe(runs)
            runs = with_design(runs, design)
            name = f"{int(runs['run_id'].min()):08d}"
            # Sales first: the runs part is the mark that a chunk is whole.
            store.write_part(out, "sales", name, sales)
            try:
                store.write_part(out, "runs", name, runs)
            except BaseException:
                _remove_quietly(out / "sales" / f"part-{name}.parquet")  # no sales without their runs
                raise
            bad = runs.loc[runs["status"] != "ok", "run_id"]
            st.finished += len(runs)
            st.failed += len(bad)
            st.failed_ids.extend(int(r) for r in bad)
            st.parts += 1
            writer.write(_progress(st, "running", seconds=round(seconds_before + time.perf_counter() - t0, 3)))
            bar.update(len(runs))
            writing = False
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "aborted"
        reason = "" if isinstance(exc, KeyboardInterrupt) else "".join(traceback.format_exception_only(exc)).strip()
        seconds = round(seconds_before + time.perf_counter() - t0, 3)
        try:
            writer.write(_progress(st, status, seconds=seconds, abort_reason=reason))
        except OSError:
            pass  # the disk that stopped the batch may refuse this too; the runs parts are the truth
        ex.shutdown(wait=False, cancel_futures=True)
        bar.close()
        if isinstance(exc, BrokenProcessPool):
            raise RuntimeError(
                f"a worker process died (killed, or out of memory?); {st.finished} of {st.asked} runs are stored "
                f"in {out}; continue with --resume"
            ) from exc
        if writing and isinstance(exc, OSError):
            raise _write_error(exc, out, st) from exc
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, BatchInterrupted):
            raise BatchInterrupted(
                f"interrupted: {st.finished} of {st.asked} runs are stored in {out}; continue with --resume"
            ) from exc
        raise
    ex.shutdown(wait=True)
    bar.close()
    seconds = seconds_before + time.perf_counter() - t0
    try:
        writer.write(_progress(st, status, seconds=round(seconds, 3), completed=store.now_utc()))
    except OSError as exc:
        raise _write_error(exc, out, st) from exc
    return BatchReport(st.asked, st.finished, st.failed, seconds, skipped)


def _write_error(exc: OSError, out: Path, st: _State) -> OSError:
    """A write failure said plainly: what failed, what is stored, how to continue."""
    return OSError(
        exc.errno,
        f"cannot write the results in {out}: {exc.strerror or exc}; {st.finished} of {st.asked} runs are stored; "
        "make room or fix the permissions, then continue with --resume",
    )


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # scan_finished removes a sales part without its runs part on --resume


def _results(ex: Executor, chunks: Iterable[list[RunSpec]], window: int) -> Iterator[tuple[pd.DataFrame, bytes]]:
    """Yield chunk results (runs rows, sales part: :func:`run_chunk_encoded`) as they finish, keeping at most
    ``window`` chunks in flight."""
    pending: set[Future[Any]] = set()
    for chunk in chunks:
        pending.add(ex.submit(run_chunk_encoded, chunk))
        while len(pending) >= window:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            yield fut.result()


def batch_kernel(specs: Sequence[RunSpec]) -> str | None:
    """The choice kernel of a batch's runs (None without runs): a batch runs one kernel."""
    kernels = sorted({s.kernel for s in specs})
    if len(kernels) > 1:
        raise ValueError(f"a batch runs one choice kernel, got {kernels}")
    return kernels[0] if kernels else None


