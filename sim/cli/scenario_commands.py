"""Commands of the scenario layer: ``sim validate`` and ``sim schema``."""

from __future__ import annotations

import argparse
import json
import sys

from sim.cli.registry import EXIT_INPUT, command
from sim.scenario.yamlio import InputError


def _validate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+")


@command("validate", _validate_arguments, help="check scenario files without running them")
def cmd_validate(args: argparse.Namespace) -> int:
    from sim.scenario.load import load_scenario

    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except InputError as exc:
            bad += 1
            print(str(exc), file=sys.stderr)
            continue
        print(f"{f}: ok ({sc.name}: {len(sc.products)} products, {len(sc.brands)} brands, {sc.start}..{sc.end}, hash {sc.hash()})")
    return EXIT_INPUT if bad else 0


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


@command("schema", _no_arguments, help="print the JSON Schema of a scenario file")
def cmd_schema(args: argparse.Namespace) -> int:
    from sim.scenario.load import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0
