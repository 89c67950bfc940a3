"""The loss of ``sim calibrate``: the reported volumes fitted to, and the distance of a parameter set.

Targets are the reported figures through the cut-off, monthly, quarterly, annual
and cumulative (period sums), built by :func:`sim.analysis.fit_appeals.volume_targets` (conflicting
sources averaged by confidence; months without a figure are simply not targets). The
distance of a parameter set is the weighted root mean square log error
``sqrt(sum_t w_t r_t^2 / sum_t w_t)`` with ``r_t = log(max(simulated_t, 1) / reported_t)``
and ``w_t`` = confidence weight x frequency weight x brand weight.

The figures come from the reported-figures file (:func:`sim.analysis.reported.load_reported`) or
a tidy table (:data:`TABLE_COLUMNS`, :func:`read_table_file`); :func:`target_values` sums a batch's
simulated deliveries over each target's months, and :func:`distances` scores them.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.calibration_file import CalibrationFile, DataSpec
from sim.analysis.fit_targets import CONFIDENCE_WEIGHT, FREQUENCY_WEIGHT, VolumeTarget, volume_targets
from sim.scenario.months import format_month, parse_month
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, InputError, Location, Problem, read_bounded


@dataclass(frozen=True)
class FitTarget:
    """A reported volume in the loss (or held out): a :class:`VolumeTarget` with its frequency and final weight."""

    volume: VolumeTarget
    frequency: str
    weight: float
    in_sample: bool

    @property
    def key(self) -> str:
        return self.volume.key

    @property
    def series(self) -> str:
        return self.volume.model or self.volume.brand


#: Columns of a tidy targets table (``data.table``).
TABLE_COLUMNS = ("brand", "model", "start", "end", "frequency", "value", "confidence")


class _Figures:
    """A stand-in for :class:`sim.analysis.reported.ReportedFigures` (``.figures``) built from a tidy table."""

    def __init__(self, figures: pd.DataFrame):
        self.figures = figures


def load_figures(spec: DataSpec, path: Path, doc: Document) -> Any:
    """The reported figures the file's ``data`` names: a figures file (default: the project's) or a tidy table."""
    from sim.analysis.reported import load_reported

    if spec.figures is not None and spec.table is not None:
        raise InputError(Problem("give 'figures' or 'table', not both", doc.where(("data",)), "data"))
    if spec.table is None:
        file = (path.parent / spec.figures).resolve() if spec.figures else None
        if file is not None and not file.is_file():
            raise InputError(Problem(f"'{spec.figures}' does not exist ({file})", doc.where(("data", "figures")), "data.figures"))
        try:
            return load_reported(file)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return read_table_file((path.parent / spec.table).resolve(), doc.where(("data", "table")))


#: Largest tidy targets table read, bytes.
MAX_TABLE_BYTES = 20_000_000


def read_table_file(file: Path, where: Location | None = None) -> _Figures:
    """Read a tidy targets CSV (:data:`TABLE_COLUMNS`; ``model`` may be empty for a brand total)."""
    if not os.path.lexists(file):
        raise InputError(Problem(f"'{file}' does not exist", where, "data.table"))
    raw = read_bounded(file, MAX_TABLE_BYTES)  # a regular file (not a FIFO or a device), bounded
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem("not UTF-8 text", Location(str(file), raw[: exc.start].count(b"\n") + 1))) from None
    rows, problems = [], []
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TABLE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{file}:1: missing column(s) {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            try:
                start, end = parse_month(row["start"]), parse_month(row["end"])
                if end < start:
                    raise ValueError(f"end {row['end']} is before start {row['start']}")
                if row["frequency"] not in FREQUENCY_WEIGHT:
                    raise ValueError(f"frequency must be one of {', '.join(FREQUENCY_WEIGHT)}, got {row['frequency']!r}")
                if row["confidence"] not in CONFIDENCE_WEIGHT:
                    raise ValueError(f"confidence must be one of {', '.join(CONFIDENCE_WEIGHT)}, got {row['confidence']!r}")
                value = float(row["value"])
                if not value > 0:
                    raise ValueError(f"value must be > 0, got {row['value']!r}")
            except ValueError as exc:
                problems.append(Problem(str(exc), Location(str(file), line)))
                continue
            rows.append({
                "line": line, "brand": row["brand"], "model": row["model"] or None, "start": format_month(start),
                "end": format_month(end), "frequency": row["frequency"], "value": value,
                "confidence": row["confidence"], "measure": "deliveries", "basis": "", "market": "CN",
            })
    if problems:
        raise InputError(problems)
    return _Figures(pd.DataFrame(rows, columns=["line", *TABLE_COLUMNS, "measure", "basis", "market"]))


def _frequency(t: VolumeTarget, figures: pd.DataFrame) -> str:
    """The frequency of a target's figures (its first line), or as its period suggests."""
    line = int(t.lines.split(",")[0])
    rows = figures[(figures["line"] == line) & (figures["brand"] == t.brand)]
    rows = rows[rows["model"] == t.model] if t.model else rows[rows["model"].isna()]
    if len(rows) and rows["frequency"].iloc[0] in FREQUENCY_WEIGHT:
        return str(rows["frequency"].iloc[0])
    s, e = parse_month(t.start), parse_month(t.end)
    if s == e:
        return "monthly"
    if e - s == 2 and s % 3 == 0:
        return "quarterly"
    if e - s == 11 and s % 12 == 0:
        return "annual"
    return "cumulative"


def select_targets(cfg: CalibrationFile, scenario: Scenario, figures: Any, fit_end: int, doc: Document) -> list[FitTarget]:
    """The reported volumes of ``figures`` the file's ``data`` selects, weighted, in sample through month ``fit_end``."""
    spec = cfg.data
    brands = {b.name for b in scenario.brands}
    for k, b in enumerate(spec.brands or []):
        if b not in brands:
            raise InputError(Problem(f"unknown brand '{b}'", doc.where(("data", "brands", k)), f"data.brands[{k}]"))
    for b in spec.brand_weight:
        if b not in brands:
            raise InputError(Problem(f"unknown brand '{b}'", doc.where(("data", "brand_weight", b)), f"data.brand_weight.{b}"))
    out = []
    for t in volume_targets(scenario, scenario.end, figures):
        if (spec.brands is not None and t.brand not in spec.brands) or (t.model and not spec.products):
            continue
        freq = _frequency(t, figures.figures)
        # The appeal fit's weight (confidence x frequency, series balanced), re-weighted by this file.
        ratio = spec.frequency_weight.get(freq, FREQUENCY_WEIGHT[freq]) / FREQUENCY_WEIGHT[freq]
        weight = t.weight * ratio * spec.brand_weight.get(t.brand, 1.0)
        if weight > 0:
            out.append(FitTarget(t, freq, weight, parse_month(t.end) <= fit_end))
    return out


def target_values(sales: pd.DataFrame, targets: list[FitTarget], market: str, start_index: int, n_months: int) -> pd.DataFrame:
    """Simulated units of every target per run: rows run_id, columns target keys (0 where nothing was sold).

    A target's value is its brand's (or product's) deliveries in ``market`` summed over its period.
    """
    runs = np.sort(sales["run_id"].unique()) if len(sales) else np.array([], int)
    out = np.zeros((runs.size, len(targets)))
    if runs.size and targets:
        s = sales[sales["market"] == market]
        months = {format_month(start_index + i): i for i in range(n_months)}
        mi = s["month"].map(months).to_numpy()
        ok = ~pd.isna(mi)
        s, mi = s[ok], mi[ok].astype(int)
        ri = np.searchsorted(runs, s["run_id"].to_numpy())
        units = s["units"].to_numpy(float)
        for kind in ("brand", "model"):
            names = sorted({t.volume.model or t.volume.brand for t in targets if (t.volume.model is None) == (kind == "brand")})
            if not names:
                continue
            index = {n: i for i, n in enumerate(names)}
            ki = s[kind].map(index).to_numpy()
            keep = ~pd.isna(ki)
            cube = np.zeros((runs.size, len(names), n_months + 1))
            np.add.at(cube, (ri[keep], ki[keep].astype(int), mi[keep] + 1), units[keep])
            cum = np.cumsum(cube, axis=2)
            for j, t in enumerate(targets):
                name = t.volume.brand if t.volume.model is None else t.volume.model
                if (t.volume.model is None) != (kind == "brand"):
                    continue
                a, b = parse_month(t.volume.start) - start_index, parse_month(t.volume.end) - start_index
                out[:, j] = cum[:, index[name], b + 1] - cum[:, index[name], a]
    return pd.DataFrame(out, index=pd.Index(runs, name="run_id"), columns=[t.key for t in targets])


def distances(values: np.ndarray, targets: list[FitTarget]) -> np.ndarray:
    """Weighted RMS log error of each row of ``values`` (sets x targets) against the reported values."""
    reported = np.array([t.volume.value for t in targets])
    w = np.array([t.weight for t in targets])
    r = np.log(np.maximum(values, 1.0) / reported)
    return np.asarray(np.sqrt((r**2 @ w) / w.sum()), float)

