"""Snapshots (sim/model/snapshot.py): a model saved at the end of any month and restored goes on exactly as
the run that never stopped; a snapshot of another scenario or code version, or a damaged file, is refused."""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import shutil
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, tiny_scenario
from test_draws import UNCERTAIN as DRAWS

from sim.model import snapshot
from sim.model.code_identity import CODE_PACKAGES, code_identity, code_version, sources_hash
from sim.model.market_model import MarketModel
from sim.model.snapshot import (
    State,
    copy_model,
    from_state,
    load_state,
    model_state,
    reseed,
    restore_snapshot,
    save_snapshot,
)
from sim.runs import run
from sim.runs.run import RunSpec, draws_record, ensemble_member, execute, make_specs, run_overrides, sales_table
from sim.scenario.load import load_scenario
from sim.scenario.yamlio import InputError

#: Every kind of uncertainty draw from the fourth month (as tests/test_draws.py draws them), and a store
#: network that an event creates in 2024-03 and grows over four months (a change still under way at some
#: snapshots), and a discount change in force over six months.
UNCERTAIN = {
    **DRAWS,
    "events": [
        {"month": "2024-06", "type": "price", "product": "B1", "price": 380000},
        {"month": "2024-07", "type": "stores", "brand": "A", "count": 500},
        {"month": "2024-03", "type": "stores", "brand": "B", "channel": "partner", "add": 200, "over_months": 4},
        # a discount change on top of the brand's rule, in force from 2024-05 to 2024-10 (state a snapshot carries)
        {"month": "2024-05", "type": "discount", "brand": "B", "add": 0.05, "until": "2024-10", "max_discount": 0.3},
    ],
}
#: Only the drift of appeal: no fixed draws, so a model's seed gives nothing but its streams.
DRIFT_ONLY = {"uncertainty.start": "2024-03", "uncertainty.brand_drift": 0.1, "uncertainty.product_drift": 0.05}
SCENARIOS = {"tiny": {}, "uncertain": UNCERTAIN}
#: Months at which the tiny market is saved: before the first, after the first, while the new network
#: still grows, after the drift began, after the last.
MONTHS = (0, 1, 3, 7, 12)


def _spec(name: str, kernel: str) -> RunSpec:
    return make_specs(tiny_scenario(SCENARIOS[name]), 1, seed=5, kernel=kernel)[0]


def _build(spec: RunSpec) -> MarketModel:
    """The model of a run, built as :func:`sim.runs.run.execute` builds it (with its ensemble member's values)."""
    rng = np.random.Generator(np.random.PCG64(spec.seed_sequence()))
    return MarketModel(spec.scenario, rng=rng, scale=spec.scale, kernel=spec.kernel, **_member(spec))


def _member(spec: RunSpec) -> dict[str, Any]:
    """The scenario values of the run's ensemble member (none without an ensemble), as ``execute`` applies them."""
    return run_overrides(spec, ensemble_member(spec))


def _steps(model: MarketModel, n: int) -> MarketModel:
    for _ in range(n):
        model.step()
    return model


@functools.cache
def _uninterrupted(name: str, kernel: str) -> tuple[pd.DataFrame, State]:
    """The run's tables from :func:`execute` (the real pipeline) and the model's state at the end."""
    spec = _spec(name, kernel)
    out = execute(spec)
    assert out.run["status"] == "ok", out.run["error"]
    model = _build(spec)
    model.run()
    return out.sales, model_state(model)


def assert_same_state(a: State, b: State) -> None:
    """Two states equal in every value (arrays in dtype, shape and bits)."""
    assert a.meta == b.meta
    assert a.arrays.keys() == b.arrays.keys()
    for name, x in a.arrays.items():
        y = b.arrays[name]
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_restore_and_continue_equals_the_uninterrupted_run(name, kernel, tmp_path):
    sales, end = _uninterrupted(name, kernel)
    spec = _spec(name, kernel)
    for t in MONTHS:
        path = save_snapshot(_steps(_build(spec), t), tmp_path / f"m{t}.npz")
        model = restore_snapshot(path, spec.scenario)
        assert model.t == t and model.kernel.name == kernel
        model.run()
        pd.testing.assert_frame_equal(sales_table(model, spec), sales)
        assert_same_state(model_state(model), end)
    if name == "uncertain":  # the runs table's record of the draws and the drift follows too
        assert draws_record(model) == json.loads(execute(spec).run["draws"])


def test_a_snapshot_holds_what_it_says(tmp_path):
    spec = _spec("uncertain", "numba")
    model = _steps(_build(spec), 3)
    state = model_state(model)
    meta = state.meta
    assert meta["scenario_hash"] == spec.scenario.hash() and meta["kernel"] == "numba"
    assert meta["month"] == "2024-03" and meta["scale"] == 10.0 and meta["code_version"] == code_version("numba")
    assert [d["channel"] for d in meta["dealers"]] == ["direct", "direct", "partner"]  # the event's network
    assert meta["dealers"][2]["left"] == 3  # its growth still under way
    assert len(meta["generators"]["markets"]) == 1 and len(meta["generators"]["drift_brands"]) == 2
    # The records: the initial state (row 0, labelled with the month before the start), then one row a month.
    assert state.arrays["history.units"].shape == (4, 3, 1)
    assert meta["history"]["month"] == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert state.arrays["pool.id"].size == len(model.pool) > 0
    assert all(not a.flags.writeable for a in state.arrays.values())
    assert model_state(_build(spec)).month is None
    # The file: an .npz of plain arrays (no pickle), with the JSON document as bytes.
    path = save_snapshot(model, tmp_path / "s.npz")
    assert not (tmp_path / "s.npz.partial").exists()
    with zipfile.ZipFile(path) as z:
        assert all(n.endswith(".npy") for n in z.namelist())
    with np.load(path, allow_pickle=False) as z:
        assert z["meta"].dtype == np.uint8 and not any(z[n].dtype.hasobject for n in z.files)
        assert json.loads(z["meta"].tobytes()) == json.loads(json.dumps(meta))
    assert_same_state(load_state(path), state)
    assert_same_state(load_state(save_snapshot(model, tmp_path / "c.npz", compress=True)), state)


def test_every_attribute_of_a_model_is_saved_or_rebuilt():
    # A new attribute of MarketModel must join the snapshot (or be declared rebuilt): this test says so.
    known = set(snapshot.ARRAYS + snapshot.MONTH_ARRAYS + snapshot.SCALARS + snapshot.PARTS + snapshot.REBUILT)
    model = MarketModel(tiny_scenario(UNCERTAIN))
    assert set(vars(model)) <= known, set(vars(model)) - known
    model.step()
    assert set(vars(model)) <= known, set(vars(model)) - known


#: The shipped scenarios at a coarse scale: the baseline, and four markets (stores opened by events) with
#: uncertainty draws.
SHIPPED = {
    "baseline": ("baseline.yaml", {}),
    "export": ("tariffs_export.yaml", {"uncertainty.start": "2025-01", "uncertainty.brand_drift": 0.1, "uncertainty.market_level": 0.1}),
}


@pytest.mark.parametrize(("name", "kernel"), [("baseline", "numba"), ("baseline", "numpy"), ("export", "numba")])
def test_restore_on_shipped_scenarios_at_a_coarse_scale(name, kernel, tmp_path):
    file, overrides = SHIPPED[name]
    cfg = load_scenario(ROOT / "scenarios" / file, overrides)
    spec = make_specs(cfg, 1, seed=3, scale=500.0, kernel=kernel)[0]
    model = _steps(_build(spec), 43)
    assert model.month_label == "2025-06" and model.n_markets == (4 if name == "export" else 1)
    restored = restore_snapshot(save_snapshot(model, tmp_path / "b.npz"), spec.scenario, **_member(spec))
    restored.run()
    pd.testing.assert_frame_equal(sales_table(restored, spec), execute(spec).sales)


# ---------------------------------------------------------------------------------------- in memory


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_copies_go_on_as_the_original_and_apart_from_it(kernel):
    spec = _spec("uncertain", kernel)
    sales, end = _uninterrupted("uncertain", kernel)
    model = _steps(_build(spec), 5)
    before = model_state(model)
    twin = copy_model(model)
    twin.run()
    assert_same_state(model_state(model), before)  # running the copy left the original as it was
    pd.testing.assert_frame_equal(sales_table(twin, spec), sales)
    many = [from_state(spec.scenario, before) for _ in range(2)]  # one state starts any number of models
    for m in [model, *many]:
        m.run()
        assert_same_state(model_state(m), end)


def test_reseeded_copies_are_independent_futures_of_one_past(tmp_path):
    spec = _spec("uncertain", "numba")
    sales, _ = _uninterrupted("uncertain", "numba")
    model = _steps(_build(spec), 5)
    children = np.random.SeedSequence(99).spawn(2)
    copies = [copy_model(model) for _ in range(3)]
    for m, child in zip(copies, [children[0], children[0], children[1]], strict=True):
        reseed(m, child)
    # Every generator was replaced: none is where the original's is.
    old, new = model_state(model).meta["generators"], model_state(copies[0]).meta["generators"]
    assert all(old[k] != new[k] for k in old if k != "python") and old["python"] != new["python"]
    # A reseeded model saved and restored goes on as itself (its fixed draws, no longer its seed's, are kept).
    restored = restore_snapshot(save_snapshot(copies[0], tmp_path / "r.npz"), spec.scenario)
    for m in [*copies, restored]:
        m.run()
    tables = [sales_table(m, spec) for m in [*copies, restored]]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], tables[3])
    assert not tables[0]["units"].equals(tables[2]["units"])
    assert not tables[0]["units"].equals(sales["units"])
    first = tables[0]["month"] <= "2024-05"  # the past they share
    pd.testing.assert_frame_equal(tables[0][first], sales[first])
    assert copies[0].draws == model.draws  # the fixed draws stay


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_reseeding_gives_the_streams_of_a_model_built_from_that_seed(kernel):
    cfg = tiny_scenario(DRIFT_ONLY)
    seed = np.random.SeedSequence(123, spawn_key=(4,))
    made = MarketModel(cfg, rng=np.random.Generator(np.random.PCG64(seed)), kernel=kernel)
    other = MarketModel(cfg, seed=8, kernel=kernel)
    reseed(other, seed)  # seed has spawned the markets' streams of `made`: only its identity counts
    assert seed.n_children_spawned == 1
    assert_same_state(model_state(other), model_state(made))
    for m in (made, other):
        m.run()
    assert_same_state(model_state(other), model_state(made))


def test_a_released_model_is_freed():
    model = copy_model(_steps(MarketModel(tiny_scenario({})), 2))
    ref = weakref.ref(model)
    snapshot.release(model)
    del model
    gc.collect()
    assert ref() is None


# ----------------------------------------------------------------------------------- shared states


def _frozen_copy(state: State) -> State:
    """A deep copy of a state, to tell later whether the state itself changed."""
    return State(json.loads(json.dumps(state.meta)), {k: a.copy() for k, a in state.arrays.items()})


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_replicates_branched_from_one_shared_state_give_the_tables_they_give_alone(kernel, tmp_path):
    spec = _spec("uncertain", kernel)
    path = save_snapshot(_steps(_build(spec), 5), tmp_path / "p.npz")
    branched = [dataclasses.replace(spec, run_id=r, replicate=r, spawn_key=(r,), start=str(path)) for r in range(3)]
    alone = []
    for s in branched:  # each from the file, read anew
        run._states.clear()
        alone.append(execute(s))
    run._states.clear()
    # One after the other from the state read once, the first again after the others ran from the same state.
    together = [execute(s) for s in [*branched, branched[0]]]
    assert len(run._states) == 1
    for a, b in zip([*alone, alone[0]], together, strict=True):
        assert b.run["status"] == "ok", b.run["error"]
        assert a.run["draws"] == b.run["draws"]
        pd.testing.assert_frame_equal(a.sales, b.sales)
    assert not alone[0].sales["units"].equals(alone[1].sales["units"])  # replicates of one state differ
    # The shared state is as the file has it: the models built from it changed none of it.
    assert_same_state(run.start_state(path), _frozen_copy(load_state(path)))
    assert all(not a.flags.writeable for a in run.start_state(path).arrays.values())


def test_a_shared_state_follows_its_file_and_only_the_last_few_are_kept(tmp_path):
    spec = _spec("tiny", "numpy")
    model = _build(spec)
    path = save_snapshot(_steps(model, 2), tmp_path / "p.npz")
    assert run.start_state(path) is run.start_state(path)
    assert run.start_state(path).month == "2024-02"
    save_snapshot(_steps(model, 1), path)  # the file replaced: read again
    assert run.start_state(path).month == "2024-03"
    for i in range(run.KEEP_STATES + 1):
        run.start_state(save_snapshot(model, tmp_path / f"q{i}.npz"))
    assert len(run._states) == run.KEEP_STATES
    with pytest.raises(InputError, match="no such snapshot file"):
        run.start_state(tmp_path / "missing.npz")
    # A run that cannot start from its file fails naming the file.
    failed = execute(dataclasses.replace(spec, start=str(tmp_path / "missing.npz")))
    assert failed.run["status"] == "failed" and f"{tmp_path / 'missing.npz'}: no such snapshot file" in failed.run["error"]
    other = dataclasses.replace(spec, scenario=tiny_scenario({"products.A1.price": 260000}), start=str(path))
    assert f"{path}: scenario_hash:" in execute(other).run["error"]


# ------------------------------------------------------------------------------------------ refusals


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    model = _steps(MarketModel(tiny_scenario({}), kernel="numpy"), 4)
    return save_snapshot(model, tmp_path_factory.mktemp("snap") / "tiny.npz")


def _rewrite(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of a snapshot with fields of its document changed (as another code or format would write them)."""
    with np.load(src, allow_pickle=False) as z:
        members = {n: z[n] for n in z.files}
    meta = json.loads(members["meta"].tobytes())
    meta.update(changes)
    members["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **members)
    return dst


def test_another_scenario_is_refused_naming_both_hashes(saved):
    other = tiny_scenario({"products.A1.price": 260000})
    with pytest.raises(InputError) as e:
        restore_snapshot(saved, other)
    msg = str(e.value)
    assert msg.startswith(f"{saved}: scenario_hash:")
    assert tiny_scenario({}).hash() in msg and other.hash() in msg
    # Overrides that lead to the saved scenario are its scenario.
    assert restore_snapshot(saved, other, **{"products.A1.price": 250000}).t == 4


def test_another_code_version_is_refused_naming_both(saved, tmp_path):
    code = {**code_identity("numpy"), "sources": "0" * 16}
    path = _rewrite(saved, tmp_path / "old.npz", code=code, code_version="f" * 16)
    with pytest.raises(InputError) as e:
        restore_snapshot(path, tiny_scenario({}))
    msg = str(e.value)
    assert msg.startswith(f"{path}: code_version:") and "f" * 16 in msg and code_version("numpy") in msg
    assert "sources 0000000000000000 here " + code_identity("numpy")["sources"] in msg
    numpy_version = _rewrite(saved, tmp_path / "np.npz", code={**code_identity("numpy"), "numpy": "1.0"})
    with pytest.raises(InputError, match="numpy 1.0 here"):
        restore_snapshot(numpy_version, tiny_scenario({}))


def test_the_code_version_follows_the_model_sources(tmp_path):
    sim = ROOT / "sim"
    copies = [shutil.copytree(sim / p, tmp_path / p) for p in CODE_PACKAGES]
    same = sources_hash([Path(c) for c in copies])
    assert same == code_identity("numba")["sources"]
    with open(tmp_path / "model" / "market.py", "a") as f:
        f.write("# an edit\n")
    assert sources_hash([Path(c) for c in copies]) != same
    assert "numba" not in code_identity("numpy")


def test_a_damaged_or_foreign_file_is_refused_clearly(saved, tmp_path):
    data = saved.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "flipped.npz": data[: len(data) // 2] + bytes(b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 64]) + data[len(data) // 2 + 64 :],
        "empty.npz": b"",
        "text.npz": b"not a snapshot\n",
    }  # fmt: skip
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError, match=r"not a (readable|sim) snapshot") as e:
            restore_snapshot(tmp_path / name, tiny_scenario({}))
        assert str(e.value).startswith(f"{tmp_path / name}: "), str(e.value)
    np.save(tmp_path / "array.npy", np.arange(3))
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    for name in ("array.npy", "other.npz"):
        with pytest.raises(InputError, match="not a sim snapshot"):
            load_state(tmp_path / name)
    with pytest.raises(InputError, match="no such snapshot file"):
        load_state(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="format: snapshot format 99; this code reads format 1"):
        load_state(_rewrite(saved, tmp_path / "future.npz", format=99))
    with pytest.raises(InputError, match="scale: missing or malformed"):
        load_state(_rewrite(saved, tmp_path / "noscale.npz", scale="big"))
    with pytest.raises(InputError, match="does not fit scenario 'tiny'"):
        restore_snapshot(_rewrite(saved, tmp_path / "brands.npz", brands=[]), tiny_scenario({}))
    with pytest.raises(InputError, match="seed: malformed in the snapshot"):
        restore_snapshot(_rewrite(saved, tmp_path / "seed.npz", seed={"entropy": 1}), tiny_scenario({}))
