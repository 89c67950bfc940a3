"""The ``sim`` command line as a user runs it: ``python -m sim ...`` in a subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY

from sim import load_results, load_scenario
from sim.runs.run import RUNS_COLUMNS, SALES_COLUMNS

MANIFEST_KEYS = {"scenario", "scenario_hash", "seed", "packages", "code_version", "created"}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory, sim_cli) -> Path:
    """``sim run tests/data/tiny.yaml --seed 1 --out DIR -r 2``, once for the module (not to be modified)."""
    out = tmp_path_factory.mktemp("cli") / "tiny-run"
    proc = sim_cli("run", str(TINY), "--seed", "1", "--out", str(out), "-r", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "tiny: 2 run(s), 0 failed" in proc.stdout
    assert "Target 'A ten thousand'" in proc.stdout
    return out


def test_run_writes_manifest_and_parts(results_dir: Path):
    manifest = json.loads((results_dir / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["seed"] == 1
    assert manifest["replications"] == 2
    assert manifest["status"] == "complete" and manifest["finished"] == 2 and manifest["failed"] == 0
    assert manifest["scenario"]["name"] == "tiny"
    assert manifest["scenario_hash"] == load_scenario(TINY).hash()
    assert {"mesa", "numpy", "pandas", "python"} <= set(manifest["packages"])
    assert manifest["code_version"]
    assert list((results_dir / "runs").glob("part-*.parquet"))
    assert list((results_dir / "sales").glob("part-*.parquet"))


def test_load_results_has_the_documented_columns(results_dir: Path):
    res = load_results(results_dir)
    assert tuple(res.sales.columns) == SALES_COLUMNS
    assert tuple(res.runs.columns) == RUNS_COLUMNS
    assert sorted(res.runs["replicate"]) == [0, 1]
    assert (res.runs["status"] == "ok").all()
    assert set(res.sales["model"]) == {"A1", "A2", "B1"}
    assert set(res.sales["month"]) == set(load_scenario(TINY).months())
    assert (res.sales[["units", "orders", "backlog", "cancellations"]] >= 0).all().all()
    assert res.manifest["seed"] == 1
    # The two replicates are different draws.
    by_run = res.sales.groupby("run_id")["orders"].sum()
    assert by_run.iloc[0] != by_run.iloc[1]


def test_rerun_into_a_full_folder_exits_2_and_changes_nothing(results_dir: Path, sim_cli):
    before = snapshot(results_dir)
    proc = sim_cli("run", str(TINY), "--seed", "2", "--out", str(results_dir), "-r", "1", "-q")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "not empty" in proc.stderr and "--force" in proc.stderr
    assert snapshot(results_dir) == before


def test_force_replaces_the_results(tmp_path: Path, sim_cli):
    out = tmp_path / "forced"
    first = sim_cli("run", str(TINY), "--seed", "1", "--out", str(out), "-r", "2", "-w", "1", "-q")
    assert first.returncode == 0, first.stderr
    second = sim_cli("run", str(TINY), "--seed", "2", "--out", str(out), "-r", "1", "-w", "1", "-q", "--force")
    assert second.returncode == 0, second.stderr
    res = load_results(out)
    assert res.manifest["seed"] == 2 and res.manifest["replications"] == 1
    assert len(res.runs) == 1 and res.runs["seed_entropy"].tolist() == ["2"]
    assert set(res.sales["run_id"]) == {0}
    assert len(list((out / "runs").glob("part-*.parquet"))) == 1


def test_export_csv(results_dir: Path, tmp_path: Path, sim_cli):
    copy = tmp_path / "copy"
    shutil.copytree(results_dir, copy)
    proc = sim_cli("export", str(copy), "--csv")
    assert proc.returncode == 0, proc.stderr
    res = load_results(copy)
    sales = pd.read_csv(copy / "sales.csv")
    runs = pd.read_csv(copy / "runs.csv")
    assert tuple(sales.columns) == SALES_COLUMNS and len(sales) == len(res.sales)
    assert tuple(runs.columns) == RUNS_COLUMNS and len(runs) == len(res.runs)
    assert sales["units"].sum() == res.sales["units"].sum()
    assert str(copy / "sales.csv") in proc.stdout


def test_schema_is_json_with_products(sim_cli):
    proc = sim_cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert "products" in schema["properties"]
    assert {"start", "end", "markets", "brands"} <= set(schema["properties"])


def test_version(sim_cli):
    import sim

    proc = sim_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"sim {sim.__version__}"


def test_set_is_recorded_and_changes_the_list_price(tmp_path: Path, sim_cli):
    out = tmp_path / "set"
    proc = sim_cli(
        "run",
        str(TINY),
        "--seed",
        "1",
        "--out",
        str(out),
        "-r",
        "1",
        "-w",
        "1",
        "-q",
        "--set",
        "products.A1.price=260000",
    )
    assert proc.returncode == 0, proc.stderr
    res = load_results(out)
    assert res.manifest["overrides"] == {"products.A1.price": 260000}
    a1 = res.sales[res.sales["model"] == "A1"]
    assert len(a1) > 0 and (a1["list_price"] == 260000).all()
    b1 = res.sales[res.sales["model"] == "B1"]
    assert b1["list_price"].iloc[0] == 400000  # B1 untouched (before its June price event)
    assert res.manifest["scenario_hash"] != load_scenario(TINY).hash()


def test_bad_set_path_exits_2_without_traceback(tmp_path: Path, sim_cli):
    out = tmp_path / "never"
    proc = sim_cli("run", str(TINY), "--out", str(out), "-q", "--set", "products.Z9.price=1")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no item named 'Z9'" in proc.stderr
    assert not out.exists()
