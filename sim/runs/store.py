"""Results on disk: a manifest plus Parquet parts, written atomically.

Layout of a results folder::

    DIR/manifest.json          what was asked, seeds, versions, what finished
    DIR/runs/part-*.parquet    one row per run
    DIR/sales/part-*.parquet   one row per run, month, market and product
    DIR/design.parquet         sweeps only: one row per design point

Each part is written to a temporary file in the same folder, synced and renamed
(and the folder synced), so a part is either whole or absent. A chunk's sales
part is written before its runs part, so a run counts as finished exactly when
its runs part exists; a sales part without its runs part (a batch killed between
the two renames) is an orphan that :func:`scan_finished` removes. Nothing is
pickled.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.runs.manifest import code_version, now_utc  # noqa: F401 (re-exported: batch, rerun and benchmarks use them)
from sim.scenario.yamlio import InputError

TABLES = ("runs", "sales")
MANIFEST = "manifest.json"
DESIGN = "design.parquet"


#: What ``--force`` deletes in a results folder: the parts, the manifest and the design.
RESULTS_OWNED = tuple(f"{table}/part-*.parquet" for table in TABLES) + (MANIFEST, DESIGN)


def prepare_output(out: str | Path, *, force: bool = False, resume: bool = False) -> Path:
    """Create a results folder or check it may be written: a non-empty folder needs ``force`` or ``resume``."""
    path = prepare_folder(out, force=force, resume=resume, owned=RESULTS_OWNED,
                          hint="use --force to replace its results or --resume to continue a batch")  # fmt: skip
    try:
        for table in TABLES:
            (path / table).mkdir(parents=True, exist_ok=True)
        clean_temporary(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot prepare the results folder: {exc.strerror or exc}") from None
    return path


def prepare_folder(out: str | Path, *, force: bool, resume: bool, owned: Sequence[str], hint: str) -> Path:
    """Create an output folder or check it may be written (the one check of every command that writes one).

    Args:
        out: the folder.
        force: replace what a former command wrote: delete what matches ``owned``, nothing else.
        resume: keep what the folder holds (a killed batch to continue).
        owned: globs, relative to ``out``, of what the command writes there (files or folders).
        hint: what to do about a non-empty folder, for the message.

    Raises:
        InputError: ``out`` is a file, or a non-empty folder without ``force`` or ``resume``, or
            the file system refuses.
    """
    path = Path(out)
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder")
        if path.is_dir() and _has_content(path) and not (force or resume):
            raise InputError(f"{path}: folder is not empty; {hint}")
        if force and path.is_dir() and not resume:
            for pattern in owned:
                for p in sorted(path.glob(pattern)):
                    if p.is_dir():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot prepare the results folder: {exc.strerror or exc}") from None
    return path


def _has_content(path: Path) -> bool:
    """Anything in ``path`` but the empty table folders a batch that failed to start leaves."""
    for entry in path.iterdir():
        if entry.name not in TABLES or not entry.is_dir() or any(entry.iterdir()):
            return True
    return False


def clean_temporary(out: Path) -> int:
    """Remove temporary files left by a writer that was killed before its rename; returns how many."""
    n = 0
    for folder in (out, *(out / t for t in TABLES)):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp-*"):
                tmp.unlink(missing_ok=True)
                n += 1
    return n


@dataclass
class Finished:
    """Runs already stored in a results folder (from the runs parts, which are the truth)."""

    run_ids: set[int]
    failed_run_ids: list[int]
    parts: int


def scan_finished(out: Path) -> Finished:
    """Which runs have a runs part; removes orphan sales parts (whose runs part was never written)."""
    runs_parts = {p.name: p for p in (out / "runs").glob("part-*.parquet")}
    for sales_part in (out / "sales").glob("part-*.parquet"):
        if sales_part.name not in runs_parts:
            sales_part.unlink()
    done: set[int] = set()
    failed: list[int] = []
    for p in sorted(runs_parts.values()):
        t = pq.read_table(p, columns=["run_id", "status"]).to_pydict()
        done.update(int(r) for r in t["run_id"])
        failed.extend(int(r) for r, s in zip(t["run_id"], t["status"], strict=True) if s != "ok")
    return Finished(done, sorted(failed), len(runs_parts))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a synced temporary file renamed over it, then the folder synced."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (as databases do); a no-op where folders cannot be synced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_part(out: Path, table: str, name: str, df: pd.DataFrame) -> Path:
    """Write one Parquet part atomically (temporary file, then rename)."""
    target = out / table / f"part-{name}.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), sink, compression="zstd")
    _atomic_write_bytes(target, sink.getvalue().to_pybytes())
    return target


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    _atomic_write_bytes(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False, default=str).encode())


class ManifestWriter:
    """Rewrites ``manifest.json`` atomically after every chunk, cheaply.

    The fixed part (what was asked, the resolved scenario, versions) is serialised
    once; each :meth:`write` appends only the progress fields (which must not be
    keys of the fixed part).
    """

    def __init__(self, out: Path, fixed: dict[str, Any]):
        self.out = out
        text = json.dumps(fixed, indent=2, ensure_ascii=False, default=str)
        self.head = text[:-2] + ",\n" if fixed else "{\n"  # drop the closing "\n}"
        self.fixed_keys = set(fixed)

    def write(self, progress: dict[str, Any]) -> None:
        clash = self.fixed_keys & set(progress)
        if clash:
            raise ValueError(f"manifest keys written twice: {sorted(clash)}")
        body = ",\n".join(
            f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in progress.items()
        )
        _atomic_write_bytes(self.out / MANIFEST, (self.head + body + "\n}").encode())


def write_design(out: Path, design: pd.DataFrame) -> Path:
    """Write a sweep's design table (one row per point) atomically as ``design.parquet``."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(design, preserve_index=False), sink, compression="zstd")
    _atomic_write_bytes(out / DESIGN, sink.getvalue().to_pybytes())
    return out / DESIGN


def read_design(out: str | Path) -> pd.DataFrame | None:
    """A sweep's design table, or None for a folder written by ``sim run``."""
    path = Path(out) / DESIGN
    return pq.read_table(path).to_pandas() if path.is_file() else None


def read_manifest(out: str | Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise InputError(f"{out}: no {MANIFEST}; is this a results folder written by 'sim run'?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: manifest is not valid JSON: {exc.msg}") from None


def read_table(out: str | Path, table: str, run_ids: list[int] | None = None) -> pd.DataFrame:
    """All parts of one table sorted by run (then month, market, model): the same rows in the
    same order whatever the executor, the worker count, the chunking or resumes.

    Args:
        run_ids: keep only these runs (read with a filter; for ``sim rerun``).
    """
    parts = sorted((Path(out) / table).glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame()
    filters = [("run_id", "in", list(run_ids))] if run_ids is not None else None
    frames = [pq.read_table(p, filters=filters).to_pandas() for p in parts]
    df = pd.concat(frames, ignore_index=True)
    key = [c for c in ("run_id", "month", "market", "model") if c in df.columns]
    if key:
        df = df.sort_values(key, kind="stable").reset_index(drop=True)
    return df


@dataclass
class Results:
    """A results folder loaded: ``.sales`` and ``.runs`` (pandas), ``.manifest`` (dict)."""

    path: Path
    manifest: dict[str, Any]
    runs: pd.DataFrame
    sales: pd.DataFrame
    design: pd.DataFrame | None = None

    @property
    def ok_runs(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"] if len(self.runs) else self.runs


def load_results(out: str | Path) -> Results:
    """Load a results folder written by ``sim run`` or ``sim sweep``."""
    path = Path(out)
    if not path.is_dir():
        raise InputError(f"{path}: no such results folder")
    manifest = read_manifest(path)
    return Results(path, manifest, read_table(path, "runs"), read_table(path, "sales"), read_design(path))


def export_csv(out: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Write CSV copies of the tables (``runs.csv``, ``sales.csv``) next to them or into ``dest``."""
    res = load_results(out)
    target = Path(dest) if dest else Path(out)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (("runs", res.runs), ("sales", res.sales)):
        p = target / f"{name}.csv"
        tmp = p.with_name(f".{p.name}.tmp")
        df.to_csv(tmp, index=False)
        os.replace(tmp, p)
        written.append(p)
    return written
