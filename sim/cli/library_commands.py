"""Commands of sim as an installed library: ``sim warmup``."""

from __future__ import annotations

import argparse

from sim.cli.registry import command


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


@command(
    "warmup",
    _no_arguments,
    help="compile the numba choice kernel now, so that the first run does not (says how long it took)",
    description="Runs two months of the shipped baseline at a coarse scale, which compiles the numba choice kernel "
    "(15-45 s once after installing) or loads it from numba's on-disk cache (about a second), and says which, "
    "how long it took and where the cache is.",
)
def cmd_warmup(args: argparse.Namespace) -> int:
    from sim.model.warmup import warmup

    print(warmup().summary())
    return 0
