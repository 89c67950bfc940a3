"""Reading a results folder: its layout, the checks made as it is read, and how much of the batch it holds.

Layout of a results folder (written by :mod:`sim.runs.store`)::

    DIR/manifest.json          what was asked, seeds, versions, what finished
    DIR/runs/part-*.parquet    one row per run
    DIR/sales/part-*.parquet   one row per run, month, market and product
    DIR/design.parquet         sweeps only: one row per design point
    DIR/.sim-lock              while a process writes the folder (:mod:`sim.runs.lock`)

A run counts as finished exactly when its runs part exists. :func:`load_results` refuses a
folder that is damaged or foreign (with the file and what is wrong), one that holds a run
twice or runs of two batches, and, unless asked to accept it, one that holds fewer runs
than its batch asked for (:class:`Completeness`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.runs import lock
from sim.scenario.yamlio import InputError, read_bounded

TABLES = ("runs", "sales")
MANIFEST = "manifest.json"
DESIGN = "design.parquet"
#: Largest manifest read, in bytes (one holds the resolved scenario, a few hundred kB).
MAX_MANIFEST_BYTES = 100_000_000


def read_design(out: str | Path) -> pd.DataFrame | None:
    """A sweep's design table, or None for a folder written by ``sim run``."""
    path = Path(out) / DESIGN
    return read_part(path).to_pandas() if os.path.lexists(path) else None


def read_manifest(out: str | Path) -> dict[str, Any]:
    """A results folder's manifest, a JSON object (see :mod:`sim.runs.manifest`).

    Raises:
        InputError: no manifest, not a regular file, too large, not JSON, not an object.
    """
    path = Path(out) / MANIFEST
    if not os.path.lexists(path):
        raise InputError(f"{out}: no {MANIFEST}; is this a results folder written by 'sim run'?")
    raw = read_bounded(path, MAX_MANIFEST_BYTES)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}:1: manifest is not UTF-8 text; is this a results folder written by sim?") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: manifest is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: not a results manifest: expected a JSON object, got {type(data).__name__}")
    return data


def read_part(path: Path, **kwargs: Any) -> pa.Table:
    """One Parquet file of a results folder (``kwargs``: ``columns``, ``filters`` of ``pq.read_table``).

    Raises:
        InputError: the file is not a regular file, or not readable Parquet (truncated, foreign).
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(f"{path}: is not a regular file (a FIFO, a device?); the results folder is damaged")
        return pq.read_table(path, **kwargs)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{path}: cannot be read ({reason}); the results folder is damaged (a truncated copy?) or was not "
            "written by sim"
        ) from None


def _part_paths(out: Path, table: str) -> list[Path]:
    return sorted((out / table).glob("part-*.parquet"))


def read_table(out: str | Path, table: str, run_ids: list[int] | None = None, parts: Sequence[Path] | None = None,
               *, checked: bool = False, brands: Sequence[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """All parts of one table sorted by run (then month, market, model): the same rows in the
    same order whatever the executor, the worker count, the chunking or resumes.

    Args:
        run_ids: keep only these runs (read with a filter; for ``sim rerun``).
        parts: read only these part files (default: every part of the table).
        checked: check that every part has the table's columns (:data:`KINDS`), filled, of their types.
        brands: keep only these brands' rows (sales; read with a filter, so a large table is not read whole).

    Raises:
        InputError: a part cannot be read (:func:`read_part`), or (``checked``) is not a part of this table.
    """
    parts = _part_paths(Path(out), table) if parts is None else list(parts)
    if not parts:
        return pd.DataFrame()
    filters: list[tuple[str, str, list[Any]]] = [("run_id", "in", list(run_ids))] if run_ids is not None else []
    if brands is not None:
        filters.append(("brand", "in", list(brands)))
    frames = [read_part(p, filters=filters or None).to_pandas() for p in parts]
    if checked:
        for p, frame in zip(parts, frames, strict=True):
            _check_columns(p, table, frame)
    df = pd.concat(frames, ignore_index=True)
    key = [c for c in ("run_id", "month", "market", "model") if c in df.columns]
    if key:
        df = df.sort_values(key, kind="stable").reset_index(drop=True)
    return df


# --------------------------------------------------------------------------- completeness


#: ``load_results``'s default for ``allow_partial`` (the command line sets it for ``--allow-partial``).
PARTIAL_ALLOWED: ContextVar[bool] = ContextVar("partial_allowed", default=False)


class PartialResults(InputError):
    """A results folder that holds fewer runs than its batch asked for (the command line exits 2)."""

    def __init__(self, path: Path, completeness: Completeness):
        self.path, self.completeness = path, completeness
        super().__init__(f"{path}: {completeness.describe()}; continue with --resume or pass --allow-partial")


@dataclass(frozen=True)
class Completeness:
    """How much of its batch a results folder holds.

    Attributes:
        asked: runs the batch asked for (None: its manifest does not say).
        finished: runs stored (a runs row each, ``ok`` or failed).
        failed: stored runs that failed.
        status: the manifest's status: ``complete``, ``running``, ``interrupted`` or ``aborted``.
        writer: the process writing the folder now, if one is.
        stopped_writer: the writer that stopped without releasing the folder (killed), if one did.
    """

    asked: int | None
    finished: int
    failed: int
    status: str
    writer: lock.Holder | None = None
    stopped_writer: lock.Holder | None = None

    @property
    def partial(self) -> bool:
        """Fewer runs stored than asked (or, where the manifest does not say how many, a batch that did not end)."""
        if self.asked is None:
            return self.status in UNFINISHED
        return self.finished < self.asked

    @property
    def complete(self) -> bool:
        """Every asked run stored and none failed."""
        return not self.partial and self.failed == 0

    def describe(self) -> str:
        """``"4 of 6 runs finished (the batch was interrupted)"``, and the like."""
        of = f"{self.finished} of {self.asked}" if self.asked is not None else f"{self.finished} of an unknown number of"
        text = f"{of} runs finished"
        if self.writer is not None:
            return f"{text} (a sim process is writing it now: {self.writer.describe()})"
        if self.stopped_writer is not None:
            return f"{text} (its writer stopped without finishing: {self.stopped_writer.describe()}, no longer running)"
        if self.status in UNFINISHED:
            return f"{text} (the batch was {'stopped' if self.status == 'running' else self.status})"
        return text


#: Statuses of a batch that did not run to its end.
UNFINISHED = ("running", "interrupted", "aborted")


def _completeness(path: Path, manifest: dict[str, Any], runs: pd.DataFrame) -> Completeness:
    asked = manifest.get("asked")
    if not isinstance(asked, int) or isinstance(asked, bool) or asked < 0:
        asked = None
    finished = int(runs["run_id"].nunique()) if len(runs) else 0
    failed = int((runs["status"] != "ok").sum()) if len(runs) else 0
    if asked is not None and finished > asked:
        raise InputError(
            f"{path}: holds {finished} runs, more than the {asked} its manifest asked for: runs of more than one "
            "batch; run the batch again into an empty folder"
        )
    holder = lock.current_holder(path)
    if holder is not None and holder.is_this_process():
        holder = None  # this process locked the folder to write into it (a report), not to write the batch
    alive = holder is not None and holder.alive()
    return Completeness(asked, finished, failed, str(manifest.get("status") or "unknown"),
                        holder if alive else None, holder if holder is not None and not alive else None)  # fmt: skip


# --------------------------------------------------------------------------- loading


@dataclass
class Results:
    """A results folder loaded: ``.sales`` and ``.runs`` (pandas), ``.manifest`` (dict), ``.design``
    (sweeps), and ``.completeness``: how much of the batch is there (None for tables held in memory)."""

    path: Path
    manifest: dict[str, Any]
    runs: pd.DataFrame
    sales: pd.DataFrame
    design: pd.DataFrame | None = None
    completeness: Completeness | None = None

    @property
    def ok_runs(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"] if len(self.runs) else self.runs

    @property
    def partial(self) -> bool:
        """Whether the folder holds fewer runs than its batch asked for."""
        return self.completeness is not None and self.completeness.partial


def load_results(out: str | Path, *, allow_partial: bool | None = None, brands: Sequence[str] | None = None) -> Results:
    """Load a results folder written by ``sim run``, ``sim sweep`` or another batch.

    The folder is checked as it is read: a manifest that is a JSON object with the resolved
    scenario, parts that are whole Parquet files with the tables' columns, a sales part for
    every runs part, every run id once.

    Args:
        out: the folder.
        allow_partial: read a batch that holds fewer runs than it asked for (killed,
            interrupted, stopped by a full disk, or still being written); the result's
            ``completeness`` says how much is there. Default: refuse (``False``), unless the
            command line's ``--allow-partial`` is in force (:data:`PARTIAL_ALLOWED`).
        brands: read only these brands' sales rows (default: all); every part is still checked.

    Raises:
        PartialResults: a partial batch without ``allow_partial`` (an :class:`InputError`).
        InputError: no such folder, or a folder that is damaged or was not written by sim
            (located: which file, what is wrong).
    """
    path = Path(out)
    if not path.is_dir():
        raise InputError(f"{path}: no such results folder")
    manifest = read_manifest(path)
    _check_manifest(path, manifest)
    runs_parts, sales_parts = _part_paths(path, "runs"), _part_paths(path, "sales")
    without_sales = sorted({p.name for p in runs_parts} - {p.name for p in sales_parts})
    if without_sales:
        raise InputError(f"{path}: runs/{without_sales[0]} has no sales part (sales/{without_sales[0]} is missing); "
                         "the results folder is damaged")  # fmt: skip
    # A sales part without its runs part is a chunk a killed batch did not finish: not read.
    names = {p.name for p in runs_parts}
    runs = read_table(path, "runs", parts=runs_parts, checked=True)
    sales = read_table(path, "sales", parts=[p for p in sales_parts if p.name in names], checked=True, brands=brands)
    _check_tables(path, runs, sales)
    completeness = _completeness(path, manifest, runs)
    allowed = PARTIAL_ALLOWED.get() if allow_partial is None else allow_partial
    if completeness.partial and not allowed:
        raise PartialResults(path, completeness)
    return Results(path, manifest, runs, sales, read_design(path), completeness)


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """A manifest a batch wrote: it says what it holds (``kind``) or how its batch went (``status``), and the
    fields readers use have their types."""
    where = path / MANIFEST
    if not any(k in manifest for k in ("kind", "status", "scenario")):
        raise InputError(f"{where}:1: not a results manifest (no 'kind', 'status' or 'scenario'); was this folder "
                         "written by sim?")  # fmt: skip
    for key, kind in (("scenario", dict), ("scenario_name", str), ("status", str), ("design", dict)):
        if key in manifest and manifest[key] is not None and not isinstance(manifest[key], kind):
            raise InputError(f"{where}:1: '{key}' is a {type(manifest[key]).__name__}, not a{'n object' if kind is dict else ' text'}; "
                             "the manifest is damaged")  # fmt: skip


#: Columns every runs and sales table has, and the kind of each ("int", "number" or "text").
_RUNS_KINDS = {"run_id": "int", "replicate": "int", "status": "text", "seed_entropy": "text", "scale": "number"}
_SALES_KINDS = {
    "run_id": "int", "month": "text", "market": "text", "brand": "text", "model": "text", "segment": "text",
    "powertrain": "text", "units": "number", "orders": "number", "backlog": "number", "cancellations": "number",
    "list_price": "number", "transaction_price": "number", "paid_price": "number", "wait_months": "number",
}  # fmt: skip
KINDS = {"runs": _RUNS_KINDS, "sales": _SALES_KINDS}


def _check_columns(part: Path, table: str, frame: pd.DataFrame) -> None:
    """A part of ``table`` has the table's columns (:data:`KINDS`), filled, of their types."""
    for col, kind in KINDS[table].items():
        if col not in frame.columns:
            problem = f"lacks the column '{col}'"
        elif not _OF_KIND[kind](frame[col]):
            problem = f"has a column '{col}' of the wrong type ({frame[col].dtype})"
        elif frame[col].isna().any():
            problem = f"has empty values in the column '{col}'"
        else:
            continue
        raise InputError(f"{part}: {problem}; it is not a part of the {table} table written by sim")


_OF_KIND = {
    "int": pd.api.types.is_integer_dtype,
    "number": pd.api.types.is_numeric_dtype,
    "text": lambda s: pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s),
}


def _check_tables(path: Path, runs: pd.DataFrame, sales: pd.DataFrame) -> None:
    """Every run once, sales only of stored runs."""
    if runs.empty:
        return
    dup = runs["run_id"].duplicated(keep=False)
    if dup.any():
        raise twice_error(path, _parts_holding(path, set(runs.loc[dup, "run_id"].astype(int))))
    stray = set(sales["run_id"].unique()) - set(runs["run_id"]) if len(sales) else set()
    if stray:
        raise InputError(f"{path}: sales rows of runs that have no runs row (run ids {sorted(stray)[:5]}); "
                         "the results folder is damaged")  # fmt: skip


def _parts_holding(path: Path, ids: set[int]) -> dict[int, tuple[str, ...]]:
    """The runs parts that hold each of ``ids``, by name."""
    where: dict[int, list[str]] = {r: [] for r in ids}
    for part in _part_paths(path, "runs"):
        for r in read_part(part, columns=["run_id"]).column("run_id").to_pylist():
            if int(r) in where:
                where[int(r)].append(part.name)
    return {r: tuple(names) for r, names in where.items()}


def twice_error(out: Path, twice: dict[int, tuple[str, ...]]) -> InputError:
    """The error of run ids stored more than once (which, and in which parts)."""
    ids = sorted(twice)
    first = ", ".join(f"{r} ({' and '.join(twice[r])})" for r in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return InputError(
        f"{out}: run ids stored more than once: {first}; the folder holds runs of two batches (written at "
        "once by two processes?) and cannot be read or continued; run the batch again into an empty folder"
    )


