"""A results folder as ``sim report`` and ``sim plot`` read it: its scenario, finished runs and comparison
(and for a forecast folder, what it assimilated and the forecast before its last figures).

:func:`load_batch` loads a folder (one scenario's batch, not a sweep) as a :class:`Batch`; :func:`pair_of`
compares it replicate by replicate with a reference batch; :func:`write_whole` writes an output file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.compare import Comparison, compare
from sim.analysis.figure_comparison import default_figures
from sim.analysis.pair_comparison import PairComparison, compare_pair
from sim.analysis.targets import target_outcomes
from sim.present.forecast_folder import Assimilation, assimilation_of, before_folder, month_after
from sim.runs.store import MANIFEST, Results, load_results, replacing
from sim.scenario.months import parse_month
from sim.scenario.yamlio import InputError


@dataclass
class Batch:
    """A results folder prepared for figures: its scenario, first target and comparison."""

    results: Results
    label: str
    reported: Any = None  # reported figures for :func:`sim.analysis.compare.compare` (None: the project's)

    @property
    def scenario(self) -> dict[str, Any]:
        return self.results.manifest.get("scenario") or {}

    @property
    def target(self) -> dict[str, Any] | None:
        targets = self.scenario.get("targets") or []
        return targets[0] if targets else None

    @property
    def brand(self) -> str:
        """The brand of the headline: the first target's, else AITO, else the best seller."""
        if self.target:
            return str(self.target["brand"])
        brands = self.sales.groupby("brand")["units"].sum().sort_values(ascending=False)
        return "AITO" if "AITO" in brands.index else str(brands.index[0])

    @property
    def forecast_start(self) -> str | None:
        """The first forecast month: after a forecast's origin, else the scenario's ``forecast_start``."""
        if self.assimilation is not None:
            return month_after(self.assimilation.origin)
        fs = self.scenario.get("forecast_start")
        return str(fs) if fs else None

    @cached_property
    def assimilation(self) -> Assimilation | None:
        """What a forecast folder assimilated (None: not a forecast)."""
        return assimilation_of(self.results.manifest)

    @cached_property
    def before(self) -> Batch | None:
        """A forecast's replicates before its last month's figures (``DIR/before``), if any."""
        folder = before_folder(self.results.path) if self.assimilation is not None else None
        if folder is None:
            return None
        last = self.assimilation.last_month if self.assimilation else None
        return load_batch(folder, self.reported, label=f"before the figures of {last}" if last else "before")

    @cached_property
    def sales(self) -> pd.DataFrame:
        """Sales of the finished runs."""
        res = self.results
        if res.sales.empty:
            raise InputError(f"{res.path}: no sales in the results (no finished runs?)")
        ok = res.runs.loc[res.runs["status"] == "ok", "run_id"] if len(res.runs) else res.sales["run_id"]
        sales = res.sales[res.sales["run_id"].isin(ok)]
        if sales.empty:
            raise InputError(f"{res.path}: no finished runs")
        return sales

    @property
    def runs(self) -> int:
        return int(self.sales["run_id"].nunique())

    @cached_property
    def comparison(self) -> Comparison:
        return compare(self.results, self.reported, figures_filter=default_figures)

    def outcomes(self, target: Mapping[str, Any]) -> pd.DataFrame:
        return target_outcomes(self.sales, target["brand"], float(target["units"]), target["start"], target["by"])

    def first_delivery(self, brand: str) -> str | None:
        """The brand's first delivery month in the scenario (delivery start or launch of its first product)."""
        months = [str(p.get("delivery_start") or p.get("launch")) for p in self.scenario.get("products") or []
                  if p.get("brand") == brand and (p.get("delivery_start") or p.get("launch"))]  # fmt: skip
        return min(months, key=parse_month) if months else None


def load_batch(path: str | Path, reported: Any = None, label: str | None = None) -> Batch:
    """Load a results folder for a report (bad folders raise :class:`InputError`); ``label``: how it is named
    (default: its scenario's name)."""
    if (Path(path) / "backtest.json").is_file() and not (Path(path) / MANIFEST).is_file():
        raise InputError(f"{path}: a backtest folder (sim backtest), not a batch: its figure is sim plot --what backtest, "
                         "and sim report DIR --backtest BTDIR adds it to a report")  # fmt: skip
    res = load_results(path)
    if res.design is not None and len(res.design) > 1:
        raise InputError(f"{path}: a sweep of {len(res.design)} design points; a report reads one scenario's batch "
                         "(sim run), not a sweep")  # fmt: skip
    batch = Batch(res, label or str(res.manifest.get("scenario_name") or Path(path).name), reported)
    _ = batch.sales  # fail early on a folder with no finished run
    return batch


def tell_apart(a: Batch, b: Batch) -> None:
    """Two batches of the same scenario name are told apart by their folders."""
    if a.label == b.label:
        a.label, b.label = f"{a.label} ({a.results.path.name})", f"{b.label} ({b.results.path.name})"


def pair_of(batch: Batch, vs: Batch, unpaired: bool = False) -> PairComparison:
    """``batch - vs`` replicate by replicate (:func:`sim.analysis.pair_comparison.compare_pair` with A = ``vs``)."""
    return compare_pair(vs.results, batch.results, unpaired=unpaired)



def write_whole(out: Path, data: bytes) -> None:
    """Write a file whole (temporary file, then rename; the temporary file removed however it ends), creating its folder."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None

