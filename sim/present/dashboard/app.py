"""The Solara app of ``sim dashboard``: the Scenarios page and the Single run page, as tabs (and the
Forecast page when ``--forecast DIR`` is given).

Solara serves it by module name (``SOLARA_APP=sim.present.dashboard.app``, see
:mod:`sim.present.dashboard.server`). The pages are :mod:`sim.present.dashboard.scenario_page`,
:mod:`sim.present.dashboard.single_page` and :mod:`sim.present.dashboard.forecast_page`; the state they
share is :mod:`sim.present.dashboard.session`.
"""

from __future__ import annotations

from typing import Any

import solara
import solara.lab

from sim.present.dashboard.forecast_page import ForecastPage
from sim.present.dashboard.scenario_page import ScenarioPage
from sim.present.dashboard.session import CONFIG
from sim.present.dashboard.single_page import SinglePage


@solara.component
def Layout(children: list[Any] | None = None) -> None:
    """Solara's app layout, with the pages' names as tabs."""
    route, routes = solara.use_route()
    router = solara.use_router()
    index = routes.index(route) if route in routes else 0

    def go(i: int) -> None:
        router.push("/" if routes[i].path == "/" else f"/{routes[i].path}")

    with solara.AppLayout(title="sim dashboard", navigation=True):
        with solara.AppBar():
            with solara.lab.Tabs(value=index, on_value=go, align="center"):
                for r in routes:
                    solara.lab.Tab(r.label or r.path)
        solara.Column(children=children or [])


routes = [
    solara.Route(path="/", component=ScenarioPage, label="Scenarios", layout=Layout),
    solara.Route(path="single-run", component=SinglePage, label="Single run"),
    *([solara.Route(path="forecast", component=ForecastPage, label="Forecast")] if CONFIG.forecast is not None else []),
]
