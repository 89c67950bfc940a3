"""Layer 6, the ``sim`` command line: the only place that parses arguments."""

from sim.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
