"""What the commands share: argument types, the batch and output options, the output folder, the kernel.

A command that runs batches of model runs declares its execution options with
:func:`add_batch_options` (rewording a help text where its noun differs: a calibration, a study)
and gets its results folder from :func:`output_folder`, which applies the ``--resume`` and
``--force`` rules of every such command.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.scenario.yamlio import InputError

if TYPE_CHECKING:
    from sim.runs.run import RunSpec

# --------------------------------------------------------------------------- argument types


def number(kind: type, minimum: float, *, strict: bool = False, maximum: float | None = None, what: str) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` (int or float) at least (or, if ``strict``, above) ``minimum``, at most ``maximum``.

    Args:
        what: the expected value in the message, e.g. ``"a whole number"``.
    """

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if not (v > minimum if strict else v >= minimum):
            bound = f"> {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {v}")
        return v

    return parse


#: Largest count any option takes (runs, replications, iterations, points): far beyond a useful one.
MAX_COUNT = 1_000_000
#: Largest root seed (numpy takes any; the tables keep it in 64 bits).
MAX_SEED = 2**63 - 1

positive_int = number(int, 1, maximum=MAX_COUNT, what="a whole number")
nonneg_int = number(int, 0, maximum=MAX_COUNT, what="a whole number")
seed_int = number(int, 0, maximum=MAX_SEED, what="a whole number")
positive_float = number(float, 0.0, strict=True, what="a number")
port = number(int, 0, maximum=65535, what="a whole number")


def workers_int(text: str) -> int:
    """An argparse type: worker processes, at least 1, at most 4 per core (more only add overhead and memory)."""
    most = max(4, 4 * (os.cpu_count() or 1))
    n: int = number(int, 1, maximum=most, what="a whole number")(text)
    return n


# --------------------------------------------------------------------------- option groups

#: Help of ``--executor`` where a command words it briefly.
EXECUTOR_BRIEF = "serial, processes (default), dask or dask://HOST:PORT"

#: The options of the commands that run batches: flags and argparse keywords, in their usual order.
BATCH_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "workers": (("--workers", "-w"), {"type": workers_int, "help": "worker processes (default: all cores)"}),
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


def add_set_option(p: argparse.ArgumentParser, help: str = "override a scenario value, e.g. --set 'products.AITO M6.price=260000'") -> None:
    """``--set PATH=VALUE`` (repeatable, into ``args.sets``): a scenario value by path, as every command reads it."""
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE", help=help)


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
    """The folder a batch command writes: ``--out`` (else ``default``), checked and prepared under its
    lock, which the command keeps until it ends.

    Args:
        default: the folder without ``--out``, e.g. ``results/<scenario>/<time>`` (:func:`default_folder`).
        what: what ``--resume`` continues, for the messages.
        prepare: ``prepare(folder, force=..., resume=...)`` (default :func:`sim.runs.store.prepare_output`,
            a results folder; :func:`sim.runs.store.prepare_folder` for another layout).

    Raises:
        InputError: ``--resume`` with ``--force`` or without ``--out``, a non-empty folder without
            either, a folder that cannot be written, a folder another process writes.
    """
    from sim.runs import lock, store

    check_resume(args, what)
    folder = Path(args.out) if args.out else default
    left = lock.current_holder(folder)
    path = (prepare or store.prepare_output)(folder, force=args.force, resume=args.resume)
    if left is not None and not left.alive():
        print(f"note: {path}: took over the lock left by a writer that is no longer running ({left.describe()})",
              file=sys.stderr)  # fmt: skip
    return path


def concurrent_runs(args: argparse.Namespace) -> int:
    """Runs a batch command holds in memory at once: its worker processes (one for ``serial``)."""
    if getattr(args, "executor", "processes") == "serial":
        return 1
    return int(getattr(args, "workers", None) or os.cpu_count() or 1)


def check_batch_size(specs: Sequence[RunSpec], args: argparse.Namespace) -> None:
    """Refuse, before anything runs or is written, runs that would have no buyer agent or not fit in
    memory (:func:`sim.runs.limits.check_specs`), with the command's ``--workers``."""
    from sim.runs.limits import check_specs

    check_specs(specs, concurrent_runs(args))


def hold_folder(folder: str | Path) -> None:
    """Lock a folder the command writes into (not a batch's: an exported table, a report) until it ends.

    Raises:
        InputError: another process writes the folder, or it cannot be created.
    """
    from sim.runs import lock, store

    lock.hold(store.make_folder(folder))


def add_allow_partial(p: argparse.ArgumentParser) -> None:
    """``--allow-partial``: read a results folder whose batch did not finish (see :func:`sim.runs.store.load_results`)."""
    p.add_argument("--allow-partial", action="store_true",
                   help="read a results folder whose batch did not finish (killed, interrupted, still running); "
                        "what is read says it is partial")  # fmt: skip


# --------------------------------------------------------------------------- temporary folders

#: The temporary folders of the running command, removed when it ends (see :func:`temporary_folders`).
_TEMPORARY: ContextVar[contextlib.ExitStack | None] = ContextVar("sim_temporary", default=None)


@contextlib.contextmanager
def temporary_folders() -> Iterator[None]:
    """Remove the folders :func:`temporary_folder` makes inside the block when it ends, however it ends."""
    with contextlib.ExitStack() as stack:
        token = _TEMPORARY.set(stack)
        try:
            yield
        finally:
            _TEMPORARY.reset(token)


def temporary_folder(prefix: str) -> Path:
    """A new private folder in the system's temporary folder, removed when the command ends."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    stack = _TEMPORARY.get()
    if stack is None:  # outside a command: the folder lives as long as the process
        _ORPHANS.append(tmp)
    else:
        stack.enter_context(tmp)
    return Path(tmp.name)


_ORPHANS: list[tempfile.TemporaryDirectory[str]] = []


def private_matplotlib_cache() -> None:
    """Give matplotlib (imported after this, to draw) a temporary folder for its cache, not ``$HOME``.

    Left alone when ``MPLCONFIGDIR`` is set; restored when the command ends.
    """
    if "MPLCONFIGDIR" in os.environ:
        return
    os.environ["MPLCONFIGDIR"] = str(temporary_folder("sim-matplotlib-"))
    stack = _TEMPORARY.get()
    if stack is not None:
        stack.callback(os.environ.pop, "MPLCONFIGDIR", None)


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
