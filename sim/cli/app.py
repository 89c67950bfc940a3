"""The ``sim`` program: builds the parser from the command table, runs a command, maps errors to exit statuses.

Bad input exits with status 2 and a message naming the file, line and field;
no traceback is printed (set ``SIM_DEBUG=1`` to see one for internal errors).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import NoReturn

from sim.cli.options import kernel_from_environment, temporary_folders
from sim.cli.registry import COMMANDS, EXIT_INPUT, Handler
from sim.scenario.yamlio import InputError

#: The modules that declare commands, in the order ``sim --help`` lists their commands.
COMMAND_MODULES = (
    "sim.cli.run_commands",
    "sim.cli.scenario_commands",
    "sim.cli.analysis_commands",
    "sim.cli.forecast_commands",
    "sim.cli.present_commands",
    "sim.cli.library_commands",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with usage, as argparse does, but no traceback
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``sim`` and every command of :data:`sim.cli.registry.COMMANDS`.

    Args:
        only: declare the arguments of this command only (``""``: of none); the others keep their name
            and help line, all that ``sim --help`` shows. Declaring a command's arguments may import what
            the command needs (choices from the analysis modules), which ``sim --help`` should not pay.
    """
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    p = _Parser(prog="sim", description="Agent-based simulator of China's premium car market.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for c in COMMANDS:
        cp = sub.add_parser(c.name, help=c.help, description=c.description)
        if only is None or c.name == only:
            c.arguments(cp)
        cp.set_defaults(func=c.run)
    return p


def _command_named(argv: list[str]) -> str:
    """The command ``argv`` asks for: its first word that is not an option (``""`` if none)."""
    return next((a for a in argv if not a.startswith("-")), "")


def _version() -> str:
    from sim import __version__

    return f"sim {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Run ``sim`` with ``argv`` (default: the process's arguments); returns the exit status.

    The command runs in a lock session (the folders it writes stay locked until it ends,
    :mod:`sim.runs.lock`), with SIGTERM handled as Ctrl-C (a batch records that it was
    interrupted and says how to continue), and with ``--allow-partial`` in force for the
    results folders it reads where the command has that option.
    """
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(only=_command_named(words)).parse_args(words)
    # Imported once the arguments are parsed: `sim --help` and usage errors exit before (they import pandas).
    from sim.runs import lock
    from sim.runs.manifest import COMMAND_LINE
    from sim.runs.results import PARTIAL_ALLOWED

    token = COMMAND_LINE.set(list(sys.argv))  # recorded in the manifests the command writes
    partial = PARTIAL_ALLOWED.set(bool(getattr(args, "allow_partial", False)))
    stop = _Stop()
    try:
        with stop.on_sigterm(), lock.session(), temporary_folders():
            args.kernel = kernel_from_environment()
            handler: Handler = args.func
            return handler(args)
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt as exc:
        print(str(exc) or "interrupted", file=sys.stderr)
        return 128 + (stop.signal or signal.SIGINT)
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system, not the code: disk full, read-only folder, permissions
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory; use a larger --scale, fewer --workers or fewer replications", file=sys.stderr)
        return 1
    except Exception as exc:  # last resort: say what happened without a traceback
        if os.environ.get("SIM_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (set SIM_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
    finally:
        PARTIAL_ALLOWED.reset(partial)
        COMMAND_LINE.reset(token)


class _Stop:
    """SIGTERM raised as :class:`KeyboardInterrupt` (once: a second one does not interrupt the cleanup)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @contextlib.contextmanager
    def on_sigterm(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread can handle signals (a command run from a thread keeps the default)
            return

        def handler(signum: int, frame: object) -> None:
            if self.signal is None:
                self.signal = signum
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
