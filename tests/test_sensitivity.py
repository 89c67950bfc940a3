"""Sobol indices of the headline outputs (sim sensitivity, sim/sensitivity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CALIB_TINY

from sim.analysis.sensitivity import load_study
from sim.cli import main


@pytest.fixture
def calibration(tmp_path: Path) -> Path:
    path = tmp_path / "calib.yaml"
    path.write_text(
        f"name: sens\nbase: {CALIB_TINY}\nseed: 4\n"
        "parameters:\n"
        "  - {path: buyers.outside_value, low: 0.5, high: 1.5}\n"
        "  - {path: brands.A.appeal, offset: true, low: -1.0, high: 1.0}\n"
        "levers:\n"
        "  # no product costs more than 900k: the luxury tax threshold cannot matter\n"
        "  - {path: policies.luxury_tax_threshold, low: 900000, high: 1000000}\n"
    )
    return path


def test_indices_with_intervals_and_an_inert_factor_at_exactly_zero(calibration, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sensitivity", str(calibration), "--out", str(out), "--executor", "serial", "--scale", "100", "-q", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["points"] == 8 * (3 + 2) and res["runs"] == 40 and res["failed"] == 0
    outputs = {o["output"]: o for o in res["outputs"]}
    assert {"A deliveries 2024", "P(A ten thousand)", "share <300k", "share 300k+"} <= set(outputs)
    for o in outputs.values():
        if "factors" not in o:
            assert o["note"].startswith("constant")  # every point reaches the 10,000 target
            continue
        by = {f["factor"]: f for f in o["factors"]}
        # Same seeds at every point: a factor without effect changes no run, so its indices are exactly 0.
        assert by["policies.luxury_tax_threshold"]["S1"] == 0.0 and by["policies.luxury_tax_threshold"]["ST"] == 0.0
        assert all(f["S1_conf"] >= 0 and f["ST_conf"] >= 0 for f in o["factors"])
    # Brand A's appeal splits the market between A (cheaper products) and B: it dominates the segment shares.
    share = {f["factor"]: f for f in outputs["share 300k+"]["factors"]}
    assert share["brands.A.appeal"]["ST"] > 5 * share["buyers.outside_value"]["ST"]
    assert json.loads((out / "sensitivity.json").read_text()) == res
    # The table form, and a resumed study reuses the stored runs.
    assert main(["sensitivity", str(calibration), "--out", str(out), "--executor", "serial", "--scale", "100", "-q", "--resume"]) == 0
    text = capsys.readouterr().out
    assert "Sobol indices (95% intervals), N = 8" in text and "brands.A.appeal" in text


def test_design_and_its_dry_run(calibration, capsys):
    study = load_study(calibration, n=4, levers=False, extra_levers=["buyers.price_sensitivity=0.5:1.5"])
    assert [f.path for f in study.factors] == ["buyers.outside_value", "brands.A.appeal", "buyers.price_sensitivity"]
    assert study.points == 4 * 5 and study.unit.min() >= 0 and study.unit.max() <= 1
    over = study.overrides(0)
    assert 0.5 <= over["buyers.outside_value"] <= 1.5 and -1.0 <= over["brands.A.appeal"] <= 1.0  # base appeal of A is 0
    assert main(["sensitivity", str(calibration), "--dry-run"]) == 0
    assert "3 factors, N = 8: 40 points" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "says"),
    [
        pytest.param(["--n", "6"], "power of 2", id="N not a power of 2"),
        pytest.param(["--lever", "buyers.nope=1:2"], "not in the base scenario", id="lever not in the base"),
        pytest.param(["--lever", "buyers.price_sensitivity"], "", id="lever without a range"),  # any message
    ],
)
def test_bad_options_exit_2(calibration, capsys, options, says):
    assert main(["sensitivity", str(calibration), *options, "--dry-run"]) == 2
    assert says in capsys.readouterr().err
