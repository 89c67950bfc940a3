"""What the commands share: argument types, the batch and output options, the output folder, the kernel.

A command that runs batches of model runs declares its execution options with
:func:`add_batch_options` (rewording a help text where its noun differs: a calibration, a study)
and gets its results folder from :func:`output_folder`, which applies the ``--resume`` and
``--force`` rules of every such command.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.scenario.yamlio import InputError

# --------------------------------------------------------------------------- argument types


def number(kind: type, minimum: float, *, strict: bool = False, maximum: float | None = None, what: str) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` (int or float) at least (or, if ``strict``, above) ``minimum``, at most ``maximum``.

    Args:
        what: the expected value in the message, e.g. ``"a whole number"``.
    """

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (v > minimum if strict else v >= minimum):  # written so that NaN fails too
            bound = f"> {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {v}")
        return v

    return parse


positive_int = number(int, 1, what="a whole number")
nonneg_int = number(int, 0, what="a whole number")
positive_float = number(float, 0.0, strict=True, what="a number")
port = number(int, 0, maximum=65535, what="a whole number")

# --------------------------------------------------------------------------- option groups

#: Help of ``--executor`` where a command words it briefly.
EXECUTOR_BRIEF = "serial, processes (default), dask or dask://HOST:PORT"

#: The options of the commands that run batches: flags and argparse keywords, in their usual order.
BATCH_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "workers": (("--workers", "-w"), {"type": positive_int, "help": "worker processes (default: all cores)"}),
    "executor": (("--executor",), {"default": "processes", "metavar": "KIND",
                                   "help": "serial, processes (default), dask (a local Dask cluster) or dask://HOST:PORT "
                                           "(a running scheduler)"}),
    "chunk_size": (("--chunk-size",), {"type": positive_int,
                                       "help": "runs per task (default: adaptive, about 10 s of work per task, at most "
                                               "100 runs)"}),
    "resume": (("--resume",), {"action": "store_true", "help": "continue a killed batch in --out: skip stored runs, run the rest"}),
    "dry_run": (("--dry-run",), {"action": "store_true", "help": "print the number of runs and an estimated time; write nothing"}),
    "force": (("--force",), {"action": "store_true", "help": "replace the results in a non-empty folder"}),
    "quiet": (("--quiet", "-q"), {"action": "store_true", "help": "no progress or summary"}),
}  # fmt: skip


def add_batch_options(p: argparse.ArgumentParser, *names: str, **help: str) -> None:
    """Add batch options to ``p``: ``names`` (keys of :data:`BATCH_OPTIONS`), in that order; default all.

    Args:
        help: this command's wording of an option's help, by name (e.g. ``quiet="no progress"``).
    """
    chosen = names or tuple(BATCH_OPTIONS)
    unknown = set(chosen) - set(BATCH_OPTIONS) | set(help) - set(chosen)
    if unknown:
        raise ValueError(f"not batch options of this command: {sorted(unknown)}")
    for name in chosen:
        flags, kwargs = BATCH_OPTIONS[name]
        p.add_argument(*flags, **(kwargs | ({"help": help[name]} if name in help else {})))


def add_out_option(p: argparse.ArgumentParser, help: str, *, required: bool = False) -> None:
    """``--out`` / ``-o``: where the command writes (``help`` says what and the default)."""
    p.add_argument("--out", "-o", required=required, help=help)


# --------------------------------------------------------------------------- the output folder


def check_resume(args: argparse.Namespace, what: str = "batch") -> None:
    """The rules of ``--resume``: not with ``--force``, and only into a named ``--out`` (the ``what`` to continue)."""
    if args.resume and args.force:
        raise InputError("--resume and --force contradict each other: --resume keeps the stored runs, --force deletes them")
    if args.resume and not args.out:
        raise InputError(f"--resume needs --out: the folder of the {what} to continue")


def output_folder(
    args: argparse.Namespace, default: Path, *, what: str = "batch", prepare: Callable[..., Path] | None = None
) -> Path:
    """The folder a batch command writes: ``--out`` (else ``default``), checked and prepared.

    Args:
        default: the folder without ``--out``, e.g. ``results/<scenario>/<time>`` (:func:`default_folder`).
        what: what ``--resume`` continues, for the messages.
        prepare: ``prepare(folder, force=..., resume=...)`` (default :func:`sim.runs.store.prepare_output`,
            a results folder; :func:`sim.runs.store.prepare_folder` for another layout).

    Raises:
        InputError: ``--resume`` with ``--force`` or without ``--out``, a non-empty folder without
            either, a folder that cannot be written.
    """
    from sim.runs import store

    check_resume(args, what)
    folder = Path(args.out) if args.out else default
    return (prepare or store.prepare_output)(folder, force=args.force, resume=args.resume)


def default_folder(*parts: str) -> Path:
    """``results/<parts...>/<time now>``: where a batch goes without ``--out``."""
    from sim.runs.manifest import folder_stamp

    return Path("results", *parts, folder_stamp())


# --------------------------------------------------------------------------- the choice kernel

#: The choice kernel of runs when ``SIM_KERNEL`` is unset (the default of :class:`sim.runs.run.RunSpec`).
DEFAULT_KERNEL = "numba"


def kernel_from_environment() -> str | None:
    """``SIM_KERNEL``, checked: a bad one is bad input before any run starts (and fails on it); None when unset.

    The only place that reads it: the commands pass the kernel into their runs' specs.
    """
    name = os.environ.get("SIM_KERNEL")
    if not name:
        return None
    from sim.model.kernels import resolve_kernel

    return resolve_kernel(name, origin="SIM_KERNEL")


def run_kernel(args: argparse.Namespace) -> str:
    """The choice kernel of the runs a command starts (``SIM_KERNEL``, read by :func:`sim.cli.app.main`)."""
    return args.kernel or DEFAULT_KERNEL
