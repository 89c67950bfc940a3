"""Snapshots: a model's whole state at the end of a month, in memory or in a file, and a model again.

A forecast that branches from the state at its origin, or a particle filter that weighs copies of one
model month by month, needs the model's state as data. :func:`model_state` takes it (a :class:`State`),
:func:`from_state` builds a model that goes on from it, :func:`copy_model` does both, and :func:`reseed`
gives a copy random streams of its own. :func:`save_snapshot` writes a state to a file and
:func:`restore_snapshot` reads it back. Run on, a restored model gives tables identical, bit for bit,
to those of the run it was taken from, had it never stopped (with the same kernel).

**What a state holds.** Everything a month changes: the buyers in the market (the pool's columns), the
waiting and returning buyers, order books, stock, recent deliveries, waits, awareness, owners, last
orders, the month's records (prices, orders, deliveries, cancellations; absent before the first month),
the brands' discounts and floors, the store networks (counts, spread changes under way, networks that
events created), the buyer ids and decisions so far, the month, every random generator (the model's, one
per market, Mesa's ``random``, each drift stream) with the seed identity the model was built from, the
appeal drift, the run's fixed draws, and the months recorded by Mesa's DataCollector (so a restored
run's tables cover every month). What a model derives from its scenario, the fixed draws and its
kernel's name (the calendar, names, sizes, the kernel) is rebuilt, not saved; the numba kernel's
buffers hold nothing but the pool and scratch space (:meth:`~sim.model.kernels.Kernel.adopt`).

**The file** is a numpy ``.npz`` archive (uncompressed, or with ``compress=True`` deflated), read with
``allow_pickle=False``: no pickle anywhere. Its arrays are named ``pool.<column>``, ``model.<name>``,
``drift.brand``, ``drift.product`` and ``history.<reporter>`` (one row a month recorded), and its member
``meta`` is a JSON document stored as a uint8 array (UTF-8): format and kind, the scenario's name and
hash, the code version, the kernel, the scale, the last month simulated, the seed identity, the
scalars, the generators' states (``Generator.bit_generator.state``: plain ints), the fixed draws, the
brands, the store networks and the records' scalar series (months, decisions, arrivals). One file, so
that it is written and replaced whole (through a temporary file). Floats in JSON round-trip exactly.

**Code version.** A snapshot continues only under the code that saved it: the numbers of the months
after it come from the model's code and the libraries that draw and compute them. The code version is a
hash (SHA-256, 16 hex digits) of :func:`~sim.model.code_identity.code_identity`: a hash of the sources of ``sim/scenario`` and
``sim/model`` (the import contract keeps the model from importing anything else of ``sim``, so no other
file changes a month; editing a report leaves snapshots valid, editing the model does not, committed or
not: a git commit would miss uncommitted edits), and the versions of numpy (its generators and
arithmetic), Mesa (the DataCollector) and, for the numba kernel, numba (the compiled code). Restoring
under another code version, or with a scenario of another hash, is refused with an
:class:`~sim.scenario.yamlio.InputError` naming both.
"""

from __future__ import annotations

import json
import os
import platform
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mesa
import numpy as np
from numpy.typing import NDArray

from sim.model import draws
from sim.model.agents import BuyerPool, Dealer
from sim.model.calendar import shared_calendar
from sim.model.code_identity import code_identity, code_version
from sim.model.market_model import MarketModel
from sim.scenario.months import format_month
from sim.scenario.schema import Scenario, Stores
from sim.scenario.yamlio import InputError

#: What a snapshot file says it is, and the version of its layout.
KIND, FORMAT = "sim-snapshot", 1
#: The archive member holding the JSON document.
META = "meta"
#: The model's arrays of fixed shape, saved as they are, and the month's records (absent before the first
#: month): declared by the model, beside the code that sets them.
ARRAYS, MONTH_ARRAYS = MarketModel.ARRAYS, MarketModel.MONTH_ARRAYS
#: The model's scalars (``month_arrivals`` and ``month_decisions``: after the first month only).
SCALARS = ("t", "month_index", "running", "steps", "next_buyer_id", "total_decisions", "month_arrivals", "month_decisions")
#: The rest of a model's state, saved in parts: the pool, the generators, the drift and draws, the
#: agents, the records, Mesa's record of its first seed, and the seed identity (``meta["seed"]``).
PARTS = (
    "pool", "rng", "market_rngs", "random", "drift", "draws", "calendar", "brand_agents", "dealers", "datacollector",
    "_seed", "_rng", "seed_entropy", "spawn_key",
)  # fmt: skip
#: What a model builds from its scenario, scale, kernel's name and options and no month changes: rebuilt.
REBUILT = (
    "config", "check", "scale", "market_names", "brand_names", "product_names", "segment_names", "n_months",
    "n_products", "n_markets", "n_brands", "product_brand", "powertrain", "start_index", "_tier_k", "kernel",
    "_user_step", "step", "_agents", "_agents_by_type", "_all_agents",
)  # fmt: skip
#: Bit generators a snapshot can hold (their states are plain ints).
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64")


@dataclass(frozen=True)
class State:
    """A model's whole state at the end of a month, as plain data (what a snapshot file holds).

    Made by :func:`model_state` or :func:`load_state`; one state can start any number of models
    (:func:`from_state` copies what a model changes). A dict and arrays: it can go to worker processes.

    Attributes:
        meta: JSON-safe values: identity (scenario hash, code version, kernel, scale, month), scalars,
            generator states, fixed draws, brands, store networks, the records' scalar series.
        arrays: read-only numpy arrays by name: ``pool.<column>``, ``model.<name>``, ``drift.brand``,
            ``drift.product``, ``history.<reporter>`` (months x ...).
    """

    meta: dict[str, Any]
    arrays: dict[str, NDArray[Any]]

    @property
    def month(self) -> str | None:
        """The last month simulated (``YYYY-MM``), None before the first."""
        return self.meta["month"]  # type: ignore[no-any-return]

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays."""
        return sum(a.nbytes for a in self.arrays.values())


_last_hashed: list[tuple[Scenario, str]] = []


def _scenario_hash(cfg: Scenario) -> str:
    """``cfg.hash()``, remembered for the last scenario hashed (a scenario is frozen; copies of one model share it)."""
    if not (_last_hashed and _last_hashed[0][0] is cfg):
        _last_hashed[:] = [(cfg, cfg.hash())]
    return _last_hashed[0][1]


# ------------------------------------------------------------------- the state


def model_state(model: MarketModel) -> State:
    """The model's whole state now (at the end of its last month, or before its first), copied."""
    arrays = {f"pool.{name}": np.array(getattr(model.pool, name)) for name in BuyerPool.ARRAYS}
    for name in ARRAYS + MONTH_ARRAYS:
        if hasattr(model, name):
            arrays[f"model.{name}"] = np.array(getattr(model, name))
    arrays["drift.brand"], arrays["drift.product"] = np.array(model.drift.brand), np.array(model.drift.product)
    series: dict[str, list[Any]] = {}
    for name, rows in model.datacollector.model_vars.items():
        if rows and isinstance(rows[0], np.ndarray):
            arrays[f"history.{name}"] = np.stack(rows)
        else:
            series[name] = [_plain(v) for v in rows]
    for a in arrays.values():
        a.flags.writeable = False
    seed = model.rng.bit_generator.seed_seq
    assert isinstance(seed, np.random.SeedSequence)  # MarketModel asserts it at construction
    kernel = model.kernel.name
    meta = {
        "kind": KIND,
        "format": FORMAT,
        "scenario": model.config.name,
        "scenario_hash": _scenario_hash(model.config),
        "code_version": code_version(kernel),
        "code": code_identity(kernel),
        "kernel": kernel,
        "scale": model.scale,
        "month": format_month(model.month_index) if model.t > 0 else None,
        "seed": {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key), "pool_size": seed.pool_size},
        "model": {name: _plain(getattr(model, name)) for name in SCALARS if hasattr(model, name)},
        "generators": {
            "model": model.rng.bit_generator.state,
            "markets": [g.bit_generator.state for g in model.market_rngs],
            "python": _plain(model.random.getstate()),
            "drift_brands": [g.bit_generator.state for g in model.drift.brand_streams],
            "drift_products": [g.bit_generator.state for g in model.drift.product_streams],
        },
        "mesa": {"seed": _plain(model._seed), "rng": model._rng},
        "draws": {
            "start": model.draws.start,
            "market": {k: list(v) for k, v in model.draws.market.items()},
            "capacity": dict(model.draws.capacity),
            "appeal": dict(model.draws.appeal),
        },
        "brands": [b.state() for b in model.brand_agents],
        "dealers": [d.state() for d in model.dealers],
        "history": series,
        "python": platform.python_version(),
    }
    return State(meta, arrays)


def _plain(value: Any) -> Any:
    """``value`` as JSON-safe data: numpy scalars as Python ones, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def from_state(
    scenario: Scenario | str | Path, state: State, *, kernel: str | None = None, check: bool = False,
    where: str = "the state", **overrides: Any,
) -> MarketModel:  # fmt: skip
    """A model that goes on from ``state``.

    Args:
        scenario: the scenario the state's model ran (with any overrides applied: ``model.config``), or
            the scenario before ``overrides``; its hash must be the state's.
        state: from :func:`model_state` or :func:`load_state`; left unchanged.
        kernel: the kernel of the months to come (default: the state's). Another kernel draws the same
            law from other streams: the months go on validly but not as the saved run's would have.
        check: assert the accounting invariants after every month.
        where: what the errors name (the file the state was read from).
        overrides: scenario values by path, as :class:`~sim.model.market_model.MarketModel` takes them.

    Raises:
        InputError: another code version, a scenario of another hash, or a state that does not fit.
    """
    return _build(scenario, state, kernel, check, overrides, where)


def copy_model(model: MarketModel) -> MarketModel:
    """An independent copy of ``model`` at its month, with the same random streams (:func:`reseed` gives it its own).

    The copy shares the model's calendar (read-only arrays of the same scenario and draws) instead of
    compiling its own.
    """
    return _build(model.config, model_state(model), model.kernel.name, model.check, {}, "the state",
                  compiled=(model.calendar, model.draws))  # fmt: skip


def reseed(model: MarketModel, seed: np.random.SeedSequence) -> None:
    """Replace every random generator of ``model`` by ones derived from ``seed``, as a model built from it has them.

    The model's stream becomes ``Generator(PCG64(seed))``; Mesa's ``random`` is seeded from its first
    draw, the markets' streams are spawned from it in market order, and each drift stream is derived
    from ``seed`` and the brand's or product's name (:func:`sim.model.draws.item_stream`): the streams
    of ``MarketModel(scenario, rng=Generator(PCG64(seed)))``. The fixed draws (market level, capacities,
    new products' appeal) are part of the state and stay. Copies of one model at month ``t`` reseeded
    from ``SeedSequence(entropy).spawn(n)`` go on as ``n`` independent futures of the same past.

    Only the seed's identity counts (entropy, spawn key, pool size), not what it spawned before: the
    streams are those of a model built from a fresh ``SeedSequence`` of that identity, and ``seed``
    itself is left as it is, so the same seed gives the same streams whenever it is used.
    """
    seed = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    rng = np.random.Generator(np.random.PCG64(seed))
    first = rng.bit_generator.state
    # As mesa.Model.__init__ seeds its stdlib generator when given a numpy Generator.
    python_seed = int(rng.integers(np.iinfo(np.int32).max))
    model.rng = rng
    model.random.seed(python_seed)  # in place: Mesa's agent sets hold this object
    model._seed, model._rng = python_seed, first
    model.market_rngs = list(rng.spawn(model.n_markets))
    model.drift.reseed(seed)
    model.seed_entropy, model.spawn_key = int(seed.entropy), tuple(int(k) for k in seed.spawn_key)  # type: ignore[arg-type]


def redraw(model: MarketModel) -> None:
    """Draw the model's fixed draws (market level, capacities, new products' appeal) anew from its seed.

    For a copy of a model that has not reached its first uncertain month yet (:func:`reseed` keeps
    the draws, which are part of the state): the draws only act from that month on, so a copy
    branched before it may take draws of its own, as a model built from its new seed would.

    Raises:
        ValueError: the model is past its first uncertain month (its past already used the draws).
    """
    if model.t > model.draws.start:
        raise ValueError(f"{model.month_label}: the draws act from month {model.draws.start} of the run; too late to redraw")
    seed = model.rng.bit_generator.seed_seq
    assert isinstance(seed, np.random.SeedSequence)
    model.draws = draws.draw(model.config, seed)
    model.calendar = draws.apply(shared_calendar(model.config), model.draws, model.config)


def release(model: MarketModel) -> None:
    """Let Python free ``model`` once nothing else refers to it; call it when done with a model (a copy).

    Mesa 3.3 keeps every model alive in ``mesa.Agent._ids`` (the counter of its agents' ids, a class
    attribute keyed by model), so that many copies would never be freed. After this call the model
    must not create agents any more.
    """
    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, dict):
        ids.pop(model, None)


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "scenario_hash": str, "code_version": str, "code": dict, "kernel": str, "scale": (int, float), "seed": dict,
    "model": dict, "generators": dict, "mesa": dict, "draws": dict, "brands": list, "dealers": list, "history": dict,
}  # fmt: skip


def _check_meta(meta: Any, where: str) -> None:
    """A state's document is one of this format, with every field of its type."""
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise InputError(f"{where}: not a sim snapshot")
    if meta.get("format") != FORMAT:
        raise InputError(f"{where}: format: snapshot format {meta.get('format')!r}; this code reads format {FORMAT}")
    for key, kind in _REQUIRED.items():
        if not isinstance(meta.get(key), kind):
            raise InputError(f"{where}: {key}: missing or malformed in the snapshot")


def _check_code(meta: dict[str, Any], where: str) -> None:
    """Refuse a state saved by another code version (:func:`code_identity`)."""
    kernel = meta["kernel"]
    now = code_identity(kernel)
    if meta["code"] != now or meta["code_version"] != code_version(kernel):
        saved = meta["code"]
        diff = "; ".join(
            f"{k} {saved.get(k)} here {now.get(k)}" for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)
        )
        raise InputError(
            f"{where}: code_version: saved by code version {meta['code_version']}, this is code version "
            f"{code_version(kernel)} ({diff or 'the version differs'}): a snapshot goes on only under the code that saved it"
        )


def _build(
    scenario: Scenario | str | Path, state: State, kernel: str | None, check: bool, overrides: dict[str, Any], where: str,
    compiled: tuple[Any, draws.Draws] | None = None,
) -> MarketModel:
    """A model built from ``scenario`` with the state's seed identity, then given the state (:func:`from_state`)."""
    meta = state.meta
    _check_meta(meta, where)
    _check_code(meta, where)
    try:
        s = meta["seed"]
        seed = np.random.SeedSequence(s["entropy"], spawn_key=tuple(s["spawn_key"]), pool_size=s["pool_size"])
        bit = meta["generators"]["model"]["bit_generator"]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where}: seed: malformed in the snapshot ({type(e).__name__}: {e})") from e
    if bit not in BIT_GENERATORS:
        raise InputError(f"{where}: generators.model: bit generator {bit!r} is not one of {', '.join(BIT_GENERATORS)}")
    rng = np.random.Generator(getattr(np.random, bit)(seed))
    model = MarketModel(scenario, rng=rng, scale=meta["scale"], check=check, kernel=kernel or meta["kernel"],
                        _compiled=compiled, **overrides)  # fmt: skip
    now = _scenario_hash(model.config)
    if now != meta["scenario_hash"]:
        raise InputError(
            f"{where}: scenario_hash: saved under scenario {meta.get('scenario')!r} of hash {meta['scenario_hash']}, "
            f"given scenario {model.config.name!r} of hash {now}: restore it with the scenario it was saved from"
        )
    try:
        _load(model, state)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise InputError(f"{where}: does not fit scenario {model.config.name!r} ({type(e).__name__}: {e})") from e
    return model


def _load(model: MarketModel, state: State) -> None:
    """Give a freshly built ``model`` the state (what it changes copied, the records' rows shared read-only)."""
    meta, arrays = state.meta, state.arrays
    d = meta["draws"]
    saved = draws.Draws(
        int(d["start"]),
        {k: (float(a), float(b)) for k, (a, b) in d["market"].items()},
        {k: float(v) for k, v in d["capacity"].items()},
        {k: float(v) for k, v in d["appeal"].items()},
    )
    if saved != model.draws:  # a reseeded model's seed no longer gives its draws
        model.draws = saved
        model.calendar = draws.apply(shared_calendar(model.config), saved, model.config)
    pool = BuyerPool(**{name: np.array(arrays[f"pool.{name}"]) for name in BuyerPool.ARRAYS})
    for name in BuyerPool.ARRAYS:
        like, got = getattr(BuyerPool(), name), getattr(pool, name)
        if got.dtype != like.dtype or got.shape[1:] != like.shape[1:] or got.shape[0] != len(pool):
            raise ValueError(f"pool.{name}: {got.dtype} {got.shape} for {len(pool)} buyers")
    model.kernel.adopt(pool)
    model.pool = pool
    for name in ARRAYS:
        _put(model, name, arrays[f"model.{name}"], getattr(model, name).shape)
    for name in MONTH_ARRAYS:
        if f"model.{name}" in arrays:
            _put(model, name, arrays[f"model.{name}"], None)
    drift = model.drift
    drift.brand = _fit(arrays["drift.brand"], drift.brand.shape, "drift.brand")
    drift.product = _fit(arrays["drift.product"], drift.product.shape, "drift.product")
    for name, value in meta["model"].items():
        if name not in SCALARS:
            raise ValueError(f"model.{name}: not a scalar of the model")
        setattr(model, name, value)
    model._seed, model._rng = meta["mesa"]["seed"], meta["mesa"]["rng"]
    gens = meta["generators"]
    model.rng.bit_generator.state = gens["model"]
    version, internal, gauss = gens["python"]
    model.random.setstate((version, tuple(internal), gauss))
    pairs = [
        *zip(model.market_rngs, gens["markets"], strict=True),
        *zip(drift.brand_streams, gens["drift_brands"], strict=True),
        *zip(drift.product_streams, gens["drift_products"], strict=True),
    ]
    for g, s in pairs:
        g.bit_generator.state = s
    for b, s in zip(model.brand_agents, meta["brands"], strict=True):
        b.set_state(s)
    if len(meta["dealers"]) < len(model.dealers):
        raise ValueError(f"dealers: {len(meta['dealers'])} store networks, the scenario has {len(model.dealers)}")
    for i, s in enumerate(meta["dealers"]):
        if i == len(model.dealers):  # a network an event created
            names = {"brand": model.brand_names[s["brand"]], "market": model.market_names[s["market"]]}
            model.dealers.append(Dealer(model, Stores(**names, channel=s["channel"]), s["brand"], s["market"]))
        model.dealers[i].set_state(s)
    history = model.datacollector.model_vars
    for name in history:
        rows = list(arrays[f"history.{name}"]) if f"history.{name}" in arrays else list(meta["history"][name])
        if len(rows) != model.t + 1:  # row 0: the state at construction, then one row a month
            raise ValueError(f"history.{name}: {len(rows) - 1} months recorded at month t = {model.t}")
        history[name] = rows


def _fit(value: NDArray[Any], shape: tuple[int, ...] | None, name: str) -> NDArray[Any]:
    """A writeable copy of ``value``, of ``shape`` if one is given."""
    if shape is not None and value.shape != shape:
        raise ValueError(f"{name}: shape {value.shape}, the model's is {shape}")
    return np.array(value)


def _put(model: MarketModel, name: str, value: NDArray[Any], shape: tuple[int, ...] | None) -> None:
    setattr(model, name, _fit(value, shape, f"model.{name}"))


# ------------------------------------------------------------------- the file


def save_snapshot(model: MarketModel, path: str | Path, *, compress: bool = False) -> Path:
    """Write the model's whole state (at the end of its last month) to ``path`` (an ``.npz`` archive).

    Args:
        compress: deflate the arrays (smaller, slower to write and read).

    Returns:
        The path written (replaced whole: written to a temporary file first).
    """
    return write_state(model_state(model), path, compress=compress)


def write_state(state: State, path: str | Path, *, compress: bool = False) -> Path:
    """Write ``state`` to ``path`` in the snapshot format (see the module's docstring)."""
    path = Path(path)
    for name, a in state.arrays.items():
        if a.dtype.hasobject:  # numpy would pickle it
            raise ValueError(f"{name}: an array of Python objects cannot go in a snapshot")
    try:
        document = json.dumps(state.meta, sort_keys=True).encode("utf-8")
    except TypeError as e:  # e.g. a bit generator whose state holds arrays (MT19937)
        raise ValueError(f"the state is not plain data ({e}); generators must be one of {', '.join(BIT_GENERATORS)}") from e
    members = {META: np.frombuffer(document, np.uint8), **state.arrays}
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        if compress:
            np.savez_compressed(f, allow_pickle=False, **members)
        else:
            np.savez(f, allow_pickle=False, **members)
    os.replace(partial, path)
    return path


def load_state(path: str | Path) -> State:
    """The state in a snapshot file (checked for its format; the code version is checked on restoring).

    Raises:
        InputError: no such file, or a file that is not a snapshot, truncated or corrupt.
    """
    where = str(path)
    try:
        with open(path, "rb") as f:  # opened here: np.load leaves a file it opened open when it is no archive
            archive = np.load(f, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise InputError(f"{where}: not a sim snapshot (a .npy array, not an .npz archive)")
            with archive:
                if META not in archive.files:
                    raise InputError(f"{where}: not a sim snapshot (no {META!r} member)")
                meta = json.loads(archive[META].tobytes().decode("utf-8"))
                arrays = {name: archive[name] for name in archive.files if name != META}
    except FileNotFoundError:
        raise InputError(f"{where}: no such snapshot file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError) as e:
        raise InputError(f"{where}: not a readable snapshot, truncated or corrupt ({type(e).__name__}: {e})") from None
    _check_meta(meta, where)
    for a in arrays.values():
        a.flags.writeable = False
    return State(meta, arrays)


def restore_snapshot(
    path: str | Path, scenario: Scenario | str | Path, *, kernel: str | None = None, check: bool = False, **overrides: Any
) -> MarketModel:
    """The model saved in ``path`` by :func:`save_snapshot`, ready to go on with its next month.

    Args:
        path: the snapshot file.
        scenario: the scenario the saved model ran (``model.config``), or the scenario before
            ``overrides``; its hash must be the snapshot's.
        kernel, check, overrides: as :func:`from_state`.

    Raises:
        InputError: an unreadable file, another code version or a scenario of another hash (naming both).
    """
    return _build(scenario, load_state(path), kernel, check, overrides, str(path))
