"""The Scenarios page: pick a scenario, move its levers, run it against the baseline, read the results.

The scenario and the baseline run on the same seeds (:mod:`sim.present.dashboard.runner`, in a thread
with progress, on the shared worker processes); the page shows the target's probability with the
paired difference, the fan chart of cumulative deliveries against the target and the reported
points, each replicate's window deliveries, monthly deliveries per brand and the price segments'
shares (:mod:`sim.present.dashboard.summary`, drawn by :mod:`sim.present.dashboard.charts`), and the ``sim run``
commands that reproduce the numbers.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solara
import solara.lab
from matplotlib.figure import Figure

from sim.present.dashboard import charts
from sim.present.dashboard.config import scenario_files
from sim.present.dashboard.levers import Lever, apply_overrides, command_line
from sim.present.dashboard.runner import Cancelled, run_pair
from sim.present.dashboard.session import (
    CACHE,
    CONFIG,
    POOL,
    SCALES,
    cancel_event,
    current_overrides,
    lever_set,
    lever_values,
    progress,
    replications,
    request_error,
    runs_started,
    scale,
    scenario_file,
    seed,
    shown_brands,
)
from sim.present.dashboard.summary import Summary, summarize_pair, top_brands
from sim.scenario.yamlio import InputError


@dataclass(frozen=True)
class Request:
    """One press of Run: what to run."""

    number: int
    scenario_file: str
    overrides: dict[str, Any]
    replications: int
    scale: float
    seed: int


@dataclass
class Outcome:
    """A finished run of the page, with its figures."""

    request: Request
    summary: Summary
    seconds: float
    runs_done: int
    from_cache: int
    figures: dict[str, Figure] = field(default_factory=dict)


# ----------------------------------------------------------------------------- running


@solara.lab.task(prefer_threaded=True)
def run_task(req: Request) -> Outcome:
    """Run the scenario and the baseline, summarize, draw (in a thread; progress via ``progress``)."""
    scenario = apply_overrides(lever_set(req.scenario_file).scenario, req.overrides)
    baseline = lever_set(str(CONFIG.baseline)).scenario

    def report(done: int, total: int) -> None:
        progress.value = (done, total)

    pair = run_pair(scenario, baseline, seed=req.seed, replications=req.replications, scale=req.scale,
                    overrides=req.overrides, pool=POOL, cache=CACHE, progress=report,
                    cancel=cancel_event.value, kernel=CONFIG.kernel)  # fmt: skip
    for res in (pair.scenario, pair.baseline):
        runs = res.runs
        if len(runs) and not (runs["status"] == "ok").any():
            raise InputError(
                f"every run of {res.manifest['scenario_name']} failed; the first error:\n{runs['error'].iloc[0]}"
            )
    summary = summarize_pair(pair.scenario, pair.baseline)
    figures = {
        "fan": charts.fan_chart(summary),
        "window": charts.window_chart(summary),
        "segments": charts.segment_chart(summary),
    }
    return Outcome(req, summary, pair.seconds, pair.runs_done, pair.from_cache, figures)


def start_run() -> None:
    """Check the levers and start :func:`run_task` (errors are shown, nothing runs)."""
    try:
        if seed.value is None or int(seed.value) < 0:
            raise InputError(f"Seed: expected a whole number >= 0, got {seed.value}")
        ls, overrides = current_overrides()
        apply_overrides(ls.scenario, overrides)  # a bad value fails here, before any run
    except InputError as exc:
        request_error.value = str(exc)
        return
    request_error.value = ""
    runs_started.value += 1
    cancel_event.value = threading.Event()
    progress.value = (0, 0)
    run_task(
        Request(
            runs_started.value,
            scenario_file.value,
            overrides,
            int(replications.value),
            float(scale.value),
            int(seed.value),
        )
    )


def cancel_run() -> None:
    if cancel_event.value is not None:
        cancel_event.value.set()


# ----------------------------------------------------------------------------- formatting


def _fmt(v: Any, digits: int = 0, sign: bool = False) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(x):
        return "-"
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _prob(t: dict[str, Any]) -> str:
    if not t:
        return "-"
    return f"{_fmt(t.get('probability'), 2)} [{_fmt(t.get('probability_low'), 2)}-{_fmt(t.get('probability_high'), 2)}]"


# ----------------------------------------------------------------------------- components


@solara.component
def LeverInput(lever: Lever) -> None:
    value = lever_values.value.get(lever.key, lever.value)

    def set_value(v: Any) -> None:
        if v is not None:
            lever_values.value = {**lever_values.value, lever.key: v}

    if lever.kind == "number":
        unit = f" ({lever.unit})" if lever.unit else ""
        solara.InputFloat(f"{lever.label}{unit}", value=float(value), on_value=set_value, continuous_update=False)
        lo = lever.minimum if lever.minimum is not None else 0.0
        hi = lever.maximum if lever.maximum is not None else max(1.0, 2 * float(value))
        step = lever.step or 1.0

        def slide(v: float) -> None:
            # the slider shows a value off its grid (20.7 on a 0.5 grid) at the nearest step and
            # reports that back: only a move to another step is the user's
            if abs(float(v) - float(value)) >= step / 2:
                set_value(v)

        solara.SliderFloat("", value=min(max(float(value), lo), hi), min=lo, max=hi, step=step, on_value=slide,
                           thumb_label=False)  # fmt: skip
    else:
        solara.Select(lever.label, values=list(lever.choices), value=value, on_value=set_value)
    if value != lever.value:
        shown = f"{lever.value:,.6g}" if isinstance(lever.value, float) else str(lever.value)
        solara.Text(f"scenario file: {shown}", style={"font-size": "0.8em", "color": "#888"})


@solara.component
def ScenarioControls() -> None:
    files = scenario_files(CONFIG.folder)
    names = [p.stem for p in files]
    current = Path(scenario_file.value).stem

    def pick(name: str) -> None:
        scenario_file.value = str(files[names.index(name)])
        lever_values.value = {}
        request_error.value = ""

    solara.Select("Scenario", values=names, value=current, on_value=pick)
    try:
        ls = lever_set(scenario_file.value)
    except InputError as exc:
        solara.Error(str(exc))
        return
    if ls.scenario.description:
        solara.Text(ls.scenario.description, style={"font-size": "0.85em"})
    solara.Text(
        f"Levers (runs are compared with {Path(CONFIG.baseline).name} on the same seeds)", style={"font-weight": "500"}
    )
    if not ls.levers:
        solara.Text("This scenario has no levers; run it as written.")
    for lever in ls.levers:
        LeverInput(lever)
    solara.Button("Reset levers", on_click=lambda: lever_values.set({}), text=True)


@solara.component
def SamplingControls() -> None:
    solara.SliderInt("Replicates per scenario", value=replications, min=1, max=50)
    solara.Select("Scale (real buyers per agent)", values=SCALES, value=scale)
    solara.InputInt("Seed", value=seed)
    solara.Text(
        f"{replications.value} replicates x 2 scenarios at scale {scale.value:g}; a coarser scale runs faster with more "
        f"sampling noise (a product selling 10,000 a month carries about +-{math.sqrt(10_000 * scale.value):,.0f} a month).",
        style={"font-size": "0.8em", "color": "#666"},
    )


@solara.component
def RunControls() -> None:
    pending = run_task.pending
    with solara.Row():
        solara.Button("Run", on_click=start_run, color="primary", disabled=pending, classes=["sim-run"])
        solara.Button("Cancel", on_click=cancel_run, disabled=not pending)
    if pending:
        done, total = progress.value
        solara.ProgressLinear(100.0 * done / total if total else True)
        solara.Text(f"{done} of {total} runs" if total else "starting workers...", classes=["sim-progress"])


@solara.component
def TargetCards(out: Outcome) -> None:
    s = out.summary
    if s.target is None:
        solara.Info("This scenario has no target: see the charts below.")
        return
    t = s.target
    ts, tb = s.targets["scenario"], s.targets["baseline"]
    rd, dd = s.reached_diff, s.delivered_diff
    goal = s.anchor + float(t["units"])
    with solara.Columns([1, 1, 1]):
        with (
            solara.Card(
                f"P({t['name']})",
                subtitle=f"{float(t['units']):,.0f} {t['brand']} deliveries {t['start']}..{t['by']} (= {goal:,.0f} cumulative)",
            ),
            solara.Column(gap="4px"),
        ):
            solara.Text(
                f"{s.scenario_name}: {_prob(ts)}",
                classes=["sim-probability"],
                style={"font-size": "1.3em", "font-weight": "bold"},
            )
            solara.Text(f"{s.baseline_name}: {_prob(tb)}", classes=["sim-probability-baseline"])
            solara.Text(
                f"95% Wilson interval over {ts.get('runs', 0)} replicates",
                style={"font-size": "0.8em", "color": "#666"},
            )
        with (
            solara.Card(
                "Paired difference (same seeds)", subtitle=f"{s.scenario_name} - {s.baseline_name}; {s.pair_note}"
            ),
            solara.Column(gap="4px"),
        ):
            solara.Text(f"probability {_fmt(rd.get('mean_diff'), 2, True)} [95% CI {_fmt(rd.get('ci_low'), 2, True)}, {_fmt(rd.get('ci_high'), 2, True)}]",
                        classes=["sim-probability-diff"])  # fmt: skip
            solara.Text(f"deliveries {_fmt(dd.get('mean_diff'), 0, True)} [95% CI {_fmt(dd.get('ci_low'), 0, True)}, {_fmt(dd.get('ci_high'), 0, True)}]",
                        classes=["sim-delivered-diff"], style={"font-weight": "bold"})  # fmt: skip
            solara.Text(f"90% of replicate differences in [{_fmt(dd.get('diff_p5'), 0, True)}, {_fmt(dd.get('diff_p95'), 0, True)}]",
                        style={"font-size": "0.8em", "color": "#666"})  # fmt: skip
        with (
            solara.Card("Window deliveries and month reached", subtitle="mean [5%, 95%] over replicates"),
            solara.Column(gap="4px"),
        ):
            solara.Text(f"{s.scenario_name}: {_fmt(ts.get('delivered_mean'))} [{_fmt(ts.get('delivered_p5'))}, {_fmt(ts.get('delivered_p95'))}]",
                        classes=["sim-delivered"])  # fmt: skip
            solara.Text(
                f"{s.baseline_name}: {_fmt(tb.get('delivered_mean'))} [{_fmt(tb.get('delivered_p5'))}, {_fmt(tb.get('delivered_p95'))}]"
            )
            solara.Text(f"median month reached: {ts.get('month_reached_median') or 'not reached'} ({s.scenario_name}), "
                        f"{tb.get('month_reached_median') or 'not reached'} ({s.baseline_name})")  # fmt: skip


@solara.component
def BrandChart(s: Summary, number: int) -> None:
    brands = sorted(set(s.monthly["brand"])) if len(s.monthly) else []
    chosen = [b for b in shown_brands.value if b in brands] or top_brands(s)
    solara.SelectMultiple("Brands", values=chosen, all_values=brands, on_value=shown_brands.set)
    fig = solara.use_memo(lambda: charts.monthly_chart(s, chosen), dependencies=[number, tuple(chosen)])
    solara.FigureMatplotlib(fig, dependencies=[number, tuple(chosen)], format="png")


@solara.component
def Results(out: Outcome) -> None:
    s, req = out.summary, out.request
    ls = lever_set(req.scenario_file)
    sampling = ["--seed", str(req.seed), "--replications", str(req.replications), "--scale", f"{req.scale:g}"]
    cache_note = f"; {out.from_cache} of 2 batches from the cache" if out.from_cache else ""
    solara.Text(
        f"Run {req.number}: {s.scenario_name} against {s.baseline_name}, {s.replicates} replicates each at scale "
        f"{s.scale:g}, seed {s.seed}; {out.runs_done} runs in {out.seconds:.1f} s{cache_note}.",
        style={"font-weight": "500"},
    )
    solara.Text(f"run {req.number}", classes=["sim-run-number"], style={"display": "none"})
    for f in s.failed[:3]:
        solara.Error(f"failed run: {f[:2000]}")
    TargetCards(out)
    with solara.Card("Cumulative deliveries against the target"):
        with solara.Div(classes=["sim-fan"]):
            solara.FigureMatplotlib(out.figures["fan"], dependencies=[req.number], format="png")
        solara.FigureMatplotlib(out.figures["window"], dependencies=[req.number], format="png")
    with solara.Card("Monthly deliveries per brand"):
        BrandChart(s, req.number)
    with solara.Card("Price segments"):
        solara.FigureMatplotlib(out.figures["segments"], dependencies=[req.number], format="png")
        table = s.segments.copy()
        for c in table.columns[1:]:
            table[c] = (100 * table[c]).round(1)
        solara.DataFrame(table.rename(columns=lambda c: c if c == "segment" else f"{c} %"), items_per_page=10)
    with solara.Details("Reproduce on the command line"):
        base_cmd = command_line(Path(CONFIG.baseline), {}, [*sampling, "--out", "results/dash-base"])
        scen_cmd = command_line(Path(req.scenario_file), req.overrides, [*sampling, "--out", "results/dash-scenario"])
        solara.Preformatted(f"{base_cmd}\n{scen_cmd}\nsim compare results/dash-base results/dash-scenario")
        if ls.levers:
            solara.Text(
                "Levers: " + "; ".join(f"{lv.label} -> {lv.help}" for lv in ls.levers), style={"font-size": "0.8em"}
            )


@solara.component
def ScenarioPage() -> None:
    solara.Title("sim dashboard: scenarios")
    first = solara.use_ref(True)

    def auto_run() -> None:  # show the scenario as written on first load
        if first.current and run_task.value is None and not run_task.pending:
            first.current = False
            start_run()

    solara.use_effect(auto_run, [])
    with solara.Sidebar():
        with solara.Card("Scenario"):
            ScenarioControls()
        with solara.Card("Sampling"):
            SamplingControls()
        with solara.Card():
            RunControls()
    if request_error.value:
        solara.Error(request_error.value, classes=["sim-error"])
    if run_task.error:
        exc = run_task.exception
        if isinstance(exc, Cancelled):
            solara.Warning("Cancelled.")
        elif isinstance(exc, InputError):
            solara.Error(str(exc), classes=["sim-error"])
        elif isinstance(exc, BrokenProcessPool):
            solara.Error(
                f"a worker process died (killed, or out of memory?): {exc} Press Run to try again.",
                classes=["sim-error"],
            )
        else:
            solara.Error(f"internal error: {type(exc).__name__}: {exc}", classes=["sim-error"])
    out = run_task.latest if run_task.pending else run_task.value
    if run_task.pending:
        done, total = progress.value
        solara.Info(f"Running {scenario_name(scenario_file.value)} and the baseline: {done} of {total or '?'} runs...")
    if out is not None:
        Results(out)
    elif not run_task.pending and not run_task.error:
        solara.Info("Pick a scenario, move its levers and press Run.")


def scenario_name(path: str) -> str:
    return Path(path).stem
