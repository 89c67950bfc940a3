"""The Forecast page: a forecast folder given to ``sim dashboard --forecast DIR``.

It shows what the forecast assimilated (origin, figures, final effective sample size), each target's
probability with its interval before and after the last month's figures, the fan chart with the
assimilated figures marked, the effective sample size by month, the forecast before and after the last
month's figures and the table of the figures (:mod:`sim.present.dashboard.forecast_view`).
"""

from __future__ import annotations

from typing import Any

import solara

from sim.present.dashboard.forecast_view import ForecastView, forecast_view
from sim.present.dashboard.session import CONFIG
from sim.scenario.yamlio import InputError


def _prob(t: dict[str, Any]) -> str:
    return f"{t['probability']:.2f} [{t['probability_low']:.2f}-{t['probability_high']:.2f}]"


def _delivered(t: dict[str, Any]) -> str:
    return f"{t['delivered_mean']:,.0f} [{t['delivered_p5']:,.0f}, {t['delivered_p95']:,.0f}]"


@solara.component
def ForecastCards(view: ForecastView) -> None:
    a = view.assimilation
    with solara.Columns([1] * (1 + len(view.targets))):
        with solara.Card("What it assimilated", subtitle=str(view.folder)), solara.Column(gap="4px"):
            solara.Text(f"origin {a.origin}: {len(a.figures)} figure(s) of {a.first_month}..{a.origin}",
                        style={"font-weight": "bold"})  # fmt: skip
            solara.Text(f"final effective sample size {a.final_ess:.1f} of {a.particles} particles",
                        classes=["sim-forecast-ess"])  # fmt: skip
            if a.resampled:
                solara.Text(f"resampled after {', '.join(a.resampled)}", style={"font-size": "0.85em"})
        for t in view.targets:
            before = view.before.get(t["name"])
            with (
                solara.Card(f"P({t['name']})", subtitle=f"{t['units']:,.0f} {t['brand']} deliveries {t['start']}..{t['by']}"),
                solara.Column(gap="4px"),
            ):
                solara.Text(f"{view.label}: {_prob(t)}", classes=["sim-forecast-probability"],
                            style={"font-size": "1.3em", "font-weight": "bold"})  # fmt: skip
                solara.Text(f"delivered in the window: {_delivered(t)}")
                if before is not None:
                    solara.Text(f"before the figures of {a.last_month}: {_prob(before)}; delivered {_delivered(before)}",
                                style={"font-size": "0.85em", "color": "#555"})  # fmt: skip
                solara.Text(f"95% Wilson interval over {t['runs']} replicates, worth {t.get('runs_effective', t['runs']):.0f} "
                            "independent runs (replicates of one particle share its history)",
                            style={"font-size": "0.8em", "color": "#666"})  # fmt: skip


@solara.component
def ForecastPage() -> None:
    solara.Title("sim dashboard: forecast")
    if CONFIG.forecast is None:
        solara.Info("No forecast folder: start the dashboard with --forecast DIR (a folder made by sim forecast --out DIR).")
        return
    try:
        view = forecast_view(CONFIG.forecast)
    except InputError as exc:
        solara.Error(str(exc), classes=["sim-error"])
        return
    ForecastCards(view)
    with solara.Card("The forecast from the assimilated state"):
        with solara.Div(classes=["sim-forecast-fan"]):
            solara.FigureMatplotlib(view.figures["fan"], format="png")
        solara.Text("Black marks: the figures assimilated (diamond: a figure; triangle up: at least; down: at most; a bar: "
                    "a figure over several months at its monthly average). The fans are the replicates branched from the "
                    "particles' states at the origin (dashed line).", style={"font-size": "0.85em"})  # fmt: skip
    with solara.Card("Effective sample size by month"), solara.Div(classes=["sim-forecast-ess-figure"]):
        solara.FigureMatplotlib(view.figures["ess"], format="png")
    if "moved" in view.figures:
        with solara.Card(f"What the figures of {view.assimilation.last_month} moved"):
            with solara.Div(classes=["sim-forecast-moved"]):
                solara.FigureMatplotlib(view.figures["moved"], format="png")
            solara.Text("Deliveries counted toward the first target before (dashed) and after (solid) the last month's "
                        "figures; the replicates before and after are drawn independently.", style={"font-size": "0.85em"})  # fmt: skip
    with solara.Card("The figures assimilated, against the particles just before each"):
        solara.DataFrame(view.table, items_per_page=20)
