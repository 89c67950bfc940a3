"""How long a batch takes: the progress bar while it runs, the estimate of a dry run."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sim.runs.chunks import run_chunk
from sim.runs.executors import default_workers
from sim.runs.run import RunSpec


class Quiet:
    """A log that writes nothing (a command's ``--quiet``, a fit's iterations inside a backtest)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


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

