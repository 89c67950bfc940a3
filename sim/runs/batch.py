"""Batches: map runs over an executor and store each finished chunk as its own part.

Runs are grouped into chunks (so that short runs do not drown in overhead);
each chunk is executed in a worker and written by the parent as soon as it
returns, so the parent holds at most ``2 x workers`` chunks in memory whatever
the number of runs. After every chunk the manifest is rewritten (atomically)
with what finished and what failed, so a batch killed at any moment leaves a
truthful folder that ``resume=True`` continues. A write that fails (disk full,
read-only folder) stops the batch with an ``OSError`` that says what is stored;
the parts already written stay whole, and ``resume=True`` continues.

Results do not depend on the executor, the number of workers or the chunking:
run ``r`` always gets the same seed identity, and :func:`sim.runs.store.read_table`
sorts rows by run. Common random numbers: two batches with the same root seed
give replicate ``r`` the same random stream, whatever their scenarios.

Executors, all behind ``concurrent.futures.Executor``:

- ``serial``: in this process, one chunk at a time.
- ``processes``: local worker processes (default: all cores).
- ``dask``: a ``distributed.LocalCluster`` of worker processes.
- ``dask://HOST:PORT``: an existing Dask scheduler (its workers need ``sim`` installed).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sim.runs import store
from sim.runs.manifest import new_manifest
from sim.runs.run import RunOutput, RunSpec, execute, sales_frame
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError

#: Most failed run ids listed in the manifest (the runs table has them all).
MAX_LISTED_FAILURES = 1000
#: Largest adaptive chunk, in runs.
MAX_CHUNK = 100
#: Most runs in one batch (a guard against a mistyped replication count or design size).
MAX_RUNS = 1_000_000
#: Work an adaptive chunk aims at, in seconds of run time.
CHUNK_SECONDS = 10.0
#: BLAS/OpenMP threads of a run (see :func:`run_chunk`).
BLAS_THREADS = 1
#: Manifest fields rewritten after every chunk.
PROGRESS_KEYS = (
    "status", "asked", "finished", "failed", "pending", "failed_run_ids", "parts", "updated",
    "seconds", "completed", "abort_reason",
)


# --------------------------------------------------------------------- chunks


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
    sales = pd.concat([o.sales for o in outs], ignore_index=True) if outs else sales_frame({})
    return runs, sales


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


# ------------------------------------------------------------------ executors


class SerialExecutor(Executor):
    """Runs each task in the calling process, when submitted."""

    slots = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # pragma: no cover - run_chunk does not raise
            fut.set_exception(exc)
        return fut


class DaskExecutor(Executor):
    """A Dask cluster behind the ``concurrent.futures`` interface.

    Args:
        address: ``None`` starts a ``distributed.LocalCluster`` of ``workers``
            single-threaded worker processes; ``"HOST:PORT"`` (or ``tcp://HOST:PORT``)
            connects to a running scheduler.
        workers: worker processes of the local cluster (default: all cores).
    """

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError(
                "--executor dask needs the 'distributed' package: pip install 'sim[dask]'"
            ) from None
        self.cluster = None
        if address is None:
            self.cluster = LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        else:
            target = address if "://" in address else f"tcp://{address}"
            try:
                self.client = Client(target, timeout="20s")
            except OSError as exc:
                raise InputError(f"--executor dask://{address}: cannot reach the scheduler: {exc}") from None
        # pure=False: every submission is a new task (no hashing of the specs).
        self._ex = self.client.get_executor(pure=False)
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._ex.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._ex.shutdown(wait=wait and not cancel_futures)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


EXECUTORS = ("serial", "processes", "dask", "dask://HOST:PORT")


def check_executor(kind: str) -> str:
    """Validate an ``--executor`` value; returns it."""
    if kind in ("serial", "processes", "dask") or (kind.startswith("dask://") and len(kind) > len("dask://")):
        return kind
    raise InputError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {kind!r}")


def _process_context() -> Any:
    # forkserver: workers start from a clean, single-threaded server that has already
    # imported the model (no fork of a threaded parent, no copy of the parent's memory).
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["sim.runs.batch"])
        return ctx
    return multiprocessing.get_context("spawn")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc: trust kill(0); a vanished process is seen on the next look


def _watch_batch(pid: int) -> None:
    """Worker initializer: exit when the batch's process ``pid`` is gone.

    A batch killed with SIGKILL cannot stop its workers; without this they would
    finish their chunk and then block for ever writing a result nobody reads (and
    keep the forkserver alive with them).
    """

    def watch() -> None:
        while _alive(pid):
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="sim-batch-watch", daemon=True).start()


def make_executor(workers: int | None = None, kind: str = "processes") -> Executor:
    """An executor for ``kind`` (see :data:`EXECUTORS`).

    ``processes`` with one worker runs in this process (no pool to start).
    """
    check_executor(kind)
    n = default_workers() if workers is None else workers
    if kind == "serial" or (kind == "processes" and n <= 1):
        return SerialExecutor()
    if kind == "processes":
        return ProcessPoolExecutor(
            max_workers=n, mp_context=_process_context(), initializer=_watch_batch, initargs=(os.getpid(),)
        )
    if kind == "dask":
        return DaskExecutor(None, workers)
    return DaskExecutor(kind[len("dask://") :])


def executor_slots(ex: Executor) -> int:
    """How many chunks ``ex`` runs at once."""
    return int(getattr(ex, "slots", None) or getattr(ex, "_max_workers", 1) or 1)


# ------------------------------------------------------------------- progress


@dataclass
class BatchReport:
    asked: int
    finished: int
    failed: int
    seconds: float
    skipped: int = 0


class Progress:
    """A progress bar with rate and ETA on a terminal (tqdm), plain lines otherwise."""

    def __init__(self, total: int, label: str, enabled: bool = True, initial: int = 0):
        self.total, self.label, self.done, self.t0 = total, label, initial, time.perf_counter()
        self.initial = initial
        self.enabled = enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, desc=label, unit="run", file=sys.stderr)
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
            rate = (self.done - self.initial) / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(f"{self.label}: {self.done}/{self.total} runs, {rate:.2f} runs/s, ETA {eta:.0f} s", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
    t0 = time.perf_counter()
    manifest = {**manifest, "kernel": batch_kernel(specs)}
    st = _State(asked=len(specs))
    todo: Sequence[RunSpec] = specs
    seconds_before = 0.0
    old = check_resumable(out, manifest) if resume else None
    if old is None and any((out / "runs").glob("part-*.parquet")):
        raise InputError(f"{out}: holds results but no manifest; cannot tell what they are (use another --out or --force)")
    if old is not None:
        store.clean_temporary(out)
        done = store.scan_finished(out)
        asked_ids = {s.run_id for s in specs}
        stray = done.run_ids - asked_ids
        if stray:
            raise InputError(f"{out}: holds runs that were not asked for (run ids {sorted(stray)[:5]}...); cannot resume")
        todo = [s for s in specs if s.run_id not in done.run_ids]
        st.finished, st.failed_ids, st.parts = len(done.run_ids), list(done.failed_run_ids), done.parts
        st.failed = len(done.failed_run_ids)
        seconds_before = float(old.get("seconds") or 0.0)
        manifest["created"] = old.get("created", manifest.get("created"))
        manifest["resumed"] = [*old.get("resumed", []), {"at": store.now_utc(), "finished_before": st.finished}]
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


def _results(
    ex: Executor, chunks: Iterable[list[RunSpec]], window: int
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield chunk results as they finish, keeping at most ``window`` chunks in flight."""
    pending: set[Future[Any]] = set()
    for chunk in chunks:
        pending.add(ex.submit(run_chunk, chunk))
        while len(pending) >= window:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            yield fut.result()


# -------------------------------------------------------------------- dry run


@dataclass
class Estimate:
    runs: int
    pilot_seconds: float
    workers: int
    seconds: float
    pilot_status: str
    pilot_error: str


def estimate(specs: Sequence[RunSpec], workers: int | None = None, executor: str = "processes") -> Estimate:
    """Time one run in this process and extrapolate: ``runs x pilot / workers``. Writes nothing."""
    if not specs:
        return Estimate(0, 0.0, 1, 0.0, "ok", "")
    runs, _ = run_chunk([specs[0]])
    row = runs.iloc[0]
    pilot = float(row["seconds"])
    n = 1 if executor == "serial" else (default_workers() if workers is None else workers)
    if executor.startswith("dask://"):
        n = workers or 1
    return Estimate(len(specs), pilot, n, len(specs) * pilot / max(n, 1), str(row["status"]), str(row["error"]))


def format_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def batch_kernel(specs: Sequence[RunSpec]) -> str | None:
    """The choice kernel of a batch's runs (None without runs): a batch runs one kernel."""
    kernels = sorted({s.kernel for s in specs})
    if len(kernels) > 1:
        raise ValueError(f"a batch runs one choice kernel, got {kernels}")
    return kernels[0] if kernels else None


# ---------------------------------------------------------------------- rerun


@dataclass
class RerunReport:
    run_id: int
    identical: bool
    differences: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)


def rebuild_spec(manifest: dict[str, Any], row: dict[str, Any]) -> RunSpec:
    """The spec of one stored run, from the manifest (resolved scenario, choice kernel) and its runs row
    (seed identity, scale, sweep point and parameters)."""
    try:
        scenario = Scenario.model_validate(manifest["scenario"])
    except Exception as exc:
        raise InputError(f"the manifest's scenario no longer validates with this code: {exc}") from None
    # A parameter's label (as written in the sweep file) and its resolved path in the scenario.
    targets = {p["path"]: p.get("target", p["path"]) for p in (manifest.get("design") or {}).get("parameters", [])}
    overrides = {
        targets.get(k[len("param:") :], k[len("param:") :]): _plain(v) for k, v in row.items() if k.startswith("param:")
    }
    point = row.get("point")
    spec = RunSpec(
        run_id=int(row["run_id"]),
        replicate=int(row["replicate"]),
        entropy=int(row["seed_entropy"]),
        spawn_key=tuple(int(k) for k in str(row["spawn_key"]).split(",") if k != ""),
        scenario=scenario,
        scale=float(row["scale"]),
        overrides=overrides,
        point=None if point is None or pd.isna(point) else int(point),
    )
    # Manifests written before the kernel was recorded do not say: the default then.
    return replace(spec, kernel=manifest["kernel"]) if manifest.get("kernel") else spec


def _plain(v: Any) -> Any:
    """A value read from Parquet as the plain Python value it was written from."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def rerun(out: str | Path, run_id: int, dest: str | Path | None = None, kernel: str | None = None) -> RerunReport:
    """Re-run one stored run alone and compare its tables with the stored ones, exactly.

    The rerun's tables go through the same Parquet round trip as the stored ones; the
    ``seconds`` column (wall time) is not compared.

    Args:
        out: the results folder.
        run_id: the run to reproduce.
        dest: write the rerun's tables as a results folder here (default: not kept).
        kernel: the choice kernel to rerun with (default: the batch's, as its manifest records it).
            Another kernel draws other random numbers: the notes then say why the tables differ.
    """
    import tempfile

    out = Path(out)
    manifest = store.read_manifest(out)
    stored_runs = store.read_table(out, "runs", run_ids=[run_id])
    if stored_runs.empty:
        raise InputError(f"{out}: no run with run_id {run_id} is stored")
    row = stored_runs.iloc[0].to_dict()
    spec = rebuild_spec(manifest, row)
    notes = []
    if manifest.get("scenario_hash") and spec.scenario.hash() != manifest["scenario_hash"]:
        notes.append(
            f"the stored scenario now hashes to {spec.scenario.hash()}, not {manifest['scenario_hash']}: "
            "the scenario schema (fields or defaults) changed since the batch ran"
        )
    if manifest.get("code_version") and manifest["code_version"] != store.code_version():
        notes.append(f"code version {store.code_version()} differs from the batch's {manifest['code_version']}")
    stored_kernel = manifest.get("kernel")
    if kernel is not None:
        spec = replace(spec, kernel=kernel)
    if not stored_kernel:
        notes.append(
            f"the manifest does not record the choice kernel (written before sim recorded it); rerun with the "
            f"{spec.kernel} kernel: a batch run with the other one draws other random numbers, and its tables differ"
        )
    elif spec.kernel != stored_kernel:
        notes.append(
            f"the batch ran with the {stored_kernel} kernel, this rerun with the {spec.kernel} kernel: the two draw "
            f"the same law from other random numbers, so the tables differ (to reproduce the batch, rerun with the "
            f"{stored_kernel} kernel: from the command line, without SIM_KERNEL)"
        )
    t0 = time.perf_counter()
    new_runs, new_sales = run_chunk([spec])
    new_runs = with_design(new_runs, store.read_design(out))
    seconds = time.perf_counter() - t0
    if dest is not None and Path(dest).resolve() == out.resolve():
        raise InputError(f"{dest}: is the folder of the stored run; write the rerun elsewhere")
    with tempfile.TemporaryDirectory() as tmp:
        target = store.prepare_output(Path(dest) if dest is not None else Path(tmp))
        name = f"{run_id:08d}"
        store.write_part(target, "sales", name, new_sales)
        store.write_part(target, "runs", name, new_runs)
        if dest is not None:
            m = new_manifest("rerun", **{k: manifest.get(k) for k in ("scenario_name", "scenario_hash", "scenario", "seed", "scale")},
                             kernel=spec.kernel, source=str(out), source_run_id=run_id, status="complete", asked=1, finished=1)  # fmt: skip
            store.write_manifest(target, m)
        got_runs = store.read_table(target, "runs")
        got_sales = store.read_table(target, "sales")
    stored_sales = store.read_table(out, "sales", run_ids=[run_id])
    diffs = _compare("runs", stored_runs.drop(columns=["seconds"]), got_runs.drop(columns=["seconds"]))
    diffs += _compare("sales", stored_sales, got_sales)
    return RerunReport(run_id, not diffs, diffs, seconds, notes)


def _compare(name: str, stored: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    """Exact comparison (NaN equals NaN); returns readable differences."""
    if stored.empty and got.empty:
        return []
    if list(stored.columns) != list(got.columns):
        return [f"{name}: columns differ: stored {list(stored.columns)}, rerun {list(got.columns)}"]
    if len(stored) != len(got):
        return [f"{name}: {len(stored)} stored rows, {len(got)} in the rerun"]
    out = []
    for c in stored.columns:
        a, b = stored[c], got[c]
        if str(a.dtype) != str(b.dtype):
            out.append(f"{name}.{c}: dtype {a.dtype} stored, {b.dtype} in the rerun")
            continue
        same = (a == b).fillna(False).to_numpy(bool) | (a.isna() & b.isna()).to_numpy(bool)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            out.append(
                f"{name}.{c}: {int((~same).sum())} of {len(a)} rows differ; first at row {i}: "
                f"stored {a.iloc[i]!r}, rerun {b.iloc[i]!r}"
            )
    return out


# -------------------------------------------------------------------- helpers


def collect(outputs: Iterable[RunOutput]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables of runs held in memory (for small in-process use and tests)."""
    outs = list(outputs)
    return pd.DataFrame([o.run for o in outs]), pd.concat([o.sales for o in outs], ignore_index=True)


__all__ = [
    "BatchReport",
    "DaskExecutor",
    "Estimate",
    "Progress",
    "RerunReport",
    "SerialExecutor",
    "check_executor",
    "estimate",
    "make_executor",
    "rerun",
    "run_batch",
    "run_chunk",
]
