"""Results on disk: a manifest plus Parquet parts, written atomically.

Layout of a results folder::

    DIR/manifest.json          what was asked, seeds, versions, what finished
    DIR/runs/part-*.parquet    one row per run
    DIR/sales/part-*.parquet   one row per run, month, market and product

Each part is written to a temporary file in the same folder and renamed, so a
part is either whole or absent. Nothing is pickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .yamlio import InputError

TABLES = ("runs", "sales")
MANIFEST = "manifest.json"


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    out = {"python": platform.python_version()}
    for name in ("sim", "mesa", "numpy", "pandas", "pyarrow", "pydantic", "scipy", "pyyaml"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def code_version() -> str:
    """The git commit of the code (with ``+dirty`` for local changes), or the package version."""
    here = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "sim"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from . import __version__

    return __version__


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def prepare_output(out: str | Path, *, force: bool = False, resume: bool = False) -> Path:
    """Create ``out`` or check it may be written: a non-empty folder needs ``force`` or ``resume``."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (force or resume):
        raise InputError(
            f"{path}: folder is not empty; use --force to replace its results or --resume to continue a batch"
        )
    if force and path.is_dir() and not resume:
        for table in TABLES:
            for part in (path / table).glob("part-*.parquet"):
                part.unlink()
        (path / MANIFEST).unlink(missing_ok=True)
    for table in TABLES:
        (path / table).mkdir(parents=True, exist_ok=True)
    return path


def _atomic_write_bytes(path: Path, data: bytes) -> None:
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


def read_manifest(out: str | Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise InputError(f"{out}: no {MANIFEST}; is this a results folder written by 'sim run'?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: manifest is not valid JSON: {exc.msg}") from None


def read_table(out: str | Path, table: str) -> pd.DataFrame:
    """All parts of one table, in part order."""
    parts = sorted((Path(out) / table).glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame()
    frames = [pq.read_table(p).to_pandas() for p in parts]
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

    @property
    def ok_runs(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"] if len(self.runs) else self.runs


def load_results(out: str | Path) -> Results:
    """Load a results folder written by ``sim run`` or ``sim sweep``."""
    path = Path(out)
    if not path.is_dir():
        raise InputError(f"{path}: no such results folder")
    manifest = read_manifest(path)
    return Results(path, manifest, read_table(path, "runs"), read_table(path, "sales"))


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


def base_manifest(argv: list[str] | None = None) -> dict[str, Any]:
    """Fields every manifest carries: code and package versions, time, command line."""
    return {
        "format": 1,
        "code_version": code_version(),
        "packages": package_versions(),
        "created": now_utc(),
        "command": argv if argv is not None else sys.argv,
        "platform": platform.platform(),
    }
