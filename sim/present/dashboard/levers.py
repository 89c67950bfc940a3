"""The dashboard's levers: a few named knobs per scenario, each mapped onto ``sim run --set`` overrides.

A lever is offered only where the scenario has what it moves:

============================ ================================================ =================================
lever                        offered when the scenario has                    overrides (``--set`` paths)
============================ ================================================ =================================
M6 price, RMB                a product named ``AITO M6``                      ``products.AITO M6.price``
M6 launch month              the same                                         ``products.AITO M6.launch`` and
                                                                              ``.delivery_start`` (same gap)
M6 capacity, units a month   the same                                         ``products.AITO M6.capacity.max``
NEV purchase-tax relief      an exemption period covering its first target    ``policies.nev_exemptions[i].share``,
                             month                                            ``.cap``, ``.min_electric_range_km``
tariff rate, % (one each)    tariffs in markets without China's purchase tax  ``policies.tariffs[i].rate``
export push, x               store events or networks in those markets        ``events[i].count`` / ``.add``,
                                                                              ``stores[i].count``
price-war depth, x           price or discount events the scenario adds to    ``events[i].price`` / ``.factor``
                             the one it extends                               / ``.discount`` / ``.add``
capacity-shock depth, x      capacity events with a factor that it adds       ``events[i].factor``
============================ ================================================ =================================

Every lever's neutral value is the scenario's own: a lever left there adds no override, so the
scenario as written runs unchanged (same hash, same results as ``sim run``).

The multipliers ("depth", "push") scale what the scenario changes, not absolute levels: depth
``d`` moves a price event's new list price to ``before + d * (event - before)`` (``before`` is
the product's list price just before the event), a factor to ``1 + d * (factor - 1)``, a
discount change (``add``, points on top of the brand's own path) to ``d * add``, and a
discount level to ``start + d * (event - start)`` (``start`` is the brand's starting
discount, ``brands[].pricing.discount``, the reference the price-war file states its moves
against; the first brand's for an event naming several). Depth 0 is therefore "list prices
unchanged, discounts back at the brands' starting levels" (the floors stay, at those levels), 1
the scenario, 2 twice its moves. The export push multiplies the store counts in the export
markets (rounded to whole stores).

The three NEV-tax presets are the policies of the shipped scenario files: ``halved`` is the
legislated 2026-27 rule (``tax_2026.yaml``: 50% exempted, cap RMB 15,000, PHEV/EREV need
100 km of electric range), ``continued`` the counterfactual of ``no_tax_change.yaml`` (100%,
cap RMB 30,000, no range rule); ``ended`` (no relief at all) is a further counterfactual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sim.scenario.events import Event
from sim.scenario.load import load_scenario, validate_document
from sim.scenario.months import format_month, parse_month
from sim.scenario.paths import apply_override
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import Document, InputError

#: The product the M6 levers move.
M6 = "AITO M6"
#: NEV purchase-tax relief presets: (share exempted, cap in RMB, electric range PHEV/EREV need in km).
TAX_PRESETS: dict[str, tuple[float, float, float]] = {
    "halved (legislated)": (0.5, 15_000.0, 100.0),
    "full exemption continues": (1.0, 30_000.0, 0.0),
    "exemption ends": (0.0, 0.0, 0.0),
}
#: The tax lever's choice when the scenario's period matches no preset.
TAX_AS_FILE = "as in the scenario file"
#: Range of the multipliers (depth, push).
MULTIPLIER_RANGE = (0.0, 3.0)

Kind = Literal["number", "month", "choice"]


@dataclass(frozen=True)
class Lever:
    """One knob of the page.

    Attributes:
        key: stable identifier (``m6_price``, ``tariff:5``...), the key of the lever values.
        label: what the page shows.
        kind: ``number`` (a slider), ``month`` (``YYYY-MM``, one of ``choices``) or ``choice``.
        value: the scenario's own value: the neutral position, which adds no override.
        minimum, maximum, step: the range of a number.
        choices: the values of a month or choice lever.
        unit: of a number (``RMB``, ``units/month``, ``%``, ``x``).
        help: one line on what it moves.
    """

    key: str
    label: str
    kind: Kind
    value: Any
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    help: str = ""

    def check(self, value: Any) -> Any:
        """The value if this lever can take it, else :class:`InputError` naming the lever."""
        if self.kind == "number":
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise InputError(f"{self.label}: expected a number, got {value!r}") from None
            lo = -float("inf") if self.minimum is None else self.minimum
            hi = float("inf") if self.maximum is None else self.maximum
            if not lo <= v <= hi:
                raise InputError(f"{self.label}: must be in {lo:.12g}..{hi:.12g}, got {v:.12g}")
            return v
        if value not in self.choices:
            raise InputError(f"{self.label}: expected one of {', '.join(self.choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class LeverSet:
    """The levers of one scenario and how they map onto overrides.

    Build with :func:`levers_for`. ``parent`` is the scenario it extends (for the levers that
    scale what the scenario adds), or None.
    """

    scenario: Scenario
    parent: Scenario | None
    levers: tuple[Lever, ...]
    _targets: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def by_key(self) -> dict[str, Lever]:
        return {lv.key: lv for lv in self.levers}

    def defaults(self) -> dict[str, Any]:
        """Every lever at its neutral value."""
        return {lv.key: lv.value for lv in self.levers}

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``--set``-style overrides (path -> value) for lever values; neutral levers add none.

        Raises:
            InputError: for an unknown lever or a value out of its range.
        """
        known = self.by_key()
        out: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise InputError(
                    f"unknown lever '{key}' for scenario {self.scenario.name} (levers: {', '.join(known)})"
                )
            lever = known[key]
            value = lever.check(raw)
            if _same(value, lever.value):
                continue
            out.update(_MAPPERS[key.split(":")[0]](self, lever, value))
        return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return False
    return bool(a == b)


# --------------------------------------------------------------------------- which levers


def levers_for(scenario: Scenario, parent: Scenario | None = None) -> LeverSet:
    """The levers a scenario offers (see the module docstring for when each is offered)."""
    levers: list[Lever] = []
    targets: dict[str, Any] = {}
    products = {p.name: p for p in scenario.products}
    if M6 in products:
        m6 = products[M6]
        first = parse_month(scenario.forecast_start or scenario.start)
        gap = parse_month(m6.delivery_start or m6.launch) - parse_month(m6.launch)
        months = tuple(format_month(i) for i in range(first, scenario.end_index - gap + 1))
        if m6.launch not in months:
            months = tuple(sorted({*months, m6.launch}))
        levers += [
            Lever("m6_price", "M6 list price", "number", float(m6.price), 150_000.0, 1_000_000.0, 5_000.0, unit="RMB",
                  help=f"products.{M6}.price"),
            Lever("m6_launch", "M6 launch (orders open)", "month", m6.launch, choices=months,
                  help=f"products.{M6}.launch; deliveries start {gap} month(s) later"),
            Lever("m6_capacity", "M6 capacity at full ramp", "number", float(m6.capacity.max), 0.0, 60_000.0, 1_000.0,
                  unit="units/month", help=f"products.{M6}.capacity.max"),
        ]  # fmt: skip
    period = _tax_period(scenario)
    if period is not None:
        i, ex = period
        current = next((k for k, v in TAX_PRESETS.items() if _same_tax(v, ex)), None)
        choices = tuple(TAX_PRESETS) if current else (TAX_AS_FILE, *TAX_PRESETS)
        levers.append(Lever("nev_tax", f"NEV purchase-tax relief {ex.start}..{ex.end}", "choice", current or TAX_AS_FILE,
                            choices=choices, help=f"policies.nev_exemptions[{i}]"))  # fmt: skip
        targets["nev_tax"] = i
    home = set(scenario.policies.purchase_tax_markets)
    for i, tr in enumerate(scenario.policies.tariffs):
        if tr.market not in home:
            levers.append(Lever(f"tariff:{i}", f"{tr.name}", "number", round(tr.rate * 100, 6), 0.0, 300.0, 0.1, unit="%",
                                help=f"policies.tariffs[{i}].rate ({tr.market})"))  # fmt: skip
    push_events = [
        i for i, e in enumerate(scenario.events) if e.type == "stores" and e.market is not None and e.market not in home
    ]
    push_stores = [i for i, s in enumerate(scenario.stores) if s.market not in home]
    if push_events or push_stores:
        levers.append(Lever("export_push", "Export push (store openings abroad)", "number", 1.0, *MULTIPLIER_RANGE, 0.1,
                            unit="x", help=f"{len(push_events)} store event(s) in export markets, scaled"))  # fmt: skip
        targets["export_push"] = (push_events, push_stores)
    added = _added_events(scenario, parent)
    war = [i for i in added if scenario.events[i].type in ("price", "discount")]
    if war:
        levers.append(Lever("price_war_depth", "Price-war depth", "number", 1.0, *MULTIPLIER_RANGE, 0.1, unit="x",
                            help=f"{len(war)} price/discount event(s) this scenario adds, scaled"))  # fmt: skip
        targets["price_war_depth"] = war
    shock = [i for i in added if scenario.events[i].type == "capacity" and scenario.events[i].factor is not None]
    if shock:
        levers.append(Lever("shock_depth", "Capacity-shock depth", "number", 1.0, *MULTIPLIER_RANGE, 0.1, unit="x",
                            help=f"{len(shock)} capacity event(s) this scenario adds, scaled"))  # fmt: skip
        targets["shock_depth"] = shock
    return LeverSet(scenario, parent, tuple(levers), targets)


def load_levers(path: str | Path) -> LeverSet:
    """Load a scenario file (and the file it extends) and give its levers."""
    scenario = load_scenario(path)
    parent = None
    if scenario.extends:
        parent = load_scenario((Path(path).parent / scenario.extends).resolve())
    return levers_for(scenario, parent)


def apply_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """The scenario with ``overrides`` applied and validated again, without re-reading its files.

    Gives the scenario ``load_scenario(file, overrides)`` gives (as :class:`sim.model.market_model.MarketModel`
    applies keyword overrides); errors name the override, not a file line.
    """
    if not overrides:
        return scenario
    data = scenario.model_dump(mode="json")
    for path, value in overrides.items():
        apply_override(data, path, value)
    return validate_document(Document(data, {}, f"<{scenario.name} with the dashboard's levers>"))


def _tax_period(scenario: Scenario) -> tuple[int, Any] | None:
    """Index and item of the NEV exemption period covering the first target's first month."""
    if not scenario.targets:
        return None
    when = parse_month(scenario.targets[0].start)
    for i, ex in enumerate(scenario.policies.nev_exemptions):
        if parse_month(ex.start) <= when <= parse_month(ex.end):
            return i, ex
    return None


def _same_tax(preset: tuple[float, float, float], ex: Any) -> bool:
    return all(_same(a, b) for a, b in zip(preset, (ex.share, ex.cap, ex.min_electric_range_km), strict=True))


def _added_events(scenario: Scenario, parent: Scenario | None) -> list[int]:
    """Indices of the scenario's events that its parent does not have."""
    if parent is None:
        return []
    theirs = list(parent.events)
    out = []
    for i, e in enumerate(scenario.events):
        if e in theirs:
            theirs.remove(e)
        else:
            out.append(i)
    return out


# --------------------------------------------------------------------------- lever -> overrides


def _m6_price(ls: LeverSet, lever: Lever, value: float) -> dict[str, Any]:
    return {f"products.{M6}.price": round(value, 2)}


def _m6_launch(ls: LeverSet, lever: Lever, value: str) -> dict[str, Any]:
    m6 = next(p for p in ls.scenario.products if p.name == M6)
    gap = parse_month(m6.delivery_start or m6.launch) - parse_month(m6.launch)
    out = {f"products.{M6}.launch": value, f"products.{M6}.delivery_start": format_month(parse_month(value) + gap)}
    if m6.capacity.start is not None:
        shift = parse_month(value) - parse_month(m6.launch)
        out[f"products.{M6}.capacity.start"] = format_month(parse_month(m6.capacity.start) + shift)
    return out


def _m6_capacity(ls: LeverSet, lever: Lever, value: float) -> dict[str, Any]:
    return {f"products.{M6}.capacity.max": round(value)}


def _nev_tax(ls: LeverSet, lever: Lever, value: str) -> dict[str, Any]:
    if value == TAX_AS_FILE:
        return {}
    i = ls._targets["nev_tax"]
    share, cap, km = TAX_PRESETS[value]
    base = f"policies.nev_exemptions[{i}]"
    return {f"{base}.share": share, f"{base}.cap": cap, f"{base}.min_electric_range_km": km}


def _tariff(ls: LeverSet, lever: Lever, value: float) -> dict[str, Any]:
    i = int(lever.key.split(":")[1])
    return {f"policies.tariffs[{i}].rate": round(value / 100.0, 6)}


def _export_push(ls: LeverSet, lever: Lever, k: float) -> dict[str, Any]:
    events, stores = ls._targets["export_push"]
    out: dict[str, Any] = {}
    for i in events:
        e = ls.scenario.events[i]
        if e.count is not None:
            out[f"events[{i}].count"] = round(e.count * k)
        if e.add is not None:
            out[f"events[{i}].add"] = round(e.add * k)
    for i in stores:
        out[f"stores[{i}].count"] = round(ls.scenario.stores[i].count * k)
    return out


def list_price_before(scenario: Scenario, product: str, month: str, before_event: int) -> float:
    """A product's list price (RMB, before tariffs and discounts) just before event ``before_event``.

    The product's ``price``, changed by the price (and refresh) events dated before ``month``,
    or in ``month`` and listed before ``before_event``, in order.
    """
    price = next(p.price for p in scenario.products if p.name == product)
    when = parse_month(month)
    dated = sorted(
        (parse_month(e.month), i, e)
        for i, e in enumerate(scenario.events)
        if e.product == product and i != before_event
    )
    for m, i, e in dated:
        if m > when or (m == when and i > before_event):
            break
        if e.type in ("price", "refresh") and e.price is not None:
            price = e.price
        elif e.type == "price" and e.factor is not None:
            price *= e.factor
    return float(price)


def _scaled_event(scenario: Scenario, i: int, e: Event, d: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if e.type == "price" and e.price is not None and e.product is not None:
        before = list_price_before(scenario, e.product, e.month, i)
        out[f"events[{i}].price"] = round(max(1.0, before + d * (e.price - before)), 2)
    elif e.type in ("price", "capacity") and e.factor is not None:
        out[f"events[{i}].factor"] = round(max(0.0, 1.0 + d * (e.factor - 1.0)), 6)
    elif e.type == "discount" and e.add is not None:  # a change on top of the brand's own path: scaled as is
        out[f"events[{i}].add"] = round(min(1.0, max(-1.0, d * e.add)), 6)
    elif e.type == "discount" and e.discount is not None:
        brand = e.brand or (e.brands[0] if e.brands else None)
        start = next((b.pricing.discount for b in scenario.brands if b.name == brand), 0.0)
        out[f"events[{i}].discount"] = round(min(1.0, max(0.0, start + d * (e.discount - start))), 6)
    return out


def _depth(key: str) -> Any:
    def mapper(ls: LeverSet, lever: Lever, d: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in ls._targets[key]:
            out.update(_scaled_event(ls.scenario, i, ls.scenario.events[i], d))
        return out

    return mapper


_MAPPERS = {
    "m6_price": _m6_price,
    "m6_launch": _m6_launch,
    "m6_capacity": _m6_capacity,
    "nev_tax": _nev_tax,
    "tariff": _tariff,
    "export_push": _export_push,
    "price_war_depth": _depth("price_war_depth"),
    "shock_depth": _depth("shock_depth"),
}


# --------------------------------------------------------------------------- the command line


def format_value(value: Any) -> str:
    """A value as ``--set`` reads it back (YAML): whole numbers without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def set_options(overrides: Mapping[str, Any]) -> list[str]:
    """The ``--set 'path=value'`` options that give ``overrides`` on the command line."""
    return [f"--set '{path}={format_value(value)}'" for path, value in overrides.items()]


def command_line(scenario_file: str | Path, overrides: Mapping[str, Any], extra: Sequence[str] = ()) -> str:
    """The ``sim run`` command that runs a scenario with these overrides."""
    return " ".join(["sim run", str(scenario_file), *extra, *set_options(overrides)])
