"""A fork server for the kill-and-resume campaign (tests/test_reliability_faults.py).

Started once, it imports ``sim`` and then, for each request read from stdin (one JSON line:
``{"argv": [...], "kill_at": N, "log": PATH or null, "stderr": PATH}``), forks a child that runs
``sim ARGV`` with the moments of its batch counted and sends itself SIGKILL at moment N (0: never).
It answers each request with one JSON line, ``{"status": exit code, or -9 for a SIGKILL}``.

A request ``{"group": [{"argv", "stderr", "delay", "signal", "signal_after"}, ...]}`` (the stress test
of concurrent writers, tests/test_reliability_stress.py) runs its children at once, each after its
``delay``, sends a child its ``signal`` ``signal_after`` seconds after the group started, and answers
``{"statuses": [...]}``.

Moments: a run starts, is half-way through its months, ends; a part, the manifest or the design
table is opened, half written, synced, renamed. With ``log``, the child appends each moment's name
to that file (to list the moments of a batch run through without a kill).

Run with one BLAS thread (``OPENBLAS_NUM_THREADS=1``) and no jemalloc background thread
(``JE_ARROW_MALLOC_CONF=background_thread:false``) so that this process has a single thread when it
forks; :func:`serve` checks it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import sim.runs.chunks
import sim.runs.store
from sim import cli
from sim.model.market_model import MarketModel


class Moments:
    """Counts moments; SIGKILLs this process at moment ``kill_at`` (0: never)."""

    def __init__(self, kill_at: int, log: str | None):
        self.kill_at, self.log, self.n = kill_at, log, 0

    def __call__(self, what: str) -> None:
        self.n += 1
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(what + "\n")
        if self.n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def install(moment: Moments) -> None:
    """Count the moments of the batch this process is about to run."""

    class Torn(io.FileIO):
        """A file whose writes pause half-way at a moment (a kill there leaves a torn file)."""

        def write(self, data: Any) -> int:
            view = memoryview(data)
            half = len(view) // 2
            n = super().write(view[:half])
            moment("half-written " + Path(self.name).name.split(".tmp-")[0].lstrip("."))
            return n + super().write(view[half:])

    def opened(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = Torn(path, mode.replace("b", ""))
        moment("opened " + Path(path).name.split(".tmp-")[0].lstrip("."))
        return fh

    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        real_fsync(fd)
        moment("synced")

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        moment("renamed " + Path(dst).name)

    real_execute, real_step = sim.runs.chunks.execute, MarketModel.step

    def execute(spec: Any) -> Any:
        moment(f"run-start {spec.run_id}")
        out = real_execute(spec)
        moment(f"run-end {spec.run_id}")
        return out

    def step(self: MarketModel) -> None:
        if self.t == 6:
            moment("run-half-way")
        real_step(self)

    sim.runs.store.open = opened  # type: ignore[attr-defined]  # shadows the builtin in sim.runs.store only
    sim.runs.store.os.fsync, sim.runs.store.os.replace = fsync, replace  # type: ignore[assignment]
    sim.runs.chunks.execute = execute  # type: ignore[assignment]
    MarketModel.step = step  # type: ignore[method-assign]


def _fork(req: dict[str, Any]) -> int:
    """Fork a child that runs ``sim ARGV`` (after ``delay`` seconds), its moments counted if ``kill_at`` is given."""
    pid = os.fork()
    if pid:
        return pid
    # The child: sim ARGV, its output away from the answers.
    devnull = os.open(os.devnull, os.O_WRONLY)
    err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(devnull, 1)
    os.dup2(err, 2)
    sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
    sys.argv = ["sim", *req["argv"]]  # what the child's manifests and lock record as its command
    try:
        time.sleep(req.get("delay", 0.0))
        if "kill_at" in req:
            install(Moments(req["kill_at"], req.get("log")))
        code = cli.main(req["argv"])
    except BaseException:  # pragma: no cover - reported through the exit code
        import traceback

        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _status(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _group(reqs: list[dict[str, Any]]) -> list[int]:
    """Run the requests' children at once; send each its ``signal`` ``signal_after`` seconds after the start
    if it still runs; return their exit codes in order (-N for signal N)."""
    t0 = time.monotonic()
    pids = [_fork(r) for r in reqs]
    codes: list[int | None] = [None] * len(pids)
    signalled = [False] * len(pids)
    while any(c is None for c in codes):
        for i, (pid, r) in enumerate(zip(pids, reqs, strict=True)):
            if codes[i] is not None:
                continue
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[i] = _status(status)
            elif r.get("signal") and not signalled[i] and time.monotonic() - t0 >= r["signal_after"]:
                os.kill(pid, r["signal"])
                signalled[i] = True
        time.sleep(0.002)
    return [int(c) for c in codes if c is not None]


def serve() -> None:
    """Answer each request: ``{"argv", "kill_at", ...}`` runs one child to its end (``{"status": code}``);
    ``{"group": [request, ...]}`` runs several at once (``{"statuses": [code, ...]}``, see :func:`_group`)."""
    if Path("/proc/self/task").is_dir() and len(list(Path("/proc/self/task").iterdir())) != 1:
        raise SystemExit("killer.py: more than one thread; a fork would copy a process whose other threads vanish")
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        if "group" in req:
            answer: dict[str, Any] = {"statuses": _group(req["group"])}
        else:
            _, status = os.waitpid(_fork(req), 0)
            answer = {"status": _status(status)}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def warm_up() -> None:
    """Load once what every child would otherwise load again: the command line's modules, the compiled kernels."""
    from sim.runs.run import execute, make_specs
    from sim.scenario.load import load_scenario

    cli.build_parser()
    tiny = load_scenario(Path(__file__).resolve().parent.parent / "tiny.yaml")
    execute(make_specs(tiny, 1, seed=0, scale=500, check=True)[0])  # no Parquet: no Arrow threads before a fork


if __name__ == "__main__":
    warm_up()
    serve()
