"""Sweeps: designs, validation with file:line messages, runs per point, resume, rerun."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, ROOT, TINY
from pandas.testing import assert_frame_equal

from sim.cli import main
from sim.runs import store
from sim.runs.sweep import load_sweep
from sim.scenario.months import parse_month
from sim.scenario.yamlio import InputError

SWEEP = DATA / "sweep_tiny.yaml"


def write(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    """A sweep file next to a copy of tiny.yaml (``base: tiny.yaml``)."""
    (tmp_path / "tiny.yaml").write_text(TINY.read_text())
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


# --------------------------------------------------------------------- designs


def test_grid_is_every_combination():
    sw = load_sweep(SWEEP)
    assert len(sw.points) == 2 * 3 and sw.runs == 12
    d = sw.design_table()
    assert list(d.columns) == ["point", "param:products.A1.price", "param:products.A2.launch"]
    assert list(d["param:products.A2.launch"]) == ["2024-02", "2024-03", "2024-04"] * 2
    assert list(d["param:products.A1.price"]) == [230000] * 3 + [250000] * 3
    assert d.drop(columns="point").drop_duplicates().shape[0] == 6


def test_lhs_points_are_in_bounds_and_stratified(tmp_path):
    path = write(tmp_path, """
        base: tiny.yaml
        design: lhs
        samples: 40
        seed: 3
        parameters:
          - {path: buyers.price_sensitivity, low: 0.5, high: 1.5}
          - {path: products.A2.launch, type: month, low: 2024-01, high: 2024-04}
          - path: stores[brand=A].count
            type: int
            low: 100
            high: 400
    """)
    sw = load_sweep(path)
    d = sw.design_table()
    assert len(d) == 40
    a = d["param:buyers.price_sensitivity"]
    assert a.between(0.5, 1.5).all() and a.dtype == "float64"
    months = d["param:products.A2.launch"].map(parse_month)
    assert months.between(parse_month("2024-01"), parse_month("2024-04")).all()
    assert set(months) == set(range(parse_month("2024-01"), parse_month("2024-04") + 1))
    assert d["param:stores[brand=A].count"].between(100, 400).all() and d["param:stores[brand=A].count"].dtype == "int64"
    # Latin hypercube: each of the 40 strata of every parameter holds exactly one point.
    for c in [c for c in d.columns if c.startswith("u:")]:
        assert sorted(np.floor(d[c] * 40).astype(int)) == list(range(40))
    # The design is seeded: the same file gives the same points.
    assert_frame_equal(load_sweep(path).design_table(), d)


def test_sobol_count_and_power_of_two(tmp_path):
    body = """
        base: tiny.yaml
        design: sobol
        samples: {n}
        parameters:
          - {{path: buyers.price_sensitivity, low: 0.5, high: 1.5}}
          - {{path: buyers.outside_value, low: 0.0, high: 2.0}}
    """
    sw = load_sweep(write(tmp_path, body.format(n=16)))
    assert len(sw.points) == 16 and sw.unit is not None and sw.unit.shape == (16, 2)
    assert ((sw.unit >= 0) & (sw.unit < 1)).all()
    with pytest.raises(InputError) as err:
        load_sweep(write(tmp_path, body.format(n=12)))
    assert str(err.value) == f"{tmp_path / 's.yaml'}:4: samples: must be a power of 2 for a Sobol design, got 12"


@pytest.mark.skipif(importlib.util.find_spec("SALib") is None, reason="SALib is not installed (pip install -e '.[sweeps]')")
def test_morris_shape_and_levels(tmp_path):
    sw = load_sweep(write(tmp_path, """
        base: tiny.yaml
        design: morris
        trajectories: 5
        levels: 4
        parameters:
          - {path: buyers.price_sensitivity, low: 0.5, high: 1.5}
          - {path: buyers.outside_value, low: 0.0, high: 2.0}
          - {path: products.A1.price, low: 200000, high: 300000}
    """))
    assert sw.unit is not None and sw.unit.shape == (5 * (3 + 1), 3)
    assert set(np.round(sw.unit.ravel(), 9)) <= {0.0, round(1 / 3, 9), round(2 / 3, 9), 1.0}
    # Consecutive points of a trajectory differ in exactly one parameter.
    for t in range(5):
        block = sw.unit[t * 4 : (t + 1) * 4]
        assert all((np.diff(block, axis=0) != 0).sum(axis=1) == 1)
    assert sw.manifest()["design"]["salib_problem"]["num_vars"] == 3


def test_list_design(tmp_path):
    sw = load_sweep(write(tmp_path, """
        base: tiny.yaml
        design: list
        points:
          - {products.A2.launch: 2024-03, products.A2.delivery_start: 2024-04}
          - {products.A2.launch: 2024-06, products.A2.delivery_start: 2024-08}
    """))
    assert sw.points == [
        {"products.A2.launch": "2024-03", "products.A2.delivery_start": "2024-04"},
        {"products.A2.launch": "2024-06", "products.A2.delivery_start": "2024-08"},
    ]
    assert [p.type for p in sw.parameters] == ["month", "month"]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("base: tiny.yaml\ndesign: grid\nreplicatons: 2\nparameters: [{path: a, values: [1]}]\n",
         "s.yaml:3: replicatons: unknown key (did you mean 'replications'?)"),
        ("base: tiny.yaml\ndesign: grid\nparameters:\n  - {path: buyers.price_sensitivity, valus: [1]}\n",
         "s.yaml:4: parameters[0].valus: unknown key (did you mean 'values'?)"),
        ("base: tiny.yaml\ndesign: cube\nparameters: []\n",
         "s.yaml:2: design: Input should be 'grid', 'list', 'lhs', 'sobol' or 'morris', got 'cube'"),
        ("base: tiny.yaml\ndesign: lhs\nparameters:\n  - {path: buyers.price_sensitivity, low: 1, high: 2}\n",
         "s.yaml:2: samples: design 'lhs' needs 'samples'"),
        ("base: tiny.yaml\ndesign: grid\nparameters:\n  - {path: buyers.price_sensitivity, low: 2, high: 1, steps: 3}\n",
         "s.yaml:4: parameters[0].high: low (2) must be below high (1)"),
        ("base: nowhere.yaml\ndesign: grid\nparameters: []\n",
         "s.yaml:1: base: base scenario 'nowhere.yaml' does not exist"),
        ("base: tiny.yaml\ndesign: grid\nsamples: 4\nparameters:\n  - {path: buyers.price_sensitivity, values: [1.0]}\n",
         "s.yaml:3: samples: not used by design 'grid'"),
    ],
)
def test_sweep_file_errors_name_file_line_and_field(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(InputError) as err:
        load_sweep(path)
    assert expected in str(err.value)
    assert str(err.value).startswith(str(tmp_path))


def test_a_bad_point_is_an_error_before_any_run(tmp_path, capsys):
    path = write(tmp_path, """
        base: tiny.yaml
        design: grid
        parameters:
          - {path: products.A1.price, values: [250000, -5]}
          - {path: products.B9.price, values: [1.0]}
    """)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    # A path that names nothing is found once, at its own line, before any point is built.
    assert f"{path}:6: parameters[1].path: products.B9.price: no item named 'B9'" in err
    assert not out.exists()
    path = write(tmp_path, """
        base: tiny.yaml
        design: grid
        parameters:
          - {path: products.A1.price, values: [250000, -5]}
    """)
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "point 1 (products.A1.price=-5): products[0].price: Input should be greater than 0, got -5" in err
    assert "point 0" not in err and not out.exists()


# ------------------------------------------------------------------------ runs


def test_sweep_runs_every_point_with_its_parameters(tmp_path):
    out = tmp_path / "o"
    assert main(["sweep", str(SWEEP), "--out", str(out), "--workers", "2", "-q"]) == 0
    res = store.load_results(out)
    sw = load_sweep(SWEEP)
    assert res.design is not None
    assert_frame_equal(res.design, store.read_design(out))
    assert len(res.runs) == 12 and (res.runs["status"] == "ok").all()
    assert list(res.runs["point"]) == [p for p in range(6) for _ in range(2)]
    merged = res.runs.merge(res.design, on="point", suffixes=("", "_design"))
    for c in ("param:products.A1.price", "param:products.A2.launch"):
        assert (merged[c] == merged[f"{c}_design"]).all()
    # Parameters took effect: A1's list price in the sales table is the point's.
    a1 = res.sales[res.sales["model"] == "A1"].merge(res.runs[["run_id", "param:products.A1.price"]], on="run_id")
    assert (a1["list_price"] == a1["param:products.A1.price"]).all()
    first_a2 = res.sales[res.sales["model"] == "A2"].groupby("run_id")["month"].min()
    assert (first_a2.values == res.runs.set_index("run_id").loc[first_a2.index, "param:products.A2.launch"].values).all()
    # Common random numbers: replicate r has the same seed at every point; replicates differ.
    assert (res.runs.groupby("replicate")["spawn_key"].nunique() == 1).all()
    assert res.runs.groupby("point")["spawn_key"].nunique().eq(2).all()
    m = res.manifest
    assert m["kind"] == "sweep" and m["design"]["points"] == 6 and m["request"]["design_hash"] == sw.design_hash()
    # Bit for bit: one run of a sweep again, alone.
    assert main(["rerun", str(out), "9"]) == 0


def test_without_common_random_numbers_all_seeds_differ(tmp_path):
    path = write(tmp_path, SWEEP.read_text().replace("base: tiny.yaml", "base: tiny.yaml\ncommon_random_numbers: false"))
    specs = load_sweep(path).specs()
    assert len({s.spawn_key for s in specs}) == len(specs) == 12


def test_sweep_resume_and_refusal(tmp_path):
    out = tmp_path / "o"
    assert main(["sweep", str(SWEEP), "--out", str(out), "--workers", "1", "--chunk-size", "3", "-q"]) == 0
    before = store.load_results(out)
    # Lose the last chunk (as a kill would), then resume.
    for table in ("runs", "sales"):
        (out / table / "part-00000009.parquet").unlink()
    assert main(["sweep", str(SWEEP), "--out", str(out), "--workers", "1", "--resume", "-q"]) == 0
    after = store.load_results(out)
    assert_frame_equal(before.sales, after.sales)
    assert_frame_equal(before.runs.drop(columns="seconds"), after.runs.drop(columns="seconds"))
    # Another design in the same folder is refused, and the stored design is left alone.
    other = write(tmp_path, SWEEP.read_text().replace("230000", "240000"), "other.yaml")
    assert main(["sweep", str(other), "--out", str(out), "--workers", "1", "--resume", "-q"]) == 2
    assert_frame_equal(store.read_design(out), before.design)


def test_sweep_dry_run(tmp_path, capsys):
    assert main(["sweep", str(SWEEP), "--dry-run", "--workers", "2", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "6 point(s) x 2 replicate(s) = 12 run(s)" in text and "estimated" in text
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["m6_price_by_launch.yaml", "tariff_by_export_push.yaml"])
def test_example_sweeps_load(name):
    path = ROOT / "scenarios" / "sweeps" / name
    sw = load_sweep(path)
    assert sw.runs > 0 and len(sw.points) == len(sw.design_table())
    assert not pd.Series([str(p) for p in sw.points]).duplicated().any()
