"""What a forecast does not know: the scenario's ``uncertainty`` section and capacity ranges.

Every run draws these from its own seed (:mod:`sim.model.draws`), one stream per named item, so
two scenarios run with the same seed share every draw of the items they share (common random
numbers) and a paired difference between them holds only the effect of what differs. Parameter
uncertainty is the scenario's ``ensemble`` (each run draws one member); the rest is here:

* ``brand_level`` and ``brand_drift`` (and ``product_level``, ``product_drift`` for each product's
  own): each brand's appeal is off by a normal offset of sd ``brand_level`` at ``start`` (the data
  fix a brand's level at the origin only so well) and then follows a random walk with monthly
  steps of sd ``brand_drift`` (utils): what the model holds constant after the data (a brand's
  pull) in fact moves. ``sim backtest`` estimates these scales from past forecast errors;
  ``level_df`` (when set) makes the offsets Student-t of that many degrees of freedom, with the same
  standard deviations: past forecast errors have heavier tails than a normal's (a few brands far off,
  most close);
* ``brand_scale``: a factor per brand on its offset and step and on its products' own: brands whose
  past forecasts were close get narrower offsets, brands far off wider ones (a brand not named: 1).
  ``sim backtest`` estimates them from each brand's past forecast errors and how far a util moves its
  volumes in the model (a brand whose lines are held at capacity moves less than one that is not);
* ``market_level`` and ``market_growth``: the market's size from ``start`` on is multiplied by
  ``exp(level + growth * years since start)``, with ``level`` and ``growth`` normal draws of these
  standard deviations (log units; log units a year);
* ``new_product_appeal``: a product first delivered from ``start`` on has no data of its own; its
  appeal is shifted by a normal draw of this standard deviation (utils), the spread of past
  launches' fitted appeals (``sim fit-appeals`` writes it);
* a product's ``capacity.range`` (units a month): where its capacity is an assumption, its full
  capacity from ``start`` on is drawn uniformly from the range in each run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario.fields import Frozen, Month, NonNeg, PosFloat


class Uncertainty(Frozen):
    """The forecast's uncertainties beyond the parameters' (all zero: none)."""

    start: Month | None = Field(
        None, description="First month of the drift and of the draws below (default: forecast_start); "
        "the months before it are history, fitted to the data."
    )
    brand_level: NonNeg = Field(
        0.0, description="Std. dev. of each brand's appeal offset at start, utils: how well the data fix its level then."
    )
    brand_drift: NonNeg = Field(0.0, description="Std. dev. of each brand's monthly appeal step after start, utils.")
    level_df: float = Field(
        0.0, ge=0.0, description="Degrees of freedom of the Student-t appeal offsets at start (more than 2; 0: normal)."
    )
    product_level: NonNeg = Field(0.0, description="Std. dev. of each product's own appeal offset at start, utils.")
    product_drift: NonNeg = Field(0.0, description="Std. dev. of each product's own monthly appeal step after start, utils.")
    market_level: NonNeg = Field(0.0, description="Std. dev. of the log of the market's size from start on.")
    market_growth: NonNeg = Field(0.0, description="Std. dev. of the market's growth rate after start, log units a year.")
    new_product_appeal: NonNeg = Field(
        0.0, description="Std. dev. of the appeal of products first delivered from start on, utils."
    )
    observation_sd: dict[Literal["monthly", "quarterly", "annual", "cumulative"], PosFloat] = Field(
        default_factory=dict,
        description="Log-scale error of a reported figure around the model's aggregate, by frequency, for "
        "assimilation (sim forecast); sim fit-appeals writes the fit's residual RMS.",
    )
    brand_scale: dict[str, PosFloat] = Field(
        default_factory=dict,
        description="Factor per brand on its appeal offset and drift and on its products' own (a brand not named: 1); "
        "sim backtest writes them from each brand's past forecast errors.",
    )
    capacity_ranges: bool = Field(True, description="Draw the capacities that have a range from it (false: use max).")
    source: str = Field("", description="Where the scales come from (a command, a published estimate, or 'assumption').")

    @model_validator(mode="after")
    def _finite_variance(self) -> Uncertainty:
        if 0 < self.level_df <= 2:
            raise ValueError("level_df must be more than 2 (a Student-t with 2 or fewer has no variance), or 0 (normal)")
        return self

    @property
    def any(self) -> bool:
        """Whether any draw is asked for (the capacity ranges aside)."""
        return any((self.brand_level, self.brand_drift, self.product_level, self.product_drift, self.market_level,
                    self.market_growth, self.new_product_appeal))


class CapacityRange(Frozen):
    """A capacity that is an assumption: the range its full capacity is drawn from in a forecast."""

    low: NonNeg = Field(description="Lowest full capacity, units a month.")
    high: NonNeg = Field(description="Highest full capacity, units a month.")
    source: str = Field(description="Why this range (a published figure, or 'assumption').")

    @model_validator(mode="after")
    def _ordered(self) -> CapacityRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high:g}) is below low ({self.low:g})")
        return self
