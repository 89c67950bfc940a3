"""The ``sim`` command line as a user runs it: ``python -m sim ...`` in a subprocess."""

from __future__ import annotations

import argparse
import ast
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY

import sim
from sim import load_results, load_scenario
from sim.cli import main
from sim.cli.options import output_folder
from sim.cli.registry import COMMANDS
from sim.runs import store
from sim.runs.run import RUNS_COLUMNS, SALES_COLUMNS
from sim.scenario.yamlio import InputError

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


def test_manifest_records_the_command_line_and_the_kernel(results_dir: Path):
    manifest = json.loads((results_dir / "manifest.json").read_text())
    assert manifest["kind"] == "run"
    assert manifest["command"][1:] == ["run", str(TINY), "--seed", "1", "--out", str(results_dir), "-r", "2"]
    assert manifest["kernel"] == "numba"


# --------------------------------------------------------------------------- the command line layer


def test_only_the_command_line_parses_arguments():
    """argparse is imported, and the process's arguments read, only under sim/cli."""
    root = Path(sim.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                imported = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if any(name.split(".")[0] == "argparse" or name == "sys.argv" for name in imported):
                found.append(f"{path.relative_to(root)}:{node.lineno}: imports {imported}")
            if isinstance(node, ast.Attribute) and node.attr == "argv" and getattr(node.value, "id", None) == "sys":
                found.append(f"{path.relative_to(root)}:{node.lineno}: reads sys.argv")
    assert not found


def test_every_command_is_declared_once_through_the_registry():
    parser = sim.cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [c.name for c in COMMANDS]
    assert {"run", "sweep", "rerun", "calibrate", "sensitivity", "validate-model", "dashboard"} <= set(sub.choices)


@pytest.mark.parametrize("command", [["run", str(TINY)], ["sweep", "s.yaml"], ["calibrate", "c.yaml"],
                                     ["sensitivity", "c.yaml"], ["validate-model", "DIR"], ["dashboard"]])  # fmt: skip
def test_batch_commands_share_the_workers_option(command: list[str], capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--workers", "0"])
    assert exc.value.code == 2
    assert "argument --workers/-w: must be at least 1, got 0" in capsys.readouterr().err


def test_force_replaces_only_what_the_command_writes(tmp_path: Path):
    """The calibration's layout: --force deletes its rounds and outputs, and nothing else."""
    out = tmp_path / "cal"
    (out / "round-00").mkdir(parents=True)
    (out / "round-00" / "abc.json").write_text("{}")
    (out / "fit.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    args = argparse.Namespace(out=str(out), resume=False, force=False)

    def prepare(folder: Path, **kw: bool) -> Path:
        return store.prepare_folder(folder, owned=("round-*", "fit.json"), hint="use --force", **kw)

    with pytest.raises(InputError, match="folder is not empty; use --force"):
        output_folder(args, tmp_path / "default", what="calibration", prepare=prepare)
    args.resume = args.force = True
    with pytest.raises(InputError, match="contradict"):
        output_folder(args, tmp_path / "default", what="calibration", prepare=prepare)
    args.resume = False
    assert output_folder(args, tmp_path / "default", what="calibration", prepare=prepare) == out
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    args.out, args.resume, args.force = None, True, False
    with pytest.raises(InputError, match="--resume needs --out: the folder of the calibration to continue"):
        output_folder(args, tmp_path / "default", what="calibration", prepare=prepare)


# --------------------------------------------------------------------------- the choice kernel


def test_the_kernel_is_recorded_and_a_rerun_uses_the_stored_one(tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "numpy"
    run = ["run", str(TINY), "-r", "2", "--executor", "serial", "--out", str(out), "-q"]
    monkeypatch.setenv("SIM_KERNEL", "numpy")
    assert main(run) == 0
    assert load_results(out).manifest["kernel"] == "numpy"
    monkeypatch.delenv("SIM_KERNEL")
    capsys.readouterr()
    assert main(["rerun", str(out), "1"]) == 0  # by default, the batch's kernel
    assert "kernel" not in capsys.readouterr().err
    # Under another kernel the tables differ, and the rerun says why.
    monkeypatch.setenv("SIM_KERNEL", "numba")
    assert main(["rerun", str(out), "1"]) == 1
    assert "the batch ran with the numpy kernel, this rerun with the numba kernel" in capsys.readouterr().err
    # Nor does a batch resume under another kernel.
    assert main([*run, "--resume"]) == 2
    assert "kernel: stored 'numpy', asked 'numba'" in capsys.readouterr().err


def test_a_rerun_of_a_folder_that_does_not_record_its_kernel_says_so(results_dir: Path, tmp_path: Path, capsys):
    old = tmp_path / "old"
    shutil.copytree(results_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["kernel"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert main(["rerun", str(old), "0"]) == 0
    assert "does not record the choice kernel" in capsys.readouterr().err


def test_the_dashboard_hands_the_kernel_to_its_page():
    from sim.present.dashboard.config import DashboardConfig, make_config

    config = make_config(TINY.parent.parent.parent / "scenarios" / "baseline.yaml", kernel="numpy")
    assert DashboardConfig.from_env(config.to_env()).kernel == "numpy"
