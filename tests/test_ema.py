"""The EMA Workbench adapter (sim.ema): models from sweep and calibration files, outcomes, identical evaluators."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, ROOT, TINY, cli_env
from scipy import stats

import sim
from sim.scenario.load import load_scenario

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ema_workbench warns at import that an optional evaluator is missing
    import ema_workbench  # noqa: F401  (imported once here, quietly)

from ema_workbench import Samplers, SequentialEvaluator, perform_experiments  # noqa: E402

import sim.ema as sema  # noqa: E402


def _by_name(params) -> dict:
    return {p.name: p for p in params}


def test_a_calibration_file_gives_uncertainties_over_its_priors_and_levers():
    model = sema.ema_model("calibration", end="2022-06")
    unc = _by_name(model.uncertainties)
    assert len(unc) == 11 and len(model.levers) == 5
    alpha = unc["buyers_price_sensitivity"]
    assert alpha.variable_name == ["buyers.price_sensitivity"] and (alpha.lower_bound, alpha.upper_bound) == (0.4, 1.2)
    p = unc["buyers_awareness_innovation"]  # log-uniform prior
    assert p.dist.dist.name == "loguniform" and np.isclose(p.dist.ppf(0.5), np.sqrt(0.002 * 0.04))
    aito = unc["brands_AITO_appeal_plus"]  # an offset from the fitted appeal: a relative override
    assert aito.variable_name == ["brands.AITO.appeal+="]
    want = stats.truncnorm(-0.8 / 0.3, 0.8 / 0.3, loc=0.0, scale=0.3)
    assert np.isclose(aito.dist.ppf(0.9), want.ppf(0.9))
    assert "products_AITO_M8_capacity_max" in _by_name(model.levers)
    assert model.function.scenario.ensemble is None and model.function.scenario.end == "2022-06"
    assert model.function.seed == 1 and model.function.scale == 100


def test_a_sweep_file_gives_ranges_categories_and_months_and_moves_deliveries_with_the_launch():
    model = sema.ema_model(DATA / "sweep_tiny.yaml", levers=["products.A1.price"])
    price, launch = model.levers[0], model.uncertainties[0]
    assert price.name == "products_A1_price" and [c.value for c in price.categories] == [230000, 250000]
    assert launch.name == "products_A2_launch" and [c.value for c in launch.categories] == ["2024-02", "2024-03", "2024-04"]
    a2 = next(p for p in model.function.scenario.products if p.name == "A2")
    assert (a2.launch, a2.delivery_start, a2.delivery_lag) == ("2024-03", "2024-05", 2)  # the file's gap, kept
    moved = model.function.scenario
    later = sim.simulate(moved, scale=200, overrides={"products.A2.launch": "2024-04"})
    first = later.sales[(later.sales["model"] == "A2") & (later.sales["units"] > 0)]["month"].min()
    assert first == "2024-06"
    with pytest.raises(sim.scenario.yamlio.InputError, match="not parameters of"):
        sema.ema_model(DATA / "sweep_tiny.yaml", levers=["products.B1.price"])


def test_outcomes_are_the_numeric_columns_of_sim_outcomes():
    model = sema.ema_model(DATA / "sweep_tiny.yaml", scale=200)
    names = [o.name for o in model.outcomes]
    table = sim.outcomes(sim.simulate(TINY, scale=200))
    assert names == [c for c in table.columns if c not in ("run_id", "scenario", "replicate", "status")
                     and not c.endswith("_month_reached")]  # fmt: skip
    assert sema.outcome_names(load_scenario(TINY), brands=["A"], targets=False, shares=False) == ["deliveries_A_2024"]


def test_an_experiment_is_the_mean_of_its_replicates_and_pickles():
    model = sema.ema_model(DATA / "sweep_tiny.yaml", scale=200, replications=2)
    fn = pickle.loads(pickle.dumps(model.function))
    got = fn(**{"products.A1.price": np.int64(230000), "products.A2.launch": "2024-04"})
    res = sim.simulate_batch(model.function.scenario, replications=2, seed=11, scale=200,
                             overrides={"products.A1.price": 230000, "products.A2.launch": "2024-04"})  # fmt: skip
    table = sim.outcomes(res)
    assert got["deliveries_A_2024"] == table["deliveries_A_2024"].mean()
    assert got["A_ten_thousand_reached"] == table["A_ten_thousand_reached"].astype(float).mean()
    own = sema.ema_model(DATA / "sweep_tiny.yaml", scale=200, common_random_numbers=False).function
    a = own(**{"products.A1.price": 230000, "products.A2.launch": "2024-04"})
    b = own(**{"products.A1.price": 230000, "products.A2.launch": "2024-04"})
    assert a == b  # seeds of its own, from the experiment's values: still deterministic


def test_perform_experiments_with_the_sequential_evaluator():
    model = sema.ema_model(DATA / "sweep_tiny.yaml", scale=400, shares=False)
    np.random.seed(3)
    with SequentialEvaluator(model) as ev:
        experiments, outcomes = perform_experiments(model, 3, uncertainty_sampling=Samplers.LHS, evaluator=ev)
    assert len(experiments) == 3 and set(outcomes) == {o.name for o in model.outcomes}
    assert np.all(outcomes["deliveries_A_2024"] > 0)


@pytest.mark.slow
def test_the_example_gets_identical_outcomes_from_the_sequential_and_multiprocessing_evaluators(tmp_path: Path):
    """examples/explore_with_ema.py: 16 Latin-hypercube experiments, both evaluators, identical outcomes; then
    feature scoring and PRIM. Run from another folder, as a user's script that imports sim and ema_workbench only."""
    out = tmp_path / "out"
    # Warnings are errors, but for ema_workbench's own notice at import that an optional evaluator is missing.
    env = {**cli_env(), "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error,ignore:ipyparallel not installed:UserWarning"}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "explore_with_ema.py"), "--experiments", "16",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "identical outcomes (sequential vs multiprocessing): True" in done.stdout
    assert "feature scores" in done.stdout and "PRIM" in done.stdout
    seq, par = (pd.read_csv(out / f"{k}_outcomes.csv") for k in ("sequential", "multiprocessing"))
    assert len(seq) == 16
    pd.testing.assert_frame_equal(seq, par)
    exp = pd.read_csv(out / "sequential_experiments.csv")
    assert exp["products_AITO_M6_launch"].str.match(r"2026-0[2-6]").all()
