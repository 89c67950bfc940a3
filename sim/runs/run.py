"""One run: a pure, picklable function from a scenario and a seed to tidy tables."""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.model import market
from sim.model.calendar import Calendar
from sim.model.market_model import MarketModel
from sim.model.observe import SALES_MEASURES, Measure
from sim.model.snapshot import State, from_state, load_state, release, reseed
from sim.scenario.schema import Scenario

#: Columns of the sales table that say which run, month, market, product and price segment a row is.
KEY_COLUMNS = ("run_id", "scenario", "replicate", "month", "market", "brand", "model", "segment", "powertrain")
#: Columns of the sales table, in order: the keys, then the measures the model declares
#: (:data:`sim.model.observe.SALES_MEASURES`).
SALES_COLUMNS = KEY_COLUMNS + tuple(m.column for m in SALES_MEASURES)

#: Columns of the runs table, in order.
RUNS_COLUMNS = (
    "run_id",
    "scenario",
    "replicate",
    "seed_entropy",
    "spawn_key",
    "status",
    "error",
    "seconds",
    "buyer_decisions",
    "scale",
)
#: Column added to the runs table when the scenario has an ``ensemble``: the member the run used.
MEMBER_COLUMN = "member"
#: Column added to the runs table when a run drew uncertainties (the scenario's ``uncertainty``
#: section or capacity ranges): its draws as JSON, with each brand's appeal drift at the end.
DRAWS_COLUMN = "draws"
#: Column added to the runs table of a forecast branched from assimilated particles: the particle it continues.
PARTICLE_COLUMN = "particle"
#: Spawn-key suffix of the sub-stream from which a run draws its ensemble member; the model's own
#: stream is untouched, so every member sees the same random numbers (common random numbers).
MEMBER_STREAM = 2**32 - 1


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs; pickles to a worker process.

    Attributes:
        run_id: row key of the run in the results.
        replicate: replicate number within its scenario.
        entropy: root seed of the batch.
        spawn_key: this run's position in the seed tree (``SeedSequence.spawn``).
        scenario: the resolved scenario.
        scale: real buyers per buyer agent (None: the scenario's).
        overrides: scenario values by path (for sweeps), applied to ``scenario`` in the worker,
            after the values of the run's ensemble member if the scenario has an ``ensemble``.
        point: the sweep's design point (None outside sweeps).
        check: assert the accounting invariants every month (a violation fails the run).
        kernel: the kernel of the monthly draws, ``"numba"`` or ``"numpy"`` (:mod:`sim.model.kernels`);
            a run repeats itself bit for bit only with the same kernel.
        start: a snapshot (:mod:`sim.model.snapshot`) the run continues from instead of starting at
            the scenario's first month: a forecast branched from an assimilated state. Its random
            streams are then replaced by the run's own (``reseed``), so replicates of one state differ.
        member: the ensemble member the run uses (None: drawn from its seed, :func:`ensemble_member`).
        particle: the assimilated particle a branched run continues (recorded in the runs table).
    """

    run_id: int
    replicate: int
    entropy: int
    spawn_key: tuple[int, ...]
    scenario: Scenario
    scale: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    point: int | None = None
    check: bool = False
    kernel: str = "numba"
    start: str | None = None
    member: int | None = None
    particle: int | None = None

    def seed_sequence(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key)


@dataclass
class RunOutput:
    """Tables of one run."""

    run: dict[str, Any]
    sales: pd.DataFrame


def make_specs(
    scenario: Scenario,
    replications: int,
    seed: int | None = None,
    scale: float | None = None,
    first_run_id: int = 0,
    *,
    overrides: dict[str, Any] | None = None,
    point: int | None = None,
    first_stream: int = 0,
    check: bool = False,
    kernel: str = "numba",
) -> list[RunSpec]:
    """One spec per replicate, seeds spawned from the root seed.

    Replicate ``r`` gets ``SeedSequence(seed).spawn(...)[first_stream + r]``, i.e. the
    seed identity ``(seed, spawn_key=(first_stream + r,))``, whatever the batch size,
    the chunking or the number of workers. Two scenarios (or two sweep points) run
    with the same root seed get the same streams: common random numbers, so their
    paired differences are meaningful. ``first_stream`` > 0 gives a block of fresh,
    independent streams instead (a sweep without common random numbers).

    Args:
        overrides: scenario values by path, applied in the worker (sweep points).
        point: the sweep's design point recorded with each run.
        first_stream: index of the first child seed used.
        check: assert the accounting invariants every month in each run.
        kernel: the kernel of the monthly draws in each run (:mod:`sim.model.kernels`).
    """
    root = np.random.SeedSequence(scenario.seed if seed is None else seed)
    entropy = int(root.entropy)  # type: ignore[arg-type]
    # Child r of root.spawn(n) is SeedSequence(entropy, spawn_key=(r,)); build it directly
    # so that a block of streams can start anywhere.
    return [
        RunSpec(
            run_id=first_run_id + r,
            replicate=r,
            entropy=entropy,
            spawn_key=(first_stream + r,),
            scenario=scenario,
            scale=scale,
            overrides=dict(overrides or {}),
            point=point,
            check=check,
            kernel=kernel,
        )
        for r in range(replications)
    ]


def ensemble_member(spec: RunSpec) -> int | None:
    """The ensemble member a run uses (None when its scenario has no ``ensemble``).

    ``assign: draw`` draws a member by weight from a sub-stream of the run's own seed
    (spawn key + :data:`MEMBER_STREAM`), ``assign: cycle`` takes replicate mod members:
    either way a function of the run's seed identity only, so ``sim rerun`` picks it again.
    """
    ens = spec.scenario.ensemble
    if ens is None:
        return None
    n = len(ens.members)
    if ens.assign == "cycle":
        return spec.replicate % n
    weights = np.array([m.weight for m in ens.members], float)
    ss = np.random.SeedSequence(spec.entropy, spawn_key=(*spec.spawn_key, MEMBER_STREAM))
    return int(np.random.Generator(np.random.PCG64(ss)).choice(n, p=weights / weights.sum()))


def member_overrides(scenario: Scenario, member: int | None) -> dict[str, Any]:
    """Scenario values by path of one ensemble member (and no ensemble: a run uses one parameter set)."""
    if member is None or scenario.ensemble is None:
        return {}
    return {**scenario.ensemble.members[member].set, "ensemble": None}


def run_overrides(spec: RunSpec, member: int | None) -> dict[str, Any]:
    """Scenario values by path a run applies before building its model: its ensemble member's
    values, then the spec's own overrides."""
    return {**member_overrides(spec.scenario, member), **spec.overrides}


def execute(spec: RunSpec) -> RunOutput:
    """Run one model to the scenario's end and return its tables.

    A scenario with an ``ensemble`` runs with one member's values (:func:`ensemble_member`),
    recorded in the runs row as ``member``. A failure is returned as data (status
    ``failed`` with the traceback), never raised.
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "scenario": spec.scenario.name,
        "replicate": spec.replicate,
        "seed_entropy": str(spec.entropy),
        "spawn_key": ",".join(map(str, spec.spawn_key)),
        "status": "ok",
        "error": "",
        "seconds": 0.0,
        "buyer_decisions": 0,
        "scale": float(spec.scale or spec.scenario.scale),
    }
    try:
        member = spec.member if spec.member is not None else ensemble_member(spec)
        if member is not None:
            row[MEMBER_COLUMN] = member
        if spec.particle is not None:
            row[PARTICLE_COLUMN] = spec.particle
        if spec.start is not None:
            model = from_state(spec.scenario, start_state(spec.start), kernel=spec.kernel, check=spec.check,
                               where=spec.start, **run_overrides(spec, member))  # fmt: skip
            reseed(model, spec.seed_sequence())
        else:
            rng = np.random.Generator(np.random.PCG64(spec.seed_sequence()))
            model = MarketModel(
                spec.scenario, rng=rng, scale=spec.scale, check=spec.check, kernel=spec.kernel,
                **run_overrides(spec, member),
            )  # fmt: skip
        row["scale"] = float(model.scale)  # a sweep may set the scenario's scale
        model.run()
        sales = sales_table(model, spec)
        row["buyer_decisions"] = int(model.total_decisions)
        if model.draws.any or model.drift.active:
            row[DRAWS_COLUMN] = json.dumps(draws_record(model), sort_keys=True)
        release(model)  # Mesa keeps every model alive otherwise: a worker would grow with every run
    except Exception:  # a failed run is data; the batch goes on
        row["status"] = "failed"
        row["error"] = traceback.format_exc(limit=20)
        sales = empty_sales()
    row["seconds"] = time.perf_counter() - t0
    return RunOutput(row, sales)


#: How many snapshot files' states :func:`start_state` keeps in memory.
KEEP_STATES = 4
#: The states :func:`start_state` read lately, the latest last, by the file's path, device, inode, size and time.
_states: dict[tuple[Any, ...], State] = {}


def start_state(path: str | Path) -> State:
    """The state in the snapshot file a run continues from (:attr:`RunSpec.start`), read once while the file stays as
    it is and kept for the next runs in this process.

    A forecast's replicates branch from each particle's file several times, one after the other (they are drawn in
    the particles' order), and a filter's particles from their parameter set's history: a state is read-only and
    :func:`~sim.model.snapshot.from_state` copies what a model changes, so they may all start from one. The last
    :data:`KEEP_STATES` files are kept; a file replaced or rewritten (another inode, size or time) is read again.
    """
    try:
        st = os.stat(path)
    except OSError:
        return load_state(path)  # which says what is wrong with it
    key = (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    state = _states.pop(key, None)
    _states[key] = state if state is not None else load_state(path)  # the latest last
    for old in list(_states)[:-KEEP_STATES]:
        del _states[old]
    return _states[key]


def draws_record(model: MarketModel) -> dict[str, Any]:
    """A run's uncertainty draws: the fixed ones, and each brand's appeal drift at the end (utils)."""
    out = model.draws.record()
    if model.drift.active:
        out["drift"] = {b: round(float(v), 6) for b, v in zip(model.brand_names, model.drift.brand, strict=True)}
    return out


def empty_sales() -> pd.DataFrame:
    return sales_frame({c: [] for c in SALES_COLUMNS})


#: Columns of the sales table that hold text.
STRING_COLUMNS = ("scenario", "month", "market", "brand", "model", "segment", "powertrain")


def sales_frame(columns: dict[str, Any]) -> pd.DataFrame:
    """Build the sales table with its fixed dtypes.

    Each column is converted on its own, before the frame is made: text through an array of Python
    strings (``object``; a run's tables pass them so, taken from the names, not made anew per row).
    """
    kinds = {"run_id": "int64", "replicate": "int64"}
    kinds.update({m.column: "int64" if m.kind == "count" else "float64" for m in SALES_MEASURES})
    out: dict[str, Any] = {}
    for c in SALES_COLUMNS:
        if c in STRING_COLUMNS:
            out[c] = pd.array(np.asarray(columns[c], dtype=object), dtype="string")
        else:
            out[c] = np.asarray(columns[c]).astype(kinds[c])
    return pd.DataFrame(out, columns=list(SALES_COLUMNS))


def sales_table(model: MarketModel, spec: RunSpec) -> pd.DataFrame:
    """The model's recorded months as a tidy table: one row per month, market, product offered and
    price segment its trims sell in (:func:`segment_rows`; one row for a product without trims)."""
    mv = model.datacollector.model_vars

    def months_of(name: str) -> np.ndarray:
        """A reporter's rows of the months simulated, by month index ``t`` (row 0 is the initial state)."""
        return np.stack(mv[name][1:])

    offered = months_of("offered")
    t_idx, p_idx, m_idx = np.nonzero(offered)
    trans = months_of("transaction_price")[t_idx, p_idx, m_idx]
    months = np.array(mv["month"][1:], dtype=object)
    row, seg, share, ratio = segment_rows(model.calendar, t_idx, p_idx, trans)
    t_idx, p_idx, m_idx = t_idx[row], p_idx[row], m_idx[row]

    def measure(m: Measure) -> np.ndarray:
        """The measure's values on the rows: whole units split by segment, prices scaled to the segment's
        trims, or the product's value."""
        values = months_of(m.reporter)
        if m.kind == "product":
            return values[t_idx, p_idx]  # type: ignore[no-any-return]
        if m.kind == "count":
            return split_counts(values[t_idx, p_idx, m_idx], row, share)
        return values[t_idx, p_idx, m_idx] * ratio  # type: ignore[no-any-return]

    cols = {
        "run_id": np.full(t_idx.size, spec.run_id),
        "scenario": np.full(t_idx.size, spec.scenario.name, dtype=object),
        "replicate": np.full(t_idx.size, spec.replicate),
        "month": months[t_idx],
        "market": _names(model.market_names)[m_idx],
        "brand": _names(model.brand_names)[model.product_brand[p_idx]],
        "model": _names(model.product_names)[p_idx],
        "segment": _names(model.segment_names)[seg],
        "powertrain": _names(model.powertrain)[p_idx],
        **{m.column: measure(m) for m in SALES_MEASURES},
    }
    return sales_frame(cols)


def _names(names: Any) -> np.ndarray:
    """Names as an array of Python strings (``object``), to be indexed by row."""
    return np.array([str(x) for x in names], dtype=object)


def segment_rows(
    calendar: Calendar, t_idx: np.ndarray, p_idx: np.ndarray, transaction: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How the rows of products offered (month ``t_idx``, product ``p_idx``, mix transaction price
    ``transaction``, RMB) split into rows by price segment.

    A trim's transaction price is the product's times its list price over the mix's (discounts,
    tariffs and VAT scale every trim alike). The trims whose transaction prices fall in one
    segment make one row, holding their summed share of the product's units; its prices are
    their share-weighted mean. A product without trims makes one row in the segment of its price.

    Returns:
        ``(row, segment, share, ratio)`` per output row, in order of input row, then segment index:
        the input row it comes from, its segment index, its share of that row's units, and its
        prices over the input row's.
    """
    rows = t_idx.size
    share = calendar.trim_share[p_idx]  # rows x K
    ratio = calendar.trim_price[t_idx, p_idx] / calendar.price[t_idx, p_idx][:, None]
    n_seg = calendar.segment_floor.size
    seg = market.segment_of((transaction[:, None] * ratio).ravel(), calendar.segment_floor).reshape(share.shape)
    r, k = np.nonzero(share > 0)
    groups, which = np.unique(r * n_seg + seg[r, k], return_inverse=True)
    weight = np.bincount(which, share[r, k], minlength=groups.size)
    mean_ratio = np.bincount(which, share[r, k] * ratio[r, k], minlength=groups.size) / weight
    row = groups // n_seg
    total = np.bincount(row, weight, minlength=rows)[row]  # shares sum to 1 within rounding
    return row, groups % n_seg, weight / total, mean_ratio


def split_counts(counts: np.ndarray, row: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Split whole ``counts`` (one per output row, repeated over the rows of one input row) by
    ``share``, in whole numbers that sum to the input row's count (largest remainder; ties go to
    the earlier row)."""
    counts = np.asarray(counts, np.int64)
    if row.size == 0:
        return counts
    exact = counts * share
    out = np.floor(exact).astype(np.int64)
    first = np.r_[True, row[1:] != row[:-1]]
    starts = np.flatnonzero(first)
    short = counts[starts] - np.add.reduceat(out, starts)  # per input row
    order = np.lexsort((-(exact - out), row))
    position = np.arange(row.size) - np.repeat(starts, np.diff(np.r_[starts, row.size]))
    gets = position < np.repeat(short, np.diff(np.r_[starts, row.size]))
    out[order[gets]] += 1
    return out
