"""A forecast folder (``sim forecast``) as the report, ``sim compare`` and the dashboard read it.

A forecast folder is a results folder whose manifest has ``kind: forecast`` and an ``assimilation``
record (:func:`sim.analysis.forecast.run_forecast`): the origin, the particles, the figures
assimilated (each with the particles' weighted 5%, median and 95% of its simulated value *before*
it was assimilated), the effective sample size of every month and the months the particles were
resampled. ``DIR/before`` is a results folder of replicates drawn by the weights before the last
month's figures: what those figures moved.

:func:`assimilation_of` reads the record into an :class:`Assimilation`; :func:`before_folder` finds
``DIR/before``. Pure functions of the manifest (no drawing, no HTML).
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.observations import PIPELINE_MONTHS
from sim.runs.store import MANIFEST
from sim.scenario.months import format_month, parse_month

#: The folder of replicates drawn by the weights before the last month's figures.
BEFORE = "before"
#: Columns of :attr:`Assimilation.figures`.
FIGURE_COLUMNS = (
    "figure", "lines", "month", "entity", "level", "kind", "start", "end", "reported", "qualifier", "sd",
    "simulated_mean", "simulated_p5", "simulated_median", "simulated_p95", "inside", "date", "basis", "fraction",
)  # fmt: skip

_MILESTONE = re.compile(r"^(?P<entity>.+) cumulative (?P<what>built|delivered) to (?P<date>\d{4}-\d{2}(?:-\d{2})?)$")
_SPAN = re.compile(r"^(?P<entity>.+) (?P<start>\d{4}-\d{2})(?:\.\.(?P<end>\d{4}-\d{2}))?$")


@dataclass(frozen=True)
class Assimilation:
    """What a forecast assimilated.

    Attributes:
        origin: the forecast's origin (``YYYY-MM``): figures up to it are assimilated, replicates
            branch from the particles' states at its end.
        first_month: the first month the particles were weighted (the first the fit did not see).
        particles: the filter's particles.
        figures: one row per figure assimilated, in order (:data:`FIGURE_COLUMNS`): where it falls
            (``entity``, ``level`` brand/model/None, ``kind`` monthly/span/cumulative, ``start``,
            ``end`` months), what was reported (``reported`` vehicles, ``qualifier`` =, ~, range,
            > or <), the log-scale error assumed (``sd``), the particles' weighted mean and 5%,
            50%, 95% before it was assimilated, and ``inside``: the report within those 5-95%
            (a ``>`` figure: the 95% at or above its bound; ``<``: the 5% at or below). A
            cumulative milestone also has its ``date`` (``YYYY-MM-DD`` or ``YYYY-MM``), its ``basis``
            (``built`` or ``delivered``) and the ``fraction`` of its last month's deliveries the
            filter counts (the days up to its date; a production milestone also the cars between the
            line and their buyers, :data:`sim.analysis.observations.PIPELINE_MONTHS`); other figures
            count their last month whole (1).
        ess: effective sample size by month (``YYYY-MM`` -> particles' worth), after that month's
            figures and before any resampling.
        final_ess: the effective sample size of the final weights (the replicates' draw).
        resampled: months after which the particles were resampled.
        notes: the filter's notes.
        files: the figures files added to the project's (``--figures``).
    """

    origin: str
    first_month: str
    particles: int
    figures: pd.DataFrame
    ess: pd.Series
    final_ess: float
    resampled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def last_month(self) -> str | None:
        """The last month with figures (``DIR/before`` is the forecast without them); None: no figures."""
        return str(self.figures["month"].iloc[-1]) if len(self.figures) else None

    def last_figures(self) -> pd.DataFrame:
        """The figures of :attr:`last_month`."""
        return self.figures[self.figures["month"] == self.last_month]

    def brand_figures(self, brand: str) -> pd.DataFrame:
        """The figures of a whole brand (a product's are not on a brand's axis)."""
        f = self.figures
        return f[(f["level"] == "brand") & (f["entity"] == brand)]

    def inside_text(self) -> str:
        """How many figures fell inside the particles' 5-95% before them (``29 of 34 ... (85%)``). The band leaves
        out the figures' own errors, so somewhat under 90% is what particles that expect the truth give."""
        n, k = len(self.figures), int(self.figures["inside"].sum())
        share = f" ({100 * k / n:.0f}%)" if n else ""
        return f"{k} of {n} figure(s) inside the particles' 5-95% just before them{share}"

    def summary_line(self) -> str:
        """One line: origin, figures, final ESS, resampling (``from the state at 2026-01: ...``)."""
        text = (f"from the state at {self.origin}: {len(self.figures)} figure(s) assimilated "
                f"{self.first_month}..{self.origin}; final effective sample size {self.final_ess:.1f} of "
                f"{self.particles} particles")  # fmt: skip
        if self.resampled:
            text += f"; resampled after {', '.join(self.resampled)}"
        return text


def is_forecast(manifest: Mapping[str, Any]) -> bool:
    """Whether a results folder's manifest is a forecast's (with its assimilation record)."""
    return isinstance(manifest.get("assimilation"), Mapping)


def assimilation_of(manifest: Mapping[str, Any]) -> Assimilation | None:
    """The assimilation record of a forecast folder's manifest (None for any other folder)."""
    if not is_forecast(manifest):
        return None
    rec = manifest["assimilation"]
    scenario = manifest.get("scenario") or {}
    brands = {str(b.get("name")) for b in scenario.get("brands") or []}
    products = {str(p.get("name")): str(p.get("brand")) for p in scenario.get("products") or []}
    brands |= set(products.values())
    rows = [_figure_row(a, brands, products) for a in rec.get("assimilated") or []]
    figures = pd.DataFrame(rows, columns=list(FIGURE_COLUMNS))
    ess = pd.Series({str(k): float(v) for k, v in (rec.get("ess") or {}).items()}, dtype=float).sort_index()
    final = rec.get("final_ess")
    return Assimilation(
        origin=str(rec.get("origin")), first_month=str(rec.get("first_uncertain_month") or (ess.index[0] if len(ess) else "")),
        particles=int(rec.get("particles") or 0), figures=figures, ess=ess,
        final_ess=float(final) if final is not None else math.nan, resampled=[str(m) for m in rec.get("resampled") or []],
        notes=[str(n) for n in rec.get("notes") or []], files=[str(f) for f in rec.get("figures_files") or []],
    )  # fmt: skip


def _figure_row(a: Mapping[str, Any], brands: Iterable[str], products: Mapping[str, str]) -> dict[str, Any]:
    """One assimilated figure with where it falls, read from its key (``AITO 2025-12``,
    ``AITO 2025-10..2025-12``, ``AITO cumulative built to 2026-01-13``) unless the record says."""
    key, month = str(a.get("figure", "")), str(a.get("month", ""))
    entity, kind, start, end = a.get("entity"), a.get("kind"), a.get("start"), a.get("end") or month
    date, basis, fraction = None, None, 1.0
    if m := _MILESTONE.match(key):
        date, basis = m["date"], m["what"]
        fraction = _day_fraction(date) + (PIPELINE_MONTHS if basis == "built" else 0.0)
    if entity is None:
        if m:
            entity, kind, start = m["entity"], "cumulative", None
        elif m := _SPAN.match(key):
            entity, start, end = m["entity"], m["start"], m["end"] or m["start"]
    if kind is None and start is not None:
        kind = "monthly" if start == end else "span"
    level = a.get("level") or ("brand" if entity in set(brands) else "model" if entity in products else None)
    reported, q = float(a.get("reported", math.nan)), str(a.get("qualifier", "="))
    p5, p95 = float(a.get("simulated_p5", math.nan)), float(a.get("simulated_p95", math.nan))
    inside = {">": p95 >= reported, "<": p5 <= reported}.get(q, p5 <= reported <= p95)
    return {
        "figure": key, "lines": list(a.get("lines") or []), "month": month, "entity": entity, "level": level,
        "kind": kind, "start": start, "end": end, "reported": reported, "qualifier": q,
        "sd": float(a.get("sd", math.nan)), "simulated_mean": float(a.get("simulated_mean", math.nan)),
        "simulated_p5": p5, "simulated_median": float(a.get("simulated_median", math.nan)), "simulated_p95": p95,
        "inside": bool(inside), "date": date, "basis": basis, "fraction": fraction,
    }  # fmt: skip


def _day_fraction(date: str) -> float:
    """The share of its month up to a day (``2026-01-13`` -> 13/31); a month alone counts whole."""
    if len(date) < 10:
        return 1.0
    year, month, day = (int(x) for x in date.split("-"))
    return day / calendar.monthrange(year, month)[1]


def before_folder(folder: str | Path) -> Path | None:
    """``DIR/before`` when it is a results folder (the forecast before the last month's figures)."""
    path = Path(folder) / BEFORE
    return path if (path / MANIFEST).is_file() else None


def month_after(month: str) -> str:
    """``2026-01`` -> ``2026-02``."""
    return format_month(parse_month(month) + 1)
