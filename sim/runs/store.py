"""Results on disk: a manifest plus Parquet parts, written atomically by one writer at a time.

The layout of a results folder, and reading one, are in :mod:`sim.runs.results` (whose names
are also importable from here). A folder is written only under its lock
(:mod:`sim.runs.lock`): :func:`prepare_folder` checks it under the lock.

Each part is written to a temporary file in the same folder, synced and renamed
(and the folder synced), so a part is either whole or absent. A chunk's sales
part is written before its runs part, so a run counts as finished exactly when
its runs part exists; a sales part without its runs part (a batch killed between
the two renames) is an orphan that :func:`scan_finished` removes. Nothing is
pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.runs import lock
from sim.runs.manifest import code_version, now_utc  # noqa: F401 (re-exported: batch, rerun and benchmarks use them)
from sim.runs.results import (  # noqa: F401 (re-exported: the readers of results folders import them from here)
    DESIGN,
    MANIFEST,
    PARTIAL_ALLOWED,
    TABLES,
    Completeness,
    PartialResults,
    Results,
    load_results,
    read_design,
    read_manifest,
    read_part,
    read_table,
    twice_error,
)
from sim.scenario.yamlio import InputError

#: What ``--force`` deletes in a results folder: the parts, the manifest and the design.
RESULTS_OWNED = tuple(f"{table}/part-*.parquet" for table in TABLES) + (MANIFEST, DESIGN)


def prepare_output(out: str | Path, *, force: bool = False, resume: bool = False) -> Path:
    """Create a results folder or check it may be written (a non-empty folder needs ``force`` or
    ``resume``), under the folder's lock (:func:`sim.runs.lock.hold`)."""
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

    The check (and what ``force`` deletes) happens under the folder's lock, which the command
    then keeps (:func:`sim.runs.lock.hold`): a folder another process writes is refused, before
    anything in it is touched.

    Args:
        out: the folder.
        force: replace what a former command wrote: delete what matches ``owned``, nothing else.
        resume: keep what the folder holds (a killed batch to continue).
        owned: globs, relative to ``out``, of what the command writes there (files or folders).
        hint: what to do about a non-empty folder, for the message.

    Raises:
        FolderBusy: another process writes the folder (an :class:`InputError`).
        InputError: ``out`` is a file, or a non-empty folder without ``force`` or ``resume``, or
            the file system refuses.
    """
    path = make_folder(out)

    def check() -> None:
        try:
            if _has_content(path) and not (force or resume):
                raise InputError(f"{path}: folder is not empty; {hint}")
            if force and not resume:
                for pattern in owned:
                    for p in sorted(path.glob(pattern)):
                        if p.is_dir() and not p.is_symlink():
                            shutil.rmtree(p)
                        else:
                            p.unlink()
        except OSError as exc:
            raise InputError(f"{path}: cannot prepare the results folder: {exc.strerror or exc}") from None

    lock.hold(path, check)
    return path


def make_folder(out: str | Path) -> Path:
    """``out`` as a folder, created if missing (with its parents).

    Raises:
        InputError: ``out`` is a file, or cannot be created.
    """
    path = Path(out)
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot prepare the results folder: {exc.strerror or exc}") from None
    return path


def _has_content(path: Path) -> bool:
    """Anything in ``path`` but the empty table folders a batch that failed to start leaves (and its lock)."""
    for entry in path.iterdir():
        if entry.name == lock.LOCK_FILE:
            continue
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
    """Which runs have a runs part; removes orphan sales parts (whose runs part was never written).

    Raises:
        InputError: a part cannot be read, or a run id is stored twice (the folder then holds two
            batches' runs and cannot be continued).
    """
    runs_parts = {p.name: p for p in (out / "runs").glob("part-*.parquet")}
    for sales_part in (out / "sales").glob("part-*.parquet"):
        if sales_part.name not in runs_parts:
            sales_part.unlink()
    seen: dict[int, str] = {}
    twice: dict[int, tuple[str, ...]] = {}
    failed: list[int] = []
    for p in sorted(runs_parts.values()):
        t = read_part(p, columns=["run_id", "status"]).to_pydict()
        for r, s in zip(t["run_id"], t["status"], strict=True):
            if int(r) in seen:
                twice.setdefault(int(r), (seen[int(r)], p.name))
            seen[int(r)] = p.name
            if s != "ok":
                failed.append(int(r))
    if twice:
        raise twice_error(out, twice)
    return Finished(set(seen), sorted(set(failed)), len(runs_parts))


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


def encode_part(df: pd.DataFrame) -> bytes:
    """The bytes of the Parquet part (zstd) that holds ``df``'s rows."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def write_part(out: Path, table: str, name: str, df: pd.DataFrame | bytes) -> Path:
    """Write one Parquet part atomically (temporary file, then rename): a table's rows, or the bytes
    :func:`encode_part` made of them (in a worker: see :func:`sim.runs.chunks.run_chunk_encoded`)."""
    target = out / table / f"part-{name}.parquet"
    _atomic_write_bytes(target, df if isinstance(df, bytes) else encode_part(df))
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


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write, renamed over ``path`` when the block ends well and
    removed however it ends (an error, a disk that fills up, Ctrl-C)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_csv(out: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Write CSV copies of the tables (``runs.csv``, ``sales.csv``) next to them or into ``dest``, under
    the lock of the folder written (a partial batch is refused as :func:`load_results` refuses it)."""
    res = load_results(out)
    target = make_folder(Path(dest) if dest else Path(out))
    written = []
    with lock.holding(target):
        for name, df in (("runs", res.runs), ("sales", res.sales)):
            p = target / f"{name}.csv"
            with replacing(p) as tmp:
                df.to_csv(tmp, index=False)
            written.append(p)
    return written
