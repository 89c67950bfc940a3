"""The anatomy of a headline: where the spread of a target's deliveries comes from.

``sim decompose`` (:mod:`sim.analysis.decomposition`) writes ``decomposition.json``: per target, the
standard deviation of the deliveries in its window with every source of uncertainty on, with none
(the agents' sampling noise alone) and with each source alone. :func:`find_decomposition` finds it
for a results folder (in the folder, beside it, or where ``--decomposition`` says);
:func:`anatomy_rows` turns one target's entry into rows that add up: each source's first-order
variance, the agents' sampling noise and the interaction, as shares of the variance with every
source on. :func:`anatomy_lines` is the plain-text form (``sim run``, ``sim compare``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.analysis.decomposition import DECOMPOSITION
from sim.present.json_files import read_json_object
from sim.present.report_html import number
from sim.scenario.yamlio import InputError

#: How each source reads in a table.
SOURCE_LABELS = {
    "parameters": "fitted parameters", "drift": "appeal offsets and drift after the data", "market": "market size and growth",
    "capacities": "capacities (assumed ranges)", "new_products": "appeal of new products",
}  # fmt: skip
AGENTS = "agent sampling"
INTERACTION = "interaction (not additive)"


@dataclass(frozen=True)
class Decomposition:
    """A decomposition and where it was read from."""

    data: dict[str, Any]
    path: Path

    @property
    def scenario(self) -> str:
        return str(self.data.get("scenario", ""))

    def target(self, name: str) -> dict[str, Any] | None:
        """The entry of a target, by name (None: the decomposition has no such target)."""
        return next((t for t in self.data.get("targets") or [] if t.get("target") == name), None)


@dataclass(frozen=True)
class AnatomyRow:
    """One source's part of the variance of a target's window deliveries.

    Attributes:
        source: its name as shown. sd: the standard deviation it gives alone (vehicles; NaN for the
            interaction, a variance that may be negative).
        share: its variance as a share of the variance with every source on (the rows add to 1).
        probability: P(target) with this source alone (and the agents' noise); None for the
            agents' and interaction rows.
        mean: the mean window deliveries with this source alone (vehicles).
    """

    source: str
    sd: float
    share: float
    probability: float | None = None
    mean: float | None = None


def find_decomposition(folder: str | Path, explicit: str | Path | None = None) -> Decomposition | None:
    """The decomposition of a results folder: ``explicit`` (a decomposition folder or its JSON file), else
    ``decomposition.json`` in the folder or beside it; None when there is none.

    Raises:
        InputError: when ``explicit`` holds no decomposition, or the file found is not a readable one.
    """
    if explicit is not None:
        p = Path(explicit)
        path = p if p.is_file() else p / DECOMPOSITION
        if not path.is_file():
            raise InputError(f"{explicit}: no {DECOMPOSITION} there (run sim decompose SCENARIO --out DIR)")
        return _read(path)
    for path in (Path(folder) / DECOMPOSITION, Path(folder).parent / DECOMPOSITION):
        if path.is_file():
            return _read(path)
    return None


def _read(path: Path) -> Decomposition:
    data = read_json_object(path, "a decomposition (sim decompose)")
    if not isinstance(data.get("targets"), list):
        raise InputError(f"{path}: not a decomposition (no 'targets' list)")
    return Decomposition(data, path)


def anatomy_rows(t: Mapping[str, Any]) -> list[AnatomyRow]:
    """A target's decomposition as rows whose shares add to one: each source, the agents' noise, the interaction."""
    var_all = float(t["sd_all"]) ** 2
    rows = []
    for name, s in (t.get("sources") or {}).items():
        v = float(s["sd"]) ** 2
        rows.append(AnatomyRow(SOURCE_LABELS.get(name, name.replace("_", " ")), float(s["sd"]), _share(v, var_all),
                               s.get("probability"), s.get("mean")))  # fmt: skip
    agents = float(t["sd_agents"]) ** 2
    rows.append(AnatomyRow(AGENTS, float(t["sd_agents"]), _share(agents, var_all)))
    inter = float(t.get("interaction_variance", 0.0))
    rows.append(AnatomyRow(INTERACTION, math.nan, _share(inter, var_all)))  # a variance that may be negative: no sd
    return rows


def _share(v: float, total: float) -> float:
    return v / total if total > 0 else math.nan


def anatomy_note(d: Decomposition, t: Mapping[str, Any], scenario: str | None = None, forecast: bool = False) -> str:
    """Where the decomposition's numbers come from (its own batches, not the folder's runs; ``forecast``: the
    folder is a forecast from a filtered state, which the decomposition's runs from the fitted history are not)."""
    lo, hi = t.get("probability_all_interval") or (math.nan, math.nan)
    other = f" of scenario '{d.scenario}'" if scenario is not None and d.scenario and d.scenario != scenario else ""
    note = (f"decomposition{other} in {d.path} ({t.get('runs', '?')} runs per configuration, common random numbers): "
            f"with every source on, P(target) {number(t.get('probability_all'), 2)} [95% CI {number(lo, 2)}-{number(hi, 2)}], "
            f"window deliveries mean {number(t.get('mean_all'))}, sd {number(t.get('sd_all'))}")  # fmt: skip
    if forecast:
        note += ("; its runs start from the fitted history, not from the state the assimilated figures left, "
                 "which narrows what the drift and the parameters can still do")  # fmt: skip
    return note


def anatomy_lines(d: Decomposition, target_name: str, scenario: str | None = None, indent: str = "  ",
                  forecast: bool = False) -> list[str]:  # fmt: skip
    """Plain lines: where the spread of a target's window deliveries comes from (empty: not in the decomposition;
    ``forecast``: of a forecast folder, :func:`anatomy_note`)."""
    t = d.target(target_name)
    if t is None:
        return []
    out = [f"{indent}where the spread of the window's deliveries comes from (share of the variance, sd in vehicles):"]
    for r in anatomy_rows(t):
        share = "-" if math.isnan(r.share) else f"{100 * r.share:5.1f}%"
        out.append(f"{indent}  {r.source:<30} {share:>7}  sd {number(r.sd):>10}")
    out.append(f"{indent}  ({anatomy_note(d, t, scenario, forecast)})")
    return out

