"""The table of ``sim``'s subcommands: every one declared the same way, with :func:`command`.

A command is a function that declares its arguments on a parser and a function that runs it::

    def _export_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("results")

    @command("export", _export_arguments, help="write CSV copies of a results folder's tables")
    def cmd_export(args: argparse.Namespace) -> int:
        ...

:func:`sim.cli.app.build_parser` adds the commands in the order they were declared (the order of
:data:`sim.cli.app.COMMAND_MODULES`, then of each module).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

#: What a command runs: the parsed arguments in, the exit status out (0 ok, 1 failed runs, 2 bad input).
Handler = Callable[[argparse.Namespace], int]
#: Exit status of bad input (a file, a field or an option), as argparse's own errors.
EXIT_INPUT = 2


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes:
        name: what the user types after ``sim``.
        run: the handler.
        arguments: declares the command's arguments and options on its parser.
        help: one line in ``sim --help``.
        description: the paragraph of ``sim NAME --help`` (default: none).
    """

    name: str
    run: Handler
    arguments: Callable[[argparse.ArgumentParser], None]
    help: str
    description: str | None = None


#: Every declared command, in declaration order.
COMMANDS: list[Command] = []


def command(
    name: str, arguments: Callable[[argparse.ArgumentParser], None], *, help: str, description: str | None = None
) -> Callable[[Handler], Handler]:
    """Declare the decorated handler as the subcommand ``name``, its arguments declared by ``arguments``."""

    def register(run: Handler) -> Handler:
        if any(c.name == name for c in COMMANDS):
            raise ValueError(f"the command {name!r} is declared twice")
        COMMANDS.append(Command(name, run, arguments, help, description))
        return run

    return register
