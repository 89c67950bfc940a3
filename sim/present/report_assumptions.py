"""The scenario's key assumptions in the report, and what differs between two resolved scenarios."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sim.present.report_batch import Batch
from sim.present.report_html import esc, html_table, number, percent, rmb
from sim.scenario.months import parse_month


def _when(item: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        if item.get(k):
            return str(item[k])
    return None


def _in_forecast(month: str | None, fs: str | None) -> bool:
    return month is not None and (fs is None or parse_month(month) >= parse_month(fs))


def _still_on(end: str | None, fs: str | None) -> bool:
    return end is None or fs is None or parse_month(end) >= parse_month(fs)


_EVENT_TARGET = ("product", "brand", "brands", "market", "channel")
_EVENT_CHANGE = ("price", "factor", "discount", "floor", "max_discount", "capacity", "count", "add", "appeal", "smart", "until")


def _months(item: Mapping[str, Any]) -> str:
    """The months of a policy: ``a..b``, ``from a``, ``until b`` or ``always``."""
    a, b = item.get("start"), item.get("end")
    return f"{a}..{b}" if a and b else f"from {a}" if a else f"until {b}" if b else "always"


def _compact(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_compact(x)}" for k, x in v.items() if x is not None and x != [] and x != {})
    if isinstance(v, list):
        return ", ".join(_compact(x) for x in v)
    return str(v)


def key_assumptions(manifest: Mapping[str, Any]) -> str:
    """The scenario's key assumptions, from its resolved copy in the manifest."""
    sc: dict[str, Any] = manifest.get("scenario") or {}
    fs = sc.get("forecast_start")
    out = [f"<p>{esc(sc.get('description') or 'No description.')}</p>"]
    general = [
        ("scenario", f"{sc.get('name', '')} (file {manifest.get('scenario_file', '-')}, extends {sc.get('extends') or '-'})"),
        ("months", f"{sc.get('start')}..{sc.get('end')}; forecast from {fs or '(not set)'}"),
        ("scale", f"{number(manifest.get('scale'))} real buyers per buyer agent"),
        ("overrides (--set)", ", ".join(f"{k}={v}" for k, v in (manifest.get("overrides") or {}).items()) or "none"),
    ]  # fmt: skip
    for m in sc.get("markets") or []:
        general.append((f"market {m.get('name')}", f"{number(m.get('buyers_per_month'))} buyers a month at {m.get('reference_month')}, "
                        f"growth {percent(m.get('growth_per_year'), 1)} a year, price level {m.get('price_level')}"))  # fmt: skip
    b = sc.get("buyers") or {}
    if b:
        choice = b.get("choice") or {}
        general.append(("buyers", f"budget median {rmb(b.get('budget_median', math.nan))}, price sensitivity "
                        f"{b.get('price_sensitivity')}, outside option value {b.get('outside_value')}, choice "
                        f"{choice.get('model', '-')} (nest lambda {choice.get('nest_lambda', '-')})"))  # fmt: skip
    out.append(html_table(["", ""], [[esc(k), esc(v)] for k, v in general], cls="kv"))
    launches = [p for p in sc.get("products") or [] if _in_forecast(_when(p, ("delivery_start", "launch")), fs)]
    if launches:
        rows = [[esc(p["name"]), esc(p.get("brand")), number(p.get("price")), esc(p.get("powertrain")), esc(p.get("launch")),
                 esc(p.get("delivery_start") or p.get("launch")),
                 esc(f"{number((p.get('capacity') or {}).get('max'))} a month, {(p.get('capacity') or {}).get('ramp_months', '-')}-month ramp"
                    if p.get("capacity") else "unlimited"), esc(p.get("source"))] for p in launches]  # fmt: skip
        out.append("<h3>Products delivering from the forecast start</h3>")
        out.append(html_table(["product", "brand", "list price (RMB)", "powertrain", "launch", "deliveries from", "capacity", "source"],
                          rows, "llrlnn"))  # fmt: skip
    events = [e for e in sc.get("events") or [] if _in_forecast(e.get("month"), fs)]
    if events:
        rows = []
        for e in sorted(events, key=lambda e: parse_month(e["month"])):
            who = "; ".join(_compact(e[k]) for k in _EVENT_TARGET if e.get(k))
            what = ", ".join(f"{k} {_compact(e[k])}" for k in _EVENT_CHANGE if e.get(k) not in (None, False))
            rows.append([esc(e["month"]), esc(e["type"]), esc(who), esc(what), esc(e.get("note") or e.get("source") or "")])
        out.append("<h3>Dated events in the forecast</h3>")
        out.append(html_table(["month", "type", "applies to", "change", "note / source"], rows, "n"))
    pol = sc.get("policies") or {}
    rows = []
    for x in pol.get("nev_exemptions") or []:
        if _still_on(x.get("end"), fs):
            rows.append(["NEV purchase-tax exemption", _months(x),
                         f"{percent(x.get('share'))} of the tax, cap {rmb(x.get('cap', math.nan))}, "
                         f"electric range from {number(x.get('min_electric_range_km'))} km", x.get("source", "")])  # fmt: skip
    for x in pol.get("tariffs") or []:
        if _still_on(x.get("end"), fs):
            on = ", ".join(str(v) for v in (x.get("made_in") or x.get("brands") or x.get("powertrains") or []))
            rows.append([f"tariff: {x.get('name')}", _months(x),
                         f"{percent(x.get('rate'), 1)} in {x.get('market')} on {on or 'all'}", x.get("source", "")])  # fmt: skip
    for x in pol.get("subsidies") or []:
        if _still_on(x.get("end"), fs):
            rows.append([f"subsidy: {x.get('name')}", _months(x),
                         f"{rmb(x.get('amount_nev', math.nan))} NEV / "
                         f"{rmb(x.get('amount_ice', math.nan))} ICE, uptake {percent(x.get('uptake'))}",
                         x.get("source", "")])  # fmt: skip
    if rows:
        out.append("<h3>Policies in force during the forecast</h3>")
        out.append(html_table(["policy", "months", "terms", "source"], [[esc(c) for c in r] for r in rows], "ln"))
    return "\n".join(out)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of named items as a dict by name (None when not every item has a unique name)."""
    if not all(isinstance(i, dict) and i.get("name") for i in items):
        return None
    names = [str(i["name"]) for i in items]
    return dict(zip(names, items, strict=True)) if len(set(names)) == len(names) else None


def scenario_differences(ref: Any, this: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Where two resolved scenarios differ: ``(path, reference value, this value)``.

    Lists of named items (products, brands, markets...) are matched by name; other lists
    (events, stores) are compared as collections: items only in one appear as added or removed.
    ``name`` and ``description`` are left out.
    """
    if isinstance(ref, dict) and isinstance(this, dict):
        out = []
        for k in sorted(set(ref) | set(this), key=str):
            if not path and k in ("name", "description", "extends"):
                continue
            p = f"{path}.{k}" if path else str(k)
            if k not in ref:
                out.append((p, "(absent)", _compact(this[k])))
            elif k not in this:
                out.append((p, _compact(ref[k]), "(absent)"))
            else:
                out += scenario_differences(ref[k], this[k], p)
        return out
    if isinstance(ref, list) and isinstance(this, list):
        kr, kt = _keyed(ref), _keyed(this)
        if kr is not None and kt is not None:
            return scenario_differences(kr, kt, path)
        a = [json.dumps(x, sort_keys=True, ensure_ascii=False) for x in ref]
        b = [json.dumps(x, sort_keys=True, ensure_ascii=False) for x in this]
        return ([(f"{path}[-]", _compact(json.loads(x)), "(removed)") for x in a if x not in b]
                + [(f"{path}[+]", "(absent)", _compact(json.loads(x))) for x in b if x not in a])  # fmt: skip
    return [] if ref == this else [(path, _compact(ref), _compact(this))]


def differences_html(batch: Batch, vs: Batch, limit: int = 60) -> str:
    diffs = scenario_differences(vs.scenario, batch.scenario)
    if not diffs:
        return "<p>The two resolved scenarios are identical.</p>"

    def cut(s: str) -> str:
        return s if len(s) <= 300 else s[:297] + "..."

    rows = [[esc(p), esc(cut(a)), esc(cut(b))] for p, a, b in diffs[:limit]]
    more = f"<p>{len(diffs) - limit} more differences not shown.</p>" if len(diffs) > limit else ""
    return html_table(["field", vs.label, batch.label], rows, cls="diff") + more
