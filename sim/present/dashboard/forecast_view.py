"""The Forecast page's content: a forecast folder (``sim forecast``) read once, without Solara.

:func:`forecast_view` gives the numbers (each target's probability with its interval, before and after
the last month's figures), the figures (the fan chart with the assimilated figures marked, the
effective sample size by month and, with a forecast before the last figures, what they moved: the
report's, :mod:`sim.present.report_forecast`) and the table of the figures assimilated. Views are cached by folder and the modification time of its manifest.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sim.analysis.compare import target_table
from sim.present.forecast_folder import Assimilation
from sim.present.report_batch import load_batch
from sim.present.report_forecast import ess_figure, forecast_fan_figure, moved_figure
from sim.runs.store import MANIFEST
from sim.scenario.yamlio import InputError

#: Columns of :attr:`ForecastView.table`, as the page shows them.
TABLE_COLUMNS = {
    "figure": "figure", "month": "month", "qualifier": "qualifier", "reported": "reported",
    "simulated_median": "particles before it: median", "simulated_p5": "5%", "simulated_p95": "95%",
    "inside": "inside 5-95%",
}  # fmt: skip


@dataclass
class ForecastView:
    """What the Forecast page shows of a forecast folder.

    Attributes:
        folder: the forecast folder. label: its scenario's name.
        assimilation: what it assimilated (origin, figures, effective sample size).
        targets: each target's summary (:func:`sim.analysis.compare.target_table`).
        before: the same before the last month's figures (``DIR/before``; empty: none).
        figures: ``fan``, ``ess`` and (with ``before`` and a target) ``moved`` (matplotlib figures).
        table: the figures assimilated (:data:`TABLE_COLUMNS`).
    """

    folder: Path
    label: str
    assimilation: Assimilation
    targets: list[dict[str, Any]]
    before: dict[str, dict[str, Any]]
    figures: dict[str, Figure] = field(default_factory=dict)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def forecast_view(folder: str | Path) -> ForecastView:
    """The view of a forecast folder (cached until its manifest changes); :class:`InputError` if it is not one."""
    path = Path(folder)
    try:
        stamp = (path / MANIFEST).stat().st_mtime
    except OSError:
        raise InputError(f"{folder}: no such results folder") from None
    return _view(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=4)
def _view(folder: str, stamp: float) -> ForecastView:
    batch = load_batch(folder, reported=pd.DataFrame())  # the page marks the assimilated figures, not the others
    a = batch.assimilation
    if a is None:
        raise InputError(f"{folder}: not a forecast folder (made by sim forecast)")
    before = {t["name"]: t for t in target_table(batch.before.results)} if batch.before is not None else {}
    table = a.figures[list(TABLE_COLUMNS)].copy()
    for c in ("reported", "simulated_median", "simulated_p5", "simulated_p95"):
        table[c] = table[c].round(0).astype("Int64")  # whole vehicles
    table["inside"] = table["inside"].map({True: "yes", False: "NO"})
    table = table.rename(columns=TABLE_COLUMNS)
    figures = {"fan": forecast_fan_figure(batch), "ess": ess_figure(batch)}
    if batch.before is not None and batch.target:
        figures["moved"] = moved_figure(batch)
    return ForecastView(Path(folder), batch.label, a, target_table(batch.results), before, figures, table)
