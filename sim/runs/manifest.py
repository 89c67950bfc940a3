"""The manifest of a results folder: what was asked, by which code, when and from which command.

Every writer of a folder (``sim run``, ``sim sweep``, a calibration round, a sensitivity study,
the elasticity runs of ``sim validate-model``, ``sim rerun --out``, the dashboard's in-memory
batches) starts its manifest with :func:`new_manifest`; :func:`sim.runs.batch.run_batch` then
adds how the batch ran (executor, workers, the choice kernel) and its progress. Light on
purpose (no pandas): the command line imports it before any command runs.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from collections.abc import Sequence
from contextvars import ContextVar
from importlib import metadata
from pathlib import Path
from typing import Any

#: Version of the manifest's layout.
FORMAT = 1

#: The command line that asked for what is being written, as ``sim.cli`` received it (program and arguments);
#: None when the library is called from Python. A context variable, so that ``sim.cli.main``
#: called twice in one process (tests) records each call's own.
COMMAND_LINE: ContextVar[list[str] | None] = ContextVar("command_line", default=None)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    out = {"python": platform.python_version()}
    for name in ("sim", "mesa", "numpy", "numba", "pandas", "pyarrow", "pydantic", "scipy", "pyyaml"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def code_version() -> str:
    """The git commit of the code (with ``+dirty`` for local changes), or the package version."""
    here = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode == 0:
            dirty = subprocess.run(
                # --no-optional-locks: a status must not rewrite the repository's index (write nothing
                # outside the results folder).
                ["git", "--no-optional-locks", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "sim"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from sim import __version__

    return __version__


def now_utc() -> str:
    """The time now, in UTC, to the second (ISO 8601)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def folder_stamp() -> str:
    """The time now as a folder name (``2025-06-01T120000Z``): default results folders are named by it."""
    return now_utc().replace(":", "").replace("+0000", "Z")


def new_manifest(kind: str, *, command: Sequence[str] | None = None, **fields: Any) -> dict[str, Any]:
    """A manifest: the fields every manifest carries, then ``kind`` and ``fields`` in their order.

    Args:
        kind: what the folder holds: ``run``, ``sweep``, ``calibration-round``, ``sensitivity``,
            ``elasticity``, ``rerun``.
        command: the command line to record (default: :data:`COMMAND_LINE`).
        fields: what was asked (scenario, seeds, replications, the ``request`` that identifies the
            batch for a resume...).

    Returns:
        ``format``, ``code_version``, ``packages``, ``created``, ``command``, ``platform``,
        ``kind``, then ``fields``.
    """
    return {
        "format": FORMAT,
        "code_version": code_version(),
        "packages": package_versions(),
        "created": now_utc(),
        "command": list(command) if command is not None else COMMAND_LINE.get(),
        "platform": platform.platform(),
        "kind": kind,
        **fields,
    }
