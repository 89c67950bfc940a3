"""The Single run page: one run of the chosen scenario and levers, stepped with Mesa's controls.

Mesa's ``ModelController`` (from ``mesa.visualization.solara_viz``, the controls of SolaraViz:
reset, play/pause, step) drives a :class:`sim.model.market_model.MarketModel` built from the Scenarios page's
scenario, lever overrides, seed and scale; after each step the page shows the month's orders,
deliveries, cancellations, backlog, waits, prices and discounts per product
(:mod:`sim.present.dashboard.state`) and the brand's history so far.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import solara
from matplotlib.figure import Figure

with warnings.catch_warnings():
    # Mesa 3.3.1's SolaraViz module trips Solara's hook linter (a hook after an early return in
    # ComponentsView, which this app does not use); the warning is about Mesa's code, not ours.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"solara\.(core|validate_hooks)")
    from mesa.visualization.solara_viz import ModelController
    from mesa.visualization.utils import update_counter

from sim.model.market_model import MarketModel
from sim.present.dashboard import charts, state
from sim.present.dashboard.session import current_overrides, scale, scenario_file, seed
from sim.scenario.yamlio import InputError


def _model_parameters() -> tuple[dict[str, Any], str]:
    """MarketModel keyword arguments for the page's scenario, levers, scale and seed, and a key naming them."""
    ls, overrides = current_overrides()
    params = {"scenario": ls.scenario, "seed": int(seed.value), "scale": float(scale.value), **overrides}
    key = repr((scenario_file.value, ls.scenario.hash(), sorted(overrides.items()), params["seed"], params["scale"]))
    return params, key


@solara.component
def MonthState(model: MarketModel, brand: str) -> None:
    update_counter.get()  # re-render after every step (Mesa's controller bumps it)
    n = state.months_recorded(model)
    if n == 0:
        solara.Info(
            f"{model.config.name}: {model.n_months} months from {model.config.start}. Press Step (or play) to simulate a month."
        )
        return
    month = model.datacollector.model_vars["month"][-1]
    solara.Text(
        f"{model.config.name}: {month} (month {n} of {model.n_months})",
        style={"font-size": "1.4em", "font-weight": "500"},
    )
    solara.Text(f"month {month}", classes=["sim-single-month"], style={"display": "none"})
    table = state.month_table(model, None if brand == "all brands" else brand)
    for c in ("orders", "deliveries", "cancellations", "backlog", "list_price", "transaction_price", "paid_price"):
        table[c] = table[c].round(0).astype("Int64")  # whole vehicles and RMB; <NA> where not offered
    table["wait_months"] = table["wait_months"].round(2)
    table["discount"] = (100 * table["discount"]).round(1)
    solara.DataFrame(table.rename(columns={"discount": "discount %"}), items_per_page=25)
    if brand != "all brands":
        products = state.brand_products(model, brand)
        fig = _history_figure(model, products, brand)
        solara.FigureMatplotlib(fig, dependencies=[n, brand, id(model)], format="png")


def _history_figure(model: MarketModel, products: list[str], brand: str) -> Figure:
    """Orders, deliveries, backlog and transaction price of a brand's products, month by month so far.

    Cheap to draw (no constrained layout, month numbers on the x axis), as it is redrawn every step.
    """
    fig = Figure(figsize=(10, 6), dpi=80)
    axes = fig.subplots(2, 2, sharex=True)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.08, hspace=0.3, wspace=0.2)
    panels = (("orders", "orders a month"), ("deliveries", "deliveries a month"),
              ("backlog", "backlog at month end"), ("transaction_price", "transaction price, RMB (CN)"))  # fmt: skip
    months: list[str] = []
    for ax, (fld, title) in zip(axes.ravel(), panels, strict=True):
        h = state.history(model, fld, products)
        months = list(h.index)
        x = np.arange(len(h))
        for i, p in enumerate(products):
            values = h[p].to_numpy(dtype=float)
            if np.nansum(np.abs(values)) > 0:
                ax.plot(x, values, lw=1.4, color=charts.BRAND_COLOURS[i % len(charts.BRAND_COLOURS)], label=p)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    ticks = [i for i, m in enumerate(months) if m.endswith("-01")]
    axes[1, 0].set_xticks(ticks, [months[i][:4] for i in ticks])
    axes[0, 0].legend(fontsize=7, ncol=2)
    now = state.month_table(model, brand)
    waits = ", ".join(
        f"{r.model.removeprefix(brand + ' ')} {r.wait_months:.1f}" for r in now.itertuples() if r.wait_months > 0
    )
    fig.suptitle(f"{brand}, wait for a new order (months): {waits or 'none'}", fontsize=9)
    return fig


@solara.component
def SinglePage() -> None:
    solara.Title("sim dashboard: single run")
    try:
        params, key = _model_parameters()
    except InputError as exc:
        solara.Error(str(exc))
        return
    model: solara.Reactive[MarketModel | None] = solara.use_reactive(None)
    parameters = solara.use_reactive(params)
    play_interval = solara.use_reactive(150)
    render_interval = solara.use_reactive(1)
    use_threads = solara.use_reactive(False)
    brand = solara.use_reactive("AITO")
    error = solara.use_reactive("")

    def build() -> None:
        try:
            parameters.value = params
            model.value = MarketModel(**params)
            error.value = ""
        except InputError as exc:
            error.value = str(exc)

    solara.use_effect(build, [key])
    if error.value:
        solara.Error(error.value)
        return
    if model.value is None:
        solara.Info("building the model...")
        return
    m = model.value
    with solara.Sidebar():
        with solara.Card("Single run"):
            solara.Text(f"{m.config.name}, seed {params['seed']}, scale {params['scale']:g} "
                        f"(from the Scenarios page; {len(params) - 3} override(s))")  # fmt: skip
            ModelController(model, model_parameters=parameters, play_interval=play_interval,
                            render_interval=render_interval, use_threads=use_threads)  # fmt: skip
            solara.SliderInt("Play interval (ms)", value=play_interval, min=10, max=1000, step=10)
            solara.SliderInt("Months per step", value=render_interval, min=1, max=12)
        with solara.Card("Show"):
            solara.Select("Brand", values=["all brands", *m.brand_names], value=brand)
    MonthState(m, brand.value)
