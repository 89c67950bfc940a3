"""sim as a library: runs in memory equal to the command's, outcomes, shipped scenarios from anywhere (and
from a wheel), Mesa's conventions, the start-up, and the README's examples."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, cli_env, run_sim
from pandas.testing import assert_frame_equal

import sim
from sim.model.market_model import MarketModel
from sim.runs.run import execute, make_specs
from sim.runs.store import load_results
from sim.scenario.load import load_scenario
from sim.scenario.shipped import scenario_path, shipped_folder, shipped_names
from sim.scenario.yamlio import InputError


def sim_elsewhere(folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m sim ARGS`` run in ``folder`` (outside the checkout), with this checkout's sim."""
    env = {**cli_env(), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


# --------------------------------------------------------------------------- simulate == sim run


@pytest.mark.slow
def test_simulate_equals_a_replicate_of_sim_run(tmp_path: Path):
    """``sim.simulate("baseline", seed=1, replicate=r)`` is replicate r of ``sim run baseline --seed 1``, bit for bit."""
    out = tmp_path / "base"
    done = sim_elsewhere(tmp_path, "run", "baseline", "--seed", "1", "-r", "3", "--workers", "2", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    stored = load_results(out)
    for r in (0, 2):
        res = sim.simulate("baseline", seed=1, replicate=r)
        want = stored.sales[stored.sales["replicate"] == r].reset_index(drop=True)
        assert_frame_equal(res.sales, want)
        row, got = stored.runs.set_index("replicate").loc[r], res.runs.iloc[0]
        for col in ("run_id", "seed_entropy", "spawn_key", "buyer_decisions", "status"):
            assert got[col] == row[col], col
    assert res.manifest["scenario_hash"] == stored.manifest["scenario_hash"]
    assert res.manifest["seed"] == 1 and res.manifest["kind"] == "run" and res.manifest["api"] == "sim.simulate"


def test_simulate_batch_is_the_replicates_of_simulate_whatever_the_executor():
    serial = sim.simulate_batch(TINY, replications=3, seed=4, scale=100)
    parallel = sim.simulate_batch(TINY, replications=3, seed=4, scale=100, executor="processes", workers=2)
    assert_frame_equal(serial.sales, parallel.sales)
    assert_frame_equal(serial.runs.drop(columns="seconds"), parallel.runs.drop(columns="seconds"))
    one = sim.simulate(TINY, seed=4, replicate=1, scale=100)
    assert_frame_equal(one.sales, serial.sales[serial.sales["replicate"] == 1].reset_index(drop=True))
    assert list(serial.runs["replicate"]) == [0, 1, 2] and (serial.runs["status"] == "ok").all()
    assert serial.manifest["replications"] == 3 and serial.manifest["blas_threads"] == 1


def test_a_replicate_does_not_depend_on_the_executor_or_the_chunking():
    """The seed identity of replicate r is its own: the same tables as the runs layer's spec r."""
    spec = make_specs(load_scenario(TINY), 3, seed=4, scale=100)[2]
    direct = execute(spec)
    res = sim.simulate(TINY, seed=4, replicate=2, scale=100)
    assert_frame_equal(res.sales, direct.sales.sort_values(["month", "market", "model"], kind="stable").reset_index(drop=True))


def test_scenarios_given_three_ways_and_overrides_give_the_same_run():
    sc = load_scenario(TINY)
    by_file = sim.simulate(TINY, seed=2, scale=100, overrides={"products.A1.price*=": 1.1})
    by_object = sim.simulate(sc, seed=2, scale=100, overrides={"products.A1.price": 250000 * 1.1})
    assert_frame_equal(by_file.sales, by_object.sales)
    assert by_file.manifest["scenario_hash"] == by_object.manifest["scenario_hash"]
    plain = sim.simulate(sc, seed=2, scale=100)
    assert not plain.sales["units"].equals(by_file.sales["units"])


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="replicate must be a whole number"):
        sim.simulate(TINY, replicate=-1)
    with pytest.raises(InputError, match="replications must be"):
        sim.simulate_batch(TINY, replications=0)
    with pytest.raises(InputError, match="scenario must be a file"):
        sim.simulate(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"products\[0\].pric: unknown key \(did you mean 'price'\?\)"):
        sim.simulate(TINY, overrides={"products.A1.pric": 1})
    with pytest.raises(InputError, match="kernel must be one of"):
        sim.simulate(TINY, kernel="fortran")


def test_a_failed_run_raises_with_its_traceback(monkeypatch):
    def broken(self: MarketModel) -> None:
        raise RuntimeError("the model broke")

    monkeypatch.setattr(MarketModel, "run", broken)
    with pytest.raises(sim.RunFailed, match="the model broke") as info:
        sim.simulate(TINY, scale=100)
    assert info.value.results.runs["status"].tolist() == ["failed"]
    batch = sim.simulate_batch(TINY, replications=2, scale=100)  # a batch keeps going: failures are data
    assert batch.runs["status"].tolist() == ["failed", "failed"]
    table = sim.outcomes(batch)
    assert table["deliveries_A_2024"].isna().all() and table["A_ten_thousand_reached"].isna().all()


# --------------------------------------------------------------------------- outcomes


def test_outcomes_are_one_row_per_run_with_the_tables_numbers():
    res = sim.simulate_batch(TINY, replications=3, seed=1, scale=100)
    table = sim.outcomes(res)
    assert list(table["run_id"]) == [0, 1, 2]
    assert all(c.isidentifier() for c in table.columns)
    sales = res.sales.assign(year=res.sales["month"].str[:4])
    units = sales.groupby(["run_id", "brand", "year"])["units"].sum()
    for r in range(3):
        assert table.loc[r, "deliveries_A_2024"] == units.loc[(r, "A", "2024")]
        assert table.loc[r, "deliveries_B_2024"] == units.loc[(r, "B", "2024")]
    shares = table[[c for c in table.columns if c.startswith("share_")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    # The target: 10,000 A cars from 2024-01 to 2024-12.
    delivered = table["A_ten_thousand_delivered"]
    assert (delivered == table["deliveries_A_2024"]).all()
    assert (table["A_ten_thousand_reached"] == (delivered >= 10_000)).all()
    assert (table["A_ten_thousand_shortfall"] == np.maximum(0, 10_000 - delivered)).all()
    reached = table["A_ten_thousand_month_reached"].astype(str)
    months = reached.map(lambda m: int(m[5:]))  # all in 2024
    assert (table["A_ten_thousand_months_to_reach"] == months).all()
    cum = sales[sales["brand"] == "A"].groupby(["run_id", "month"])["units"].sum().groupby("run_id").cumsum()
    for r, m in enumerate(reached):
        assert cum.loc[(r, m)] >= 10_000 and (cum.loc[r][cum.loc[r].index < m] < 10_000).all()


def test_outcomes_choose_brands_and_years_and_refuse_what_is_not_there():
    res = sim.simulate(TINY, scale=200)
    table = sim.outcomes(res, brands=["B"], years=[2024], targets=False, shares=False)
    assert list(table.columns) == ["run_id", "scenario", "replicate", "status", "deliveries_B_2024"]
    with pytest.raises(ValueError, match="not in the scenario: Z, 2031"):
        sim.outcomes(res, brands=["Z"], years=[2031])


@pytest.mark.slow
def test_outcomes_read_a_stored_folder_as_they_read_memory(tmp_path: Path):
    done = run_sim("run", str(TINY), "--seed", "3", "-r", "2", "--scale", "100", "--out", str(tmp_path / "t"), "-q")
    assert done.returncode == 0, done.stderr
    stored = sim.outcomes(sim.load_results(tmp_path / "t"))
    memory = sim.outcomes(sim.simulate_batch(TINY, replications=2, seed=3, scale=100))
    assert_frame_equal(stored, memory, check_dtype=False)


# --------------------------------------------------------------------------- shipped scenarios


def test_shipped_scenarios_by_name_from_any_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert scenario_path("baseline") == shipped_folder() / "baseline.yaml"
    assert scenario_path("sweeps/m6_price_by_launch").is_file() and scenario_path("reported/figures.csv").is_file()
    assert "m6_launch" in shipped_names() and "calibration" not in shipped_names()
    assert load_scenario("m6_launch").name == load_scenario("m6_launch.yaml").name == "m6_launch"
    model = MarketModel(scenario="baseline", scale=5000, end="2022-01")
    model.run()
    assert model.config.name == "baseline"
    with pytest.raises(InputError, match=r"m7_launch: no such file, nor a shipped scenario .*m6_launch"):
        load_scenario("m7_launch")
    with pytest.raises(InputError, match="not the name of a shipped scenario"):
        scenario_path("../pyproject.toml")


def test_a_file_here_comes_before_a_shipped_one_and_an_overlay_extends_a_shipped_one(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "baseline.yaml").write_text(f"name: mine\nextends: {TINY}\n")
    assert load_scenario("baseline.yaml").name == "mine"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cheaper.yaml").write_text("name: cheaper\nextends: m6_launch.yaml\n"
                                                   "products:\n  - {name: AITO M6, price: 229800}\n")  # fmt: skip
    sc = load_scenario("sub/cheaper.yaml")
    assert next(p for p in sc.products if p.name == "AITO M6").price == 229800


def test_the_command_line_takes_a_shipped_name_from_another_folder(tmp_path: Path):
    done = sim_elsewhere(tmp_path, "validate", "m6_launch", "baseline.yaml")
    assert done.returncode == 0, done.stderr
    assert "m6_launch: ok (m6_launch:" in done.stdout and "baseline.yaml: ok (baseline:" in done.stdout
    bad = sim_elsewhere(tmp_path, "validate", "m7_launch")
    assert bad.returncode == 2 and "shipped: baseline" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_a_wheel_install_runs_the_shipped_scenarios_from_another_folder(tmp_path: Path):
    """``pip install .`` (not editable) into a fresh venv, then, from another folder: ``sim warmup`` compiles the
    kernel into the installed package's cache and a second one loads it, ``sim run m6_launch -r 2 --out X`` runs,
    ``sim compare X`` finds the shipped figures, and ``MarketModel(scenario="baseline")`` works."""
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "sim", src / "sim", ignore=ignore)
    shutil.copytree(ROOT / "scenarios", src / "scenarios", ignore=ignore)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in cli_env().items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "VIRTUAL_ENV")}
    env["PYTHONWARNINGS"] = "ignore"  # pip's and setuptools' own deprecation notices are not ours
    # The package itself, built as a wheel (setuptools from the package registry, in pip's build isolation);
    # its dependencies are the test environment's, made visible after the install (so pip sees none of them).
    pip = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(src)], env=env,
                         capture_output=True, text=True, timeout=400)  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env["PYTHONWARNINGS"] = "error"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=timeout)

    where = run(str(py), "-c", "import sim, sim.scenario.shipped as s; print(sim.__file__); print(s.shipped_folder())")
    assert where.returncode == 0, where.stderr
    package, folder = where.stdout.split()
    assert package.startswith(str(site)) and folder == str(site / "sim" / "scenarios")
    first = run(str(venv / "bin" / "sim"), "warmup", timeout=600)
    assert first.returncode == 0 and "compiled the numba kernel" in first.stdout, first.stdout + first.stderr
    second = run(str(venv / "bin" / "sim"), "warmup")
    assert second.returncode == 0 and "loaded from the cache" in second.stdout, second.stdout + second.stderr
    assert str(site / "sim" / "model" / "__pycache__") in second.stdout
    out = elsewhere / "X"
    done = run(str(venv / "bin" / "sim"), "run", "m6_launch", "-r", "2", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    res = load_results(out)
    assert len(res.runs) == 2 and (res.runs["status"] == "ok").all()
    assert res.manifest["scenario_name"] == "m6_launch" and res.sales["model"].eq("AITO M6").any()
    compared = run(str(venv / "bin" / "sim"), "compare", str(out), "--format", "json", "--what", "targets")
    assert compared.returncode == 0, compared.stderr
    model = run(str(py), "-c", "import sim; m = sim.MarketModel(scenario='baseline', scale=5000, end='2022-01'); "
                "m.run(); print(m.config.name, len(m.datacollector.model_vars['month']))")  # fmt: skip
    assert model.returncode == 0 and model.stdout.split() == ["baseline", "3"], model.stdout + model.stderr


# --------------------------------------------------------------------------- Mesa's conventions


def test_a_model_without_a_seed_draws_fresh_entropy_and_records_it():
    a, b = MarketModel(TINY, scale=100), MarketModel(TINY, scale=100)
    assert a.seed_entropy != b.seed_entropy and a.spawn_key == b.spawn_key == ()
    again = MarketModel(TINY, seed=a.seed_entropy, scale=100)
    for m in (a, b, again):
        m.run()
    units = [np.stack(m.datacollector.model_vars["units"]) for m in (a, b, again)]
    np.testing.assert_array_equal(units[0], units[2])
    assert not np.array_equal(units[0], units[1])


def test_a_model_with_a_replicate_is_that_replicate_of_sim_run():
    spec = make_specs(load_scenario(TINY), 2, seed=7, scale=100)[1]
    model = MarketModel(TINY, seed=7, replicate=1, scale=100)
    model.run()
    from sim.runs.run import sales_table

    assert_frame_equal(sales_table(model, spec), execute(spec).sales)
    assert (model.seed_entropy, model.spawn_key) == (7, (1,))
    assert MarketModel(TINY, replicate=0, scale=100).seed_entropy == load_scenario(TINY).seed  # the scenario's seed
    with pytest.raises(InputError, match="replicate must be"):
        MarketModel(TINY, seed=1, replicate=-2)


def test_the_initial_state_is_row_0_and_brand_deliveries_are_scalars():
    model = MarketModel(TINY, seed=1, scale=100)
    mv = model.datacollector.model_vars
    assert mv["month"] == ["2023-12"] and mv["deliveries_A"] == [0.0] and not mv["offered"][0].any()
    np.testing.assert_array_equal(mv["backlog"][0], model.backlog)
    model.run()
    units = np.stack(mv["units"])
    for i, brand in enumerate(model.brand_names):
        np.testing.assert_array_equal(mv[f"deliveries_{brand}"], units[:, model.product_brand == i].sum(axis=(1, 2)))
    assert len(mv["month"]) == model.n_months + 1 and mv["month"][1:] == model.config.months()


def test_mesa_batch_run_gives_different_iterations_with_usable_scalar_rows():
    rows = mesa.batch_run(MarketModel, parameters={"scenario": str(TINY), "scale": 100, "buyers__price_sensitivity": [1.0, 1.5]},
                          iterations=2, data_collection_period=1, number_processes=1, display_progress=False)  # fmt: skip
    df = pd.DataFrame(rows)
    assert sorted(df["RunId"].unique()) == [0, 1, 2, 3]
    first = df[df["Step"] == 0]
    assert (first["month"] == "2023-12").all() and (first["deliveries_A"] == 0).all()  # the initial state
    months = load_scenario(TINY).months()
    for _, run in df.groupby("RunId"):
        # Mesa 3.3.1 reads steps 0..steps-1 (its issue #2514): every month but the last, in order.
        assert run["month"].tolist()[1:] == months[: len(run) - 1] and len(run) >= len(months)
        assert run["deliveries_A"].dtype == float and run["deliveries_B"].sum() > 0
    same_params = df[df["buyers__price_sensitivity"] == 1.0].pivot(index="Step", columns="iteration", values="deliveries_B")
    assert not same_params[0].equals(same_params[1])  # iterations draw fresh seeds


# --------------------------------------------------------------------------- start-up


def test_sim_help_imports_no_heavy_module():
    """``sim --help`` builds every command's name and help, but imports neither Mesa nor pandas, scipy or matplotlib."""
    code = ("import sys; from sim.cli.app import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('mesa', 'pandas', 'scipy', 'matplotlib', 'numba') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "warmup" in done.stdout and "compile the numba choice kernel" in done.stdout
    imported = subprocess.run([sys.executable, "-c", "import sys, sim; print('mesa' in sys.modules)"], cwd=ROOT,
                              env=cli_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert imported.stdout.strip() == "False"


def test_every_command_still_declares_its_arguments():
    """Built whole (as the tests and tools build it), the parser declares every command's arguments."""
    from sim.cli.app import build_parser

    parser = build_parser()
    for args in (["run", "x", "-r", "2"], ["plot", "x", "--what", "fan", "--out", "f.png"], ["compare", "x"], ["warmup"]):
        assert parser.parse_args(args).command == args[0]


def test_warmup_says_what_it_did(capsys):
    from sim.cli import main

    assert main(["warmup"]) == 0
    said = capsys.readouterr().out
    assert re.match(r"(compiled the numba kernel \(\d+ functions\)|the numba kernel was already compiled)", said)
    assert "cache:" in said


def test_the_public_names():
    assert set(sim.__all__) >= {"simulate", "simulate_batch", "MarketModel", "scenario_path", "load_scenario"}
    # Names that clash with ema_workbench's star-import, or with its examples' `outcomes`, stay out of __all__.
    assert not {"Scenario", "load_results", "outcomes"} & set(sim.__all__)
    assert sim.outcomes and sim.load_results and sim.Scenario and sim.warmup
    assert {"simulate", "outcomes"} <= set(dir(sim))


# --------------------------------------------------------------------------- the README's examples


@pytest.mark.slow
def test_the_readme_python_examples_run_from_another_folder(tmp_path: Path):
    """The ```python blocks of the README's "Using sim from Python", in order, as one script, from outside the checkout."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using sim from Python"):]
    section = section[: section.index("\n## ", 5)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 4
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(blocks))
    env = {**cli_env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AITO_second_million_delivered" in done.stdout and "m6_launch.yaml" in done.stdout


@pytest.mark.slow
def test_the_mesa_example_runs(tmp_path: Path):
    env = {**cli_env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "mesa_batch_run.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "iterations differ: True" in done.stdout
