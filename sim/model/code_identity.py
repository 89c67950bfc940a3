"""Which code makes a model's months: a hash of the model's and the scenario's sources and the versions
of the libraries that draw and compute them (what a snapshot, :mod:`sim.model.snapshot`, records and
checks before it goes on)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import mesa
import numpy as np

#: The sim packages whose sources make a model's months (folders of ``sim/``).
CODE_PACKAGES = ("scenario", "model")


def sources_hash(folders: Sequence[Path]) -> str:
    """SHA-256 (16 hex digits) of the ``.py`` files under ``folders``, by path relative to each folder's parent."""
    h = hashlib.sha256()
    for folder in folders:
        for f in sorted(folder.rglob("*.py")):
            h.update(f"{folder.name}/{f.relative_to(folder).as_posix()}\0".encode())
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def code_identity(kernel: str) -> dict[str, str]:
    """What makes the months of a model with this kernel: the hash of the model's and the scenario's sources
    (:data:`CODE_PACKAGES`), and the versions of numpy, Mesa and (numba kernel) numba. Read once a process."""
    return dict(_code_identity(kernel == "numba"))


@functools.cache
def _code_identity(numba: bool) -> tuple[tuple[str, str], ...]:
    sim = Path(__file__).resolve().parents[1]
    out = {"sources": sources_hash([sim / p for p in CODE_PACKAGES]), "numpy": np.__version__, "mesa": mesa.__version__}
    if numba:
        out["numba"] = metadata.version("numba")
    return tuple(out.items())


def code_version(kernel: str) -> str:
    """The code version of a model with this kernel: SHA-256 (16 hex digits) of :func:`code_identity`."""
    return hashlib.sha256(json.dumps(code_identity(kernel), sort_keys=True).encode()).hexdigest()[:16]
