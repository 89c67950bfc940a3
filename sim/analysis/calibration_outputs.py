"""The outputs of ``sim calibrate``: ``fit.json``, the overlay ``calibrated.yaml`` and the printed summary.

``fit.json`` (:func:`fit_report`) holds the method, the rounds, the ensemble with its weights, the
parameters' weighted means and quantiles, and the in-sample and (with ``--through`` before the
file's ``through``) out-of-sample metrics per series, with whether they are honest: a base whose
appeals ``sim fit-appeals`` fitted to later data makes the held-out scores in sample.
``calibrated.yaml`` (:func:`overlay_document`) extends the base scenario, sets the ensemble's
weighted means and holds the ensemble (:class:`sim.scenario.schema.Ensemble`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.analysis.calibrate import Calibration, Outcome, write_json
from sim.analysis.calibration_targets import FitTarget, distances
from sim.analysis.fit_targets import CONFIDENCE_WEIGHT
from sim.scenario.load import load_scenario
from sim.scenario.months import parse_month
from sim.scenario.paths import parse_path

#: Band of the reported-value coverage check (5% and 95% of the ensemble's weighted values).
BAND = (0.05, 0.95)


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    cw = cw / cw[-1]
    return float(x[order][min(int(np.searchsorted(cw, q)), x.size - 1)])


def _series_metrics(targets: list[FitTarget], sim_mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for t, s, lo, hi in zip(targets, sim_mean, low, high, strict=True):
        r = rows.setdefault(t.series, {"series": t.series, "brand": t.volume.brand, "product": t.volume.model,
                                       "targets": 0, "_ape": [], "_monthly": [], "annual": {}, "_in": 0})
        ape = abs(s / t.volume.value - 1)
        r["targets"] += 1
        r["_ape"].append(ape)
        r["_in"] += int(lo <= t.volume.value <= hi)
        if t.frequency == "monthly":
            r["_monthly"].append(ape)
        if t.frequency == "annual" or (t.volume.start.endswith("-01") and t.volume.end == t.volume.start[:4] + "-12"):
            r["annual"][t.volume.start[:4]] = round(100 * (s / t.volume.value - 1), 1)
    out = []
    for r in rows.values():
        out.append({
            "series": r["series"], "brand": r["brand"], "product": r["product"], "targets": r["targets"],
            "mape": round(100 * float(np.mean(r["_ape"])), 1),
            "mape_monthly": round(100 * float(np.mean(r["_monthly"])), 1) if r["_monthly"] else None,
            "monthly_targets": len(r["_monthly"]),
            "annual_error_pct": r["annual"],
            "band_coverage": round(r["_in"] / r["targets"], 3),
        })
    return sorted(out, key=lambda r: (r["product"] is not None, r["brand"], r["series"]))


def _sample_report(targets: list[FitTarget], values: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    """Metrics of the ensemble (weighted mean and 5-95% band of its sets' values) against ``targets``."""
    if not targets:
        return {"targets": 0}
    sim_mean = weights @ values
    low = np.array([_weighted_quantile(values[:, j], weights, BAND[0]) for j in range(values.shape[1])])
    high = np.array([_weighted_quantile(values[:, j], weights, BAND[1]) for j in range(values.shape[1])])
    member_loss = distances(values, targets)
    rows = [
        {"target": t.key, "frequency": t.frequency, "reported": t.volume.value, "simulated": round(float(s), 1),
         "p5": round(float(lo), 1), "p95": round(float(hi), 1), "error_pct": round(100 * (s / t.volume.value - 1), 1),
         "weight": round(t.weight, 4), "lines": t.volume.lines}
        for t, s, lo, hi in zip(targets, sim_mean, low, high, strict=True)
    ]
    return {
        "targets": len(targets),
        "loss_of_mean": float(distances(sim_mean[None, :], targets)[0]),
        "loss_per_member": [round(float(x), 5) for x in member_loss],
        "mape": round(float(np.mean([abs(r["error_pct"]) for r in rows])), 1),
        "band_coverage": round(float(np.mean([(r["p5"] <= r["reported"] <= r["p95"]) for r in rows])), 3),
        "series": _series_metrics(targets, sim_mean, low, high),
        "figures": rows,
    }


_EXTENDS = re.compile(r"^extends:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(#.*)?$", re.M)


def _extends_chain(base_file: Path) -> Iterator[str]:
    """The text of ``base_file``, then of the scenario it extends, and so on (a file met twice ends the chain)."""
    path: Path | None = base_file
    seen = set()
    while path is not None and path.is_file() and path not in seen:
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        yield text
        m = _EXTENDS.search(text)
        path = (path.parent / m.group(1).strip()).resolve() if m else None


def base_fit_cutoff(base_file: Path) -> str | None:
    """The ``--through`` month of the appeal fit that wrote ``base_file`` (or a scenario it extends), if any."""
    for text in _extends_chain(base_file):
        head = "\n".join(line for line in text.splitlines()[:5] if line.startswith("#"))
        if "fit-appeals" in head:
            m = re.search(r"--through\s+(\d{4}-\d{2})", head)
            return m.group(1) if m else "2024-12"
    return None


def fit_report(cal: Calibration, outcome: Outcome) -> dict[str, Any]:
    """The content of ``fit.json``."""
    pop = outcome.population
    params = []
    for j, p in enumerate(cal.parameters):
        x = np.array([p.applied(v) for v in pop.values[:, j]])
        mean = float(pop.weights @ x)
        params.append({
            "path": p.path, "prior": p.prior, "low": p.low, "high": p.high, "mean_prior": p.mean, "sd_prior": p.sd,
            "offset": p.offset, "base_value": p.base_value, "mean": round(mean, 5),
            "sd": round(float(np.sqrt(pop.weights @ (x - mean) ** 2)), 5),
            "p5": round(_weighted_quantile(x, pop.weights, 0.05), 5),
            "p50": round(_weighted_quantile(x, pop.weights, 0.5), 5),
            "p95": round(_weighted_quantile(x, pop.weights, 0.95), 5),
        })
    fit_idx = [i for i, t in enumerate(cal.targets) if t.in_sample]
    out_idx = [i for i, t in enumerate(cal.targets) if not t.in_sample]
    base_cut = base_fit_cutoff(cal.base_file)
    fitted_before = _base_fitted_values(cal.base_file) if base_cut else 0
    honest = base_cut is None or parse_month(base_cut) <= parse_month(cal.fit_through)
    notes = []
    if not honest:
        notes.append(f"the base scenario's appeals were fitted by 'sim fit-appeals' to data through {base_cut}, after the "
                     f"cut-off {cal.fit_through}: the scores after {cal.fit_through} are NOT out of sample; use --base with "
                     f"a base fitted through {cal.fit_through}")
    return {
        "calibration": str(cal.file),
        "name": cal.name,
        "base": str(cal.base_file),
        "method": "ABC-SMC (Latin hypercube from the prior, then weighted resampling + Gaussian perturbation in logit "
                  "coordinates, tolerance the quantile of each round's distances, importance weights)",
        "distance": "weighted RMS log error sqrt(sum w r^2 / sum w), r = log(max(simulated, 1) / reported)",
        "fit_through": cal.fit_through,
        "data_through": cal.scenario.end,
        "seed": cal.config.seed,
        "scale": cal.config.scale,
        "replications": cal.config.method.replications,
        "budget": cal.budget,
        "runs": outcome.runs,
        "seconds": round(outcome.seconds, 1),
        "free_parameters": len(cal.parameters),
        "base_fitted_through": base_cut,
        "base_fitted_values": fitted_before,
        "targets_in_sample": len(fit_idx),
        "targets_out_of_sample": len(out_idx),
        "out_of_sample_is_honest": honest if out_idx else None,
        "notes": notes,
        "tolerance": pop.tolerance,
        "members": len(pop.weights),
        "ess": round(pop.ess, 2),
        "weights": {"confidence": CONFIDENCE_WEIGHT, "frequency": dict(cal.config.data.frequency_weight),
                    "brand": dict(cal.config.data.brand_weight)},
        "rounds": [{k: r[k] for k in ("round", "tolerance", "best", "median", "ess", "failed", "runs", "seconds")}
                   | {"accepted": len(r["accepted"])} for r in outcome.rounds],
        "accepted_by_round": np.bincount(_round_of(outcome), minlength=len(outcome.rounds)).tolist(),
        "parameters": params,
        "ensemble": [{"weight": round(float(w), 6), "loss": round(float(d), 5),
                      "set": {p.path: round(p.applied(v), 6) for p, v in zip(cal.parameters, row, strict=True)}}
                     for w, d, row in zip(pop.weights, pop.distances, pop.values, strict=True)],
        "in_sample": _sample_report([cal.targets[i] for i in fit_idx], outcome.final_values[:, fit_idx], pop.weights),
        "out_of_sample": _sample_report([cal.targets[i] for i in out_idx], outcome.final_values[:, out_idx], pop.weights),
    }


def _round_of(outcome: Outcome) -> np.ndarray:
    """The round each accepted set came from."""
    edges = np.cumsum([len(r["proposals"]) for r in outcome.rounds])
    return np.searchsorted(edges, outcome.population.index, side="right")


def _base_fitted_values(base_file: Path) -> int:
    """How many appeal and ageing values an appeal-fit overlay in the chain sets (calibration done before this one)."""
    for text in _extends_chain(base_file):
        if "fit-appeals" in "\n".join(text.splitlines()[:5]):
            data = yaml.safe_load(text) or {}
            n = sum(1 for b in data.get("brands") or [] if "appeal" in b)
            n += sum(("appeal" in p) + ("ageing" in p) for p in data.get("products") or [])
            return int(n)
    return 0


def overlay_document(cal: Calibration, outcome: Outcome, out: Path, command: str) -> str:
    """Text of ``calibrated.yaml``: extends the base, sets the ensemble's weighted means, holds the ensemble."""
    pop = outcome.population
    data = cal.scenario.model_dump(mode="json")
    means = {p.path: round(p.applied(float(pop.weights @ pop.values[:, j])), 6) for j, p in enumerate(cal.parameters)}
    doc: dict[str, Any] = {
        "name": f"{cal.name}_calibrated",
        "description": f"{cal.name}: an ensemble of {len(pop.weights)} parameter sets fitted by ABC-SMC to reported "
                       f"volumes through {cal.fit_through}; each run uses one set. Top-level values are the ensemble's "
                       "weighted means (used only where one parameter set is needed).",
        "extends": os.path.relpath(cal.base_file, out.resolve()),
    }
    doc.update(_overlay_values(data, means))
    order = np.argsort(pop.distances, kind="stable")
    doc["ensemble"] = {
        "source": f"{command} (ABC-SMC, data through {cal.fit_through}, tolerance {pop.tolerance:.4f})",
        "assign": "draw",
        "members": [
            {"weight": round(float(pop.weights[i]), 6), "loss": round(float(pop.distances[i]), 5),
             "set": {p.path: round(p.applied(float(pop.values[i, j])), 6) for j, p in enumerate(cal.parameters)}}
            for i in order
        ],
    }
    head = [
        "# Generated by the ensemble calibration (sim/ensemble.py); do not edit by hand, rerun:",
        f"#   {command}",
        f"# ABC-SMC: {len(outcome.rounds)} rounds, {outcome.runs} runs at scale {cal.config.scale:g}, "
        f"{len(cal.parameters)} free parameters, {len(cal.fit_targets)} reported figures through {cal.fit_through}; "
        f"tolerance {pop.tolerance:.4f} (weighted RMS log error), {len(pop.weights)} members (ESS {pop.ess:.1f}).",
        "# Each run draws one member (by weight, from its own seed) and applies its values; see fit.json for the fit.",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def _overlay_values(data: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    """A scenario overlay (mappings, and named list items merged by name) setting ``values`` by path.

    Paths through list indices (``events[3].price``) cannot be written this way and are skipped.
    """
    doc: dict[str, Any] = {}
    for path, value in values.items():
        parts = [p for p in parse_path(path) if isinstance(p, str)]
        if len(parts) != len(parse_path(path)):
            continue
        node: dict[str, Any] = doc
        src: Any = data
        i = 0
        while i < len(parts):
            part = parts[i]
            if i == len(parts) - 1:
                node[part] = value
                break
            child = src.get(part) if isinstance(src, dict) else None
            if isinstance(child, list):  # the next part names an item of the list
                name = parts[i + 1]
                items = node.setdefault(part, [])
                item = next((it for it in items if it.get("name") == name), None)
                if item is None:
                    item = {"name": name}
                    items.append(item)
                node = item
                src = next((it for it in child if isinstance(it, dict) and it.get("name") == name), {})
                i += 2
                continue
            node = node.setdefault(part, {})
            src = child if isinstance(child, dict) else {}
            i += 1
    return doc


def write_outputs(cal: Calibration, outcome: Outcome, out: Path, command: str) -> dict[str, Any]:
    """Write ``calibrated.yaml`` and ``fit.json``; returns the fit report."""
    report = fit_report(cal, outcome)
    report["command"] = command
    write_json(out / "fit.json", report)
    text = overlay_document(cal, outcome, out, command)
    tmp = out / ".calibrated.yaml.tmp"
    tmp.write_text(text)
    os.replace(tmp, out / "calibrated.yaml")
    load_scenario(out / "calibrated.yaml")  # it must validate
    return report


def format_report(report: dict[str, Any]) -> str:
    """A readable summary of ``fit.json``."""
    lines = [
        f"{report['name']}: {report['free_parameters']} free parameters fitted to {report['targets_in_sample']} reported "
        f"figures through {report['fit_through']} ({report['runs']} runs, {report['seconds']:.0f} s); "
        f"{report['targets_out_of_sample']} figures after it held out.",
    ]
    if report.get("base_fitted_values"):
        lines.append(f"The base also holds {report['base_fitted_values']} appeal/ageing values fitted earlier by "
                     f"'sim fit-appeals' to data through {report['base_fitted_through']}.")
    lines.append(f"Tolerance {report['tolerance']:.4f}; ensemble of {report['members']} sets (ESS {report['ess']:.1f}).")
    lines.append("rounds: " + "; ".join(f"{r['round']}: tol {r['tolerance']:.3f}, best {r['best']:.3f}" for r in report["rounds"]))
    lines.append(f"{'parameter':<44} {'base':>9} {'prior':<34} {'mean':>9} {'5%':>9} {'95%':>9}")
    for p in report["parameters"]:
        prior = ("base + " if p["offset"] else "") + f"{p['prior']} [{p['low']:g}, {p['high']:g}]"
        lines.append(f"{p['path']:<44} {p['base_value']:>9.4g} {prior:<34} {p['mean']:>9.4g} {p['p5']:>9.4g} {p['p95']:>9.4g}")
    for label in ("in_sample", "out_of_sample"):
        s = report[label]
        if not s.get("targets"):
            continue
        lines.append(f"{label.replace('_', ' ')}: {s['targets']} figures, loss of the mean {s['loss_of_mean']:.4f}, "
                     f"MAPE {s['mape']:.1f}%, reported values in the ensemble's 90% band {100 * s['band_coverage']:.0f}%")
        lines.append(f"  {'series':<22} {'figures':>7} {'MAPE%':>7} {'monthly MAPE%':>14}  annual error %")
        for r in s["series"]:
            annual = ", ".join(f"{y} {v:+.1f}" for y, v in sorted(r["annual_error_pct"].items()))
            mm = f"{r['mape_monthly']:.1f}" if r["mape_monthly"] is not None else "-"
            lines.append(f"  {r['series']:<22} {r['targets']:>7} {r['mape']:>7.1f} {mm:>14}  {annual}")
    lines += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)

