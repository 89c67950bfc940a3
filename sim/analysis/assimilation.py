"""Data assimilation: a particle filter that starts a forecast from what is known.

The scenario's history is simulated as ``N`` particles, each a model with one of the fit's parameter
sets (the scenario's ``ensemble``) and its own random streams, hence its own drift of appeal and its
own draws of what the forecast does not know (:mod:`sim.model.draws`). From the first uncertain
month (``uncertainty.start``: the month after the data the fit saw) to the origin, the particles are
stepped month by month; at the end of each month with reported figures
(:mod:`sim.analysis.observations`) each particle is weighted by the likelihood of those figures
given its simulated deliveries (sequential importance sampling). When the effective sample size
``ESS = 1 / sum(w**2)`` falls below half the particles, they are resampled (systematic resampling):
heavy particles are copied, light ones dropped, each copy goes on with streams of its own and a
small jitter of its appeal drift and offset (rejuvenation, :data:`JITTER`, :data:`LEVEL_JITTER`), so that
copies do not stay alike. The ESS of every month is recorded.

The likelihood is tempered when one month's figures would leave fewer than :data:`MIN_ESS` of the
particles effective: the month's log-likelihood is multiplied by the largest ``beta`` in (0, 1] that
keeps that many (found by bisection; ``beta`` is recorded). A model of some 80 appeal offsets
filtered with a few hundred particles otherwise collapses onto one or two particles, whose offsets
of the brands and products no figure constrains are then one random draw: in the backtest that
raised the error of the forecasts and shrank their bands (``docs/ODD.md``). Tempering reads the
figures as if their errors were ``1 / sqrt(beta)`` times wider than the observation model says, the
standard remedy for a misspecified observation model (annealed importance sampling).

The months before the first uncertain one are the same for every particle of a parameter set but
for the agents' sampling noise, so that history is simulated once per parameter set and the
particles branch from it (:func:`sim.model.snapshot.reseed` gives each its streams and
:func:`sim.model.snapshot.redraw` its draws). At the origin the particles' states are saved
(``particles/*.npz``) and the forecast replicates branch from them (``sim forecast``), so the history
is simulated once per particle, not once per replicate.

Random numbers: the histories of the parameter sets, the particles, the copies made at each
resampling and the forecast replicates draw from streams derived from the root seed and their own
keys (``SeedSequence(seed, spawn_key=(STREAM, ...))``), so the same seed gives the same filter and
the same forecast whatever the number of workers, and two scenarios with the same history share
every draw.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.analysis.observations import Observation
from sim.model.draws import first_uncertain_month
from sim.model.market_model import MarketModel
from sim.model.snapshot import copy_model, from_state, model_state, redraw, release, reseed, write_state
from sim.runs.run import member_overrides, start_state
from sim.scenario.months import format_month
from sim.scenario.schema import Scenario

#: Spawn-key heads of the filter's streams: the parameter sets' histories, the particles, the copies
#: made at resampling, the forecast replicates (the run's own model stream is spawn key ``(r,)``).
HISTORY_STREAM = 2**32 - 3
PARTICLE_STREAM = 2**32 - 4
RESAMPLE_STREAM = 2**32 - 5
#: Standard deviation of the jitter given to a resampled copy's drift, as a share of a month's drift step.
JITTER = 0.5
#: ... and as a share of the offset's standard deviation at the first uncertain month (``uncertainty.*_level``).
LEVEL_JITTER = 0.1
#: The share of the particles a month's figures may leave effective before its likelihood is tempered.
MIN_ESS = 0.25


def tempering(log_w: np.ndarray, increment: np.ndarray, floor: float) -> float:
    """The largest ``beta`` in (0, 1] for which ``log_w + beta * increment`` keeps an ESS of ``floor``.

    Returns 1 when the whole increment keeps it; the ESS falls as ``beta`` grows, so bisection finds it.
    """
    def after(beta: float) -> float:
        x = log_w + beta * increment
        return ess(normalised(np.where(np.isfinite(x), x, -np.inf)))

    if after(1.0) >= floor:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if after(mid) >= floor else (lo, mid)
    return lo


@dataclass(frozen=True)
class Advance:
    """One particle's months to simulate, in a worker (picklable).

    Attributes:
        scenario: the scenario (with its ensemble); member: the parameter set the particle uses.
        source: the snapshot it continues from (None: a new model from the scenario's first month).
        seed: ``(entropy, spawn_key)`` of its streams: a new model's, or the streams a continued
            particle takes from now on (None: it keeps its own).
        redraw: draw its fixed draws anew from ``seed`` (a particle branching from its parameter
            set's history, before the first uncertain month).
        jitter: standard deviation of the noise added to its drift before it goes on (utils).
        until: the month index it is simulated to (inclusive).
        out: where its state is saved.
        scale, kernel: the runs' buyers per agent and choice kernel.
    """

    scenario: Scenario
    member: int | None
    source: str | None
    seed: tuple[int, tuple[int, ...]] | None
    redraw: bool
    jitter: tuple[float, float]
    until: int
    out: str
    scale: float | None
    kernel: str


def prepare(task: Advance, model: MarketModel | None = None) -> MarketModel:
    """The particle's model, ready to go on: built (no source), restored from its source's state (a file, or
    ``model`` given in memory: a copy of it is taken when the task gives new streams), reseeded, with its
    draws drawn anew and its drift jittered as the task says."""
    overrides = member_overrides(task.scenario, task.member)
    seq = None if task.seed is None else np.random.SeedSequence(task.seed[0], spawn_key=task.seed[1])
    if model is None and task.source is None:
        assert seq is not None
        return MarketModel(task.scenario, rng=np.random.Generator(np.random.PCG64(seq)), scale=task.scale,
                           kernel=task.kernel, **overrides)  # fmt: skip
    if model is None:
        # start_state: a parameter set's particles all start from its history's file, copies made at resampling from
        # their parent's.
        model = from_state(task.scenario, start_state(str(task.source)), kernel=task.kernel, **overrides)
    elif seq is not None:
        model = copy_model(model)
    if seq is not None:
        reseed(model, seq)
        if task.redraw:
            redraw(model)
    if task.jitter != (0.0, 0.0):
        assert seq is not None  # a jittered copy has streams of its own
        noise = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, 1))))
        model.drift.brand = model.drift.brand + task.jitter[0] * noise.standard_normal(model.n_brands)
        model.drift.product = model.drift.product + task.jitter[1] * noise.standard_normal(model.n_products)
    return model


def simulate_to(model: MarketModel, until: int) -> np.ndarray:
    """Step ``model`` to month index ``until``; its China deliveries per month and product over those months."""
    china = model.market_names.index("CN") if "CN" in model.market_names else 0
    rows = []
    while model.running and model.month_index < until:
        model.step()
        rows.append(model.month_units[:, china].copy())
    return np.array(rows).reshape(len(rows), -1)


def advance(task: Advance) -> np.ndarray:
    """Simulate one particle to ``task.until`` and save its state; return its China deliveries per month
    and product over the months simulated (months x products)."""
    model = prepare(task)
    rows = simulate_to(model, task.until)
    write_state(model_state(model), task.out)
    release(model)
    return rows


def advance_all(tasks: list[Advance]) -> list[np.ndarray]:
    """Several particles in one worker (a chunk)."""
    return [advance(t) for t in tasks]


def systematic_resample(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` draws by systematic resampling of normalised ``weights`` (Kitagawa 1996).

    One uniform offset, then ``count`` evenly spaced points through the cumulative weights: each
    particle is copied ``floor(count * w)`` or one more times, with the least variance of any
    unbiased scheme.
    """
    w = np.asarray(weights, float)
    w = w / w.sum()
    points = (rng.random() + np.arange(count)) / count
    cum = np.cumsum(w)
    cum[-1] = 1.0
    return np.searchsorted(cum, points, side="right").clip(0, len(w) - 1)


def ess(weights: np.ndarray) -> float:
    """Effective sample size of normalised weights, ``1 / sum(w**2)``."""
    w = np.asarray(weights, float)
    w = w / w.sum()
    return float(1.0 / np.sum(w**2))


def normalised(log_w: np.ndarray) -> np.ndarray:
    """Weights from log-weights (normalised to sum to 1)."""
    w = np.exp(log_w - np.max(log_w))
    return w / w.sum()


@dataclass
class Particle:
    """A particle of the filter: where its state is, its parameter set, and its deliveries so far.

    Attributes:
        state: the snapshot of its state at the current month.
        member: its parameter set (None: the scenario has no ensemble).
        units: its China deliveries per month and product from the scenario's first month (months x P).
        parent: the particle it was copied from at the last resampling (itself otherwise).
    """

    state: str
    member: int | None
    units: np.ndarray
    parent: int


@dataclass
class FilterResult:
    """What the filter leaves at the origin.

    Attributes:
        particles: the particles at the origin (their states saved under ``folder``).
        log_weights: their log-weights after every figure (not resampled at the origin).
        log_weights_before: their log-weights before the figures of the last month assimilated.
        ess: the effective sample size at the end of each month from the first uncertain one.
        resampled: the months at which the particles were resampled.
        observations: the figures assimilated, each with the particles' weighted mean and 5-95% of
            its simulated value before it was assimilated.
        origin: the last month simulated (month index). first: the first uncertain month.
        tempered: the months whose likelihood was tempered, with its power ``beta`` (:data:`MIN_ESS`).
    """

    particles: list[Particle]
    log_weights: np.ndarray
    log_weights_before: np.ndarray
    ess: dict[str, float]
    resampled: list[str]
    observations: list[dict[str, Any]]
    origin: int
    first: int
    notes: list[str] = field(default_factory=list)
    tempered: dict[str, float] = field(default_factory=dict)

    @property
    def weights(self) -> np.ndarray:
        return normalised(self.log_weights)


class ParticleFilter:
    """Sequential importance resampling of a scenario's particles against reported figures.

    Args:
        scenario: the scenario (its ``ensemble`` gives the parameter sets, its ``uncertainty`` the drift).
        observations: the figures to assimilate (:func:`sim.analysis.observations.observations`).
        particles: how many.
        seed: the root seed.
        origin: the last month simulated (month index).
        folder: where the particles' states are kept.
        scale, kernel: the runs' buyers per agent and choice kernel.
        executor: runs the particles' months (``None``: in this process).
        slots: the executor's workers (to split the particles in chunks).
    """

    def __init__(
        self,
        scenario: Scenario,
        observations: Sequence[Observation],
        *,
        particles: int,
        seed: int,
        origin: int,
        folder: str | Path,
        scale: float | None = None,
        kernel: str = "numba",
        executor: Executor | None = None,
        slots: int = 1,
        log: Any = sys.stderr,
    ):
        self.scenario, self.obs = scenario, list(observations)
        self.n, self.seed, self.origin = particles, int(seed), origin
        self.folder = Path(folder)
        self.scale, self.kernel = scale, kernel
        self.executor, self.slots, self.log = executor, max(slots, 1), log
        self.first = max(first_uncertain_month(scenario), scenario.start_index)
        ens = scenario.ensemble
        self.members = len(ens.members) if ens is not None else 0
        u = scenario.uncertainty
        self.jitter = (float(np.hypot(JITTER * u.brand_drift, LEVEL_JITTER * u.brand_level)),
                       float(np.hypot(JITTER * u.product_drift, LEVEL_JITTER * u.product_level)))
        self.live: dict[str, MarketModel] = {}  # in-process: the particles' models by the key of their state

    def say(self, text: str) -> None:
        print(text, file=self.log, flush=True)

    # ---------------------------------------------------------------------- running particles

    def _map(self, tasks: list[Advance]) -> list[np.ndarray]:
        if self.executor is None:
            return self._map_live(tasks)
        size = max(1, -(-len(tasks) // (2 * self.slots)))
        chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
        out: list[np.ndarray] = []
        for part in self.executor.map(advance_all, chunks):
            out.extend(part)
        return out

    def _map_live(self, tasks: list[Advance]) -> list[np.ndarray]:
        """The tasks in this process, the particles' models kept in memory from one month to the next (their
        states are written only at the origin): a task continues the model its source names, or a copy of it
        when it gives the particle new streams (copies are taken before any model moves on)."""
        models: dict[int, MarketModel] = {}
        for i, t in sorted(enumerate(tasks), key=lambda it: it[1].seed is None):
            models[i] = prepare(t, self.live.get(t.source) if t.source else None)
        rows = [simulate_to(models[i], t.until) for i, t in enumerate(tasks)]
        kept = {t.out: models[i] for i, t in enumerate(tasks)}
        for key, model in self.live.items():
            if key not in kept and all(model is not m for m in kept.values()):
                release(model)
        self.live = kept
        return rows

    def save_live(self, particles: list[Particle]) -> None:
        """Write the in-memory particles' states (at the origin) to their files."""
        for p in particles:
            model = self.live.get(p.state)
            if model is not None:
                Path(p.state).parent.mkdir(parents=True, exist_ok=True)
                write_state(model_state(model), p.state)
        for model in self.live.values():
            release(model)
        self.live = {}

    def _task(self, source: str | None, member: int | None, key: tuple[int, ...] | None, until: int, out: Path,
              *, redraw_fixed: bool = False, jitter: bool = False) -> Advance:
        return Advance(
            self.scenario, member, source, None if key is None else (self.seed, key), redraw_fixed,
            self.jitter if jitter else (0.0, 0.0), until, str(out), self.scale, self.kernel,
        )  # fmt: skip

    def histories(self) -> list[Particle]:
        """Each parameter set's history up to the month before the first uncertain one, then the particles."""
        start = self.scenario.start_index
        sets = max(self.members, 1)
        member = (lambda i: i % self.members) if self.members else (lambda i: None)
        if self.first > start:
            self.say(f"simulating the history of {sets} parameter set(s) to {format_month(self.first - 1)} ...")
            tasks = [self._task(None, member(m), (HISTORY_STREAM, m), self.first - 1, self.folder / f"history-{m:04d}.npz")
                     for m in range(sets)]  # fmt: skip
            units = self._map(tasks)
            sources = [(t.out, u) for t, u in zip(tasks, units, strict=True)]
        else:  # no history before the first uncertain month: the particles start at the scenario's start
            sources = [("", np.zeros((0, len(self.scenario.products))))] * sets
        return [Particle(state=sources[i % sets][0], member=member(i), units=sources[i % sets][1], parent=i)
                for i in range(self.n)]  # fmt: skip

    def run(self) -> FilterResult:
        """The filter from the first uncertain month to the origin (see the module docstring)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        particles = self.histories()
        months = sorted({o.end for o in self.obs if self.first <= o.end <= self.origin} | {self.origin})
        log_w = np.zeros(self.n)
        before = log_w.copy()
        ess_by_month: dict[str, float] = {}
        resampled: list[str] = []
        tempered: dict[str, float] = {}
        seen: list[dict[str, Any]] = []
        branched = False  # have the particles left their parameter set's history yet?
        copies: set[int] = set()  # particles that are copies made at the last resampling
        current = self.first - 1
        for k, month in enumerate(months):
            tasks = []
            for i, p in enumerate(particles):
                out = self.folder / f"step-{k:03d}" / f"p{i:05d}.npz"
                out.parent.mkdir(parents=True, exist_ok=True)
                if not branched:  # from the parameter set's history, with streams and draws of its own
                    key = (PARTICLE_STREAM, i)
                    tasks.append(self._task(p.state or None, p.member, key, month, out, redraw_fixed=bool(p.state)))
                elif i in copies:  # a copy made at resampling: streams of its own, its drift jittered
                    tasks.append(self._task(p.state, p.member, (RESAMPLE_STREAM, k, i), month, out, jitter=True))
                else:
                    tasks.append(self._task(p.state, p.member, None, month, out))
            self.say(f"assimilating: {self.n} particles simulated to {format_month(month)} ...")
            new_units = self._map(tasks)
            for p, t, u in zip(particles, tasks, new_units, strict=True):
                p.units = np.vstack([p.units, u]) if len(u) else p.units
                p.state = t.out
            for m in range(current + 1, month + 1):
                ess_by_month[format_month(m)] = ess(normalised(log_w))
            current, branched, copies = month, True, set()
            here = [o for o in self.obs if o.end == month]
            if here:
                before = log_w.copy()
                stacked = np.stack([p.units for p in particles])  # particles x months x products
                increment = np.zeros(self.n)
                w = normalised(log_w)
                for o in here:
                    values = o.simulated(self.entity_units(stacked, o), self.scenario.start_index)
                    seen.append(self._describe(o, values, w))
                    increment = increment + o.log_likelihood(values)
                if not np.isfinite(log_w + increment).any():
                    raise ValueError(f"{format_month(month)}: no particle is consistent with the figures (all weights 0)")
                beta = tempering(log_w, increment, MIN_ESS * self.n)
                if beta < 1.0:
                    tempered[format_month(month)] = round(beta, 4)
                log_w = log_w + beta * np.where(np.isfinite(increment), increment, -np.inf)
                if not np.isfinite(log_w).any():
                    raise ValueError(f"{format_month(month)}: no particle is consistent with the figures (all weights 0)")
                log_w = np.where(np.isfinite(log_w), log_w, -np.inf)
                ess_by_month[format_month(month)] = ess(normalised(log_w))
                self.say(f"  {format_month(month)}: {len(here)} figure(s); effective sample size "
                         f"{ess_by_month[format_month(month)]:.1f} of {self.n}"
                         + (f" (likelihood tempered by {beta:.3f})" if beta < 1.0 else ""))  # fmt: skip
            if month < self.origin and ess_by_month[format_month(month)] < self.n / 2:
                idx = systematic_resample(normalised(log_w), self.n, self._resample_rng(k))
                particles, copies = self._copies(particles, idx)
                log_w = np.zeros(self.n)
                resampled.append(format_month(month))
                self.say(f"  resampled at {format_month(month)}: {len(set(idx.tolist()))} distinct particles kept")
        if self.executor is None:
            self.save_live(particles)
        return FilterResult(particles, log_w, before, ess_by_month, resampled, seen, self.origin, self.first,
                            tempered=tempered)

    def _resample_rng(self, k: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(RESAMPLE_STREAM, k, 2**31))))

    @staticmethod
    def _copies(particles: list[Particle], idx: np.ndarray) -> tuple[list[Particle], set[int]]:
        """The resampled particles: the first draw of a particle is itself, later draws are copies."""
        out, copies, taken = [], set(), set()
        for i, j in enumerate(idx.tolist()):
            src = particles[j]
            out.append(Particle(src.state, src.member, src.units, j))
            if j in taken:
                copies.add(i)
            taken.add(j)
        return out, copies

    def entity_units(self, stacked: np.ndarray, o: Observation) -> np.ndarray:
        """Each particle's monthly deliveries of the observation's brand or product (particles x months)."""
        products = [p.name for p in self.scenario.products]
        if o.level == "model":
            return stacked[:, :, products.index(o.entity)]
        mine = [j for j, p in enumerate(self.scenario.products) if p.brand == o.entity]
        return stacked[:, :, mine].sum(axis=2)

    def _describe(self, o: Observation, values: np.ndarray, w: np.ndarray) -> dict[str, Any]:
        order = np.argsort(values)
        cum = np.cumsum(w[order])
        q = [float(values[order][np.searchsorted(cum, x).clip(0, len(values) - 1)]) for x in (0.05, 0.5, 0.95)]
        return {"figure": o.key, "lines": list(o.lines), "month": format_month(o.end), "reported": o.value,
                "qualifier": o.qualifier, "sd": round(o.sd, 4), "simulated_mean": float(np.sum(w * values)),
                "simulated_p5": q[0], "simulated_median": q[1], "simulated_p95": q[2]}  # fmt: skip
