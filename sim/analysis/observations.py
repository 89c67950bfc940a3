"""Reported figures as the particle filter sees them: what each says about a particle, and how likely it is.

An observation is one reported figure of a brand or a product (sources of the same figure and
period combined by confidence, as the appeal fit combines them), read against a particle's
simulated deliveries in the China market:

* a monthly, quarterly, annual or span figure against the particle's sum over its months;
* a cumulative milestone ("the 1,000,000th AITO vehicle on 13 Jan 2026") against the particle's
  cumulative deliveries from the scenario's start to that day: the months before in full and the
  month of the day in proportion (13/31). A *production* milestone counts cars built, which lead
  deliveries: the model's plants build to order, so a car is built about when it is delivered, and
  the cars between the line and their buyers (in transit, at the stores) are taken as
  :data:`PIPELINE_MONTHS` of the month's deliveries (an assumption, with its own error in
  :data:`PIPELINE_SD`).

The error of a figure around the particle's value is normal on the log scale with a standard
deviation by the figure's frequency (the scenario's ``uncertainty.observation_sd``, which ``sim
fit-appeals`` sets to the fit's residual RMS; :data:`DEFAULT_SD` otherwise), divided by the square
root of its confidence weight (a low-confidence figure counts less; a milestone counted from the
start takes an annual figure's error), with an approximate figure
(``~``, a range) widened by half its range. A ``>`` figure (at least ...) is one-sided: its
likelihood is the probability that a figure drawn around the particle's value exceeds the bound;
``<`` the mirror image.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from sim.analysis.figures import CONFIDENCE_WEIGHT, scorable_figures
from sim.scenario.months import parse_month
from sim.scenario.schema import Scenario

#: Log-scale error of a figure by frequency when the scenario does not say (assumption: about the
#: appeal fit's residual RMS of the shipped baseline).
DEFAULT_SD = {"monthly": 0.15, "quarterly": 0.10, "annual": 0.08, "cumulative": 0.05}
#: Cars built but not yet delivered at a production milestone, in months of deliveries (assumption:
#: about two weeks between the line and the buyer).
PIPELINE_MONTHS = 0.5
#: The error that assumption adds to a production milestone (log scale; assumption).
PIPELINE_SD = 0.02


@dataclass(frozen=True)
class Observation:
    """One reported figure, ready to weigh particles.

    Attributes:
        key: how messages name it, e.g. ``AITO 2025-12`` or ``AITO cumulative to 2026-01-13``.
        lines: the figures file's lines it combines.
        level: ``brand`` or ``model``. entity: the brand or product.
        start, end: month indices of its first and last month (a milestone: the scenario's start).
        fraction: the share of the last month it counts (1; a milestone on a day of the month: day / days).
        pipeline: months of the last month's deliveries added (cars built, not yet delivered).
        value, low, high: vehicles (``low``/``high`` the bounds of ``>``, ``<``, ``~`` and ranges).
        qualifier: ``=``, ``~``, ``range``, ``>`` or ``<``.
        sd: standard deviation of its log error.
    """

    key: str
    lines: tuple[int, ...]
    level: str
    entity: str
    start: int
    end: int
    fraction: float
    pipeline: float
    value: float
    low: float
    high: float
    qualifier: str
    sd: float

    def simulated(self, monthly: np.ndarray, first: int) -> np.ndarray:
        """Each particle's value of the figure from its monthly units (particles x months from ``first``):
        the months before the last in full, the last in its ``fraction``, plus the ``pipeline``."""
        lo, hi = self.start - first, self.end - first
        full = monthly[:, max(lo, 0) : hi].sum(axis=1)
        last = monthly[:, hi]
        return full + (self.fraction + self.pipeline) * last

    def log_likelihood(self, simulated: np.ndarray) -> np.ndarray:
        """Log-likelihood of the figure for each particle's simulated value (vehicles)."""
        sim = np.log(np.maximum(np.asarray(simulated, float), 1.0))
        if self.qualifier == ">":
            return log_ndtr((sim - np.log(max(self.low, 1.0))) / self.sd)
        if self.qualifier == "<":
            return log_ndtr((np.log(max(self.high, 1.0)) - sim) / self.sd)
        z = (sim - np.log(max(self.value, 1.0))) / self.sd
        return -0.5 * z**2 - np.log(self.sd * np.sqrt(2 * np.pi))


def _sd(frequency: str, confidence: float, qualifier: str, low: float, high: float, table: dict[str, float]) -> float:
    base = table.get(frequency, DEFAULT_SD.get(frequency, 0.15)) / np.sqrt(max(confidence, 1e-3))
    if qualifier in ("~", "range") and low > 0 and np.isfinite(high) and high > low:
        base = float(np.hypot(base, np.log(high / low) / 2.0))
    return float(base)


def observations(
    figures: pd.DataFrame, scenario: Scenario, *, after: int, through: int, sd: dict[str, float] | None = None
) -> list[Observation]:
    """The figures dated after month ``after`` and up to ``through`` that the filter assimilates.

    Args:
        figures: parsed reported figures (``load_reported().figures``).
        scenario: the scenario (its brands and products; its start; its observation errors).
        after, through: month indices.
        sd: log-scale errors by frequency (default: the scenario's ``uncertainty.observation_sd``,
            then :data:`DEFAULT_SD`).
    """
    table = dict(DEFAULT_SD) | dict(scenario.uncertainty.observation_sd) | dict(sd or {})
    brands = [b.name for b in scenario.brands]
    products = [p.name for p in scenario.products]
    out: list[Observation] = []
    spans = scorable_figures(figures, brands, products, after=after, through=through)
    for _, g in spans.groupby(["entity", "start", "end", "frequency", "qualifier"], sort=True):
        out.append(_combined(g, table, level="model" if g["model"].iloc[0] is not None else "brand"))
    # The sources of one milestone are one observation; when one of them says it counts cars built
    # (the more specific statement), it is read as a production milestone.
    for _, g in milestones(figures, brands, products, after=after, through=through).groupby(["entity", "date"], sort=True):
        out.append(_milestone(g, table, scenario.start_index))
    return sorted(out, key=lambda o: (o.end, o.key))


def _combined(g: pd.DataFrame, table: dict[str, float], *, level: str) -> Observation:
    """One observation from the sources of one figure: values averaged by confidence."""
    w = g["confidence"].map(CONFIDENCE_WEIGHT).to_numpy(float)
    value = float(np.average(g["value"], weights=w))
    low = float(np.average(g["low"], weights=w)) if np.isfinite(g["low"]).all() else float(g["low"].min())
    high = float(g["high"].max()) if not np.isfinite(g["high"]).all() else float(np.average(g["high"], weights=w))
    row = g.iloc[0]
    freq, q = str(row["frequency"]), str(row["qualifier"])
    period = row["start"] if row["start"] == row["end"] else f"{row['start']}..{row['end']}"
    return Observation(
        key=f"{row['entity']} {period}", lines=tuple(int(x) for x in g["line"]), level=level, entity=str(row["entity"]),
        start=parse_month(row["start"]), end=parse_month(row["end"]), fraction=1.0, pipeline=0.0, value=value,
        low=low, high=high, qualifier=q, sd=_sd(freq, float(w.max()), q, low, high, table),
    )  # fmt: skip


def milestones(figures: pd.DataFrame, brands: Iterable[str], products: Iterable[str], *, after: int,
               through: int) -> pd.DataFrame:
    """Cumulative milestones (a point in time, counted from the start) of the scenario's brands and products."""
    f = figures
    keep = (
        (f["measure"] == "cumulative") & (f["frequency"] == "point") & f["value"].notna()
        & f["brand"].isin(list(brands)) & (f["model"].isna() | f["model"].isin(list(products)))
        & f["confidence"].isin(list(CONFIDENCE_WEIGHT))
    )  # fmt: skip
    out = f[keep].copy()
    out["end_index"] = out["end"].map(parse_month)
    out = out[(out["end_index"] > after) & (out["end_index"] <= through)]
    out["entity"] = [m if isinstance(m, str) else b for b, m in zip(out["brand"], out["model"], strict=True)]
    out["cumulative_of"] = out["cumulative_of"].fillna("deliveries")
    return out


def _milestone(g: pd.DataFrame, table: dict[str, float], first: int) -> Observation:
    row = g.iloc[0]
    end = parse_month(row["end"])
    date = str(row["date"])
    day = int(date[8:10]) if len(date) >= 10 and date[4] == "-" and date[7] == "-" else None
    year, month = end // 12, end % 12 + 1
    fraction = day / _calendar.monthrange(year, month)[1] if day else 1.0
    production = bool((g["cumulative_of"] == "production").any())
    w = g["confidence"].map(CONFIDENCE_WEIGHT).to_numpy(float)
    # A count since the start is a sum over years, dominated by the last: its error around the model's
    # is taken as an annual figure's (the fit's "cumulative" figures are year-to-date spans, and few).
    sd = table.get("annual", DEFAULT_SD["annual"]) / np.sqrt(float(w.max()))
    if production:
        sd = float(np.hypot(sd, PIPELINE_SD))
    what = "built" if production else "delivered"
    return Observation(
        key=f"{row['entity']} cumulative {what} to {date}", lines=tuple(int(x) for x in g["line"]),
        level="model" if isinstance(row["model"], str) else "brand", entity=str(row["entity"]), start=first, end=end,
        fraction=fraction, pipeline=PIPELINE_MONTHS if production else 0.0,
        value=float(np.average(g["value"], weights=w)), low=float(g["low"].min()), high=float(g["high"].max()),
        qualifier=str(row["qualifier"]), sd=float(sd),
    )  # fmt: skip


def describe(obs: Sequence[Observation]) -> list[dict[str, object]]:
    """The observations as plain data, for a manifest."""
    return [{"key": o.key, "lines": list(o.lines), "month": _format(o.end), "value": o.value, "qualifier": o.qualifier,
             "sd": round(o.sd, 4)} for o in obs]  # fmt: skip


def _format(m: int) -> str:
    return f"{m // 12:04d}-{m % 12 + 1:02d}"
