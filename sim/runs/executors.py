"""Executors of batches, all behind ``concurrent.futures.Executor``.

- ``serial``: in this process, one chunk at a time.
- ``processes``: local worker processes (default: all cores).
- ``dask``: a ``distributed.LocalCluster`` of worker processes.
- ``dask://HOST:PORT``: an existing Dask scheduler (its workers need ``sim`` installed).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from sim.scenario.yamlio import InputError


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
                dashboard_address=":0",  # any free port: two clusters at once never fight over 8787
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
        ctx.set_forkserver_preload(["sim.runs.chunks"])
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

