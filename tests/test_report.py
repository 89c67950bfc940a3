"""``sim report`` and ``sim plot`` (sim.present.report) on a small real batch and on synthetic folders.

The real batch: the baseline and the M6 launch, 3 replicates each at scale 2,000 on the same seed,
made once per test session (:func:`real_batches`) and shared with tests/test_report_browser.py.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest
from test_plots import PRODUCTS, write_synthetic_results

from sim.analysis.targets import summarize, target_outcomes
from sim.cli import main
from sim.present.report_assumptions import scenario_differences
from sim.present.report_figures import BACKTEST, NEEDS_FORECAST, NEEDS_VS, PLOTS
from sim.runs.store import load_results

ROOT = Path(__file__).resolve().parent.parent
IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _complete(folder: Path) -> bool:
    m = folder / "manifest.json"
    return m.is_file() and json.loads(m.read_text()).get("status") == "complete"


def real_batches(factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Baseline and M6-launch results (3 replicates, scale 2,000, same seed), made once per session."""
    root = factory.getbasetemp() / "report_batches"
    out = {name: root / name for name in ("baseline", "m6_launch")}
    for name, folder in out.items():
        if not _complete(folder):
            rc = main(["run", str(ROOT / "scenarios" / f"{name}.yaml"), "--replications", "3", "--scale", "2000",
                       "--executor", "serial", "--out", str(folder), "--force", "--quiet"])  # fmt: skip
            assert rc == 0
    return out["baseline"], out["m6_launch"]


def vs_report(factory: pytest.TempPathFactory) -> Path:
    """``sim report m6_launch --vs baseline`` of :func:`real_batches`, written once per session."""
    base, m6 = real_batches(factory)
    html = factory.getbasetemp() / "report_batches" / "m6_vs_base.html"
    if not html.is_file():
        assert main(["report", str(m6), "--vs", str(base), "--out", str(html)]) == 0
    return html


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return real_batches(tmp_path_factory)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    return vs_report(tmp_path_factory).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two synthetic folders on the same seed; the second adds a product ``AITO New`` from 2025-01."""
    root = tmp_path_factory.mktemp("syn")
    a = write_synthetic_results(root / "a")
    b = write_synthetic_results(root / "b", products={**PRODUCTS, "AITO New": ("AITO", "300-400k", 0, "2025-01")},
                                name="syn_new")  # fmt: skip
    return a, b


def png_images(html: str) -> list[tuple[str, int, int]]:
    """``(alt, width, height)`` of every embedded PNG, read from its header."""
    out = []
    for alt, data in IMG.findall(html):
        raw = base64.b64decode(data, validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", raw[16:24])
        out.append((alt, w, h))
    return out


# --------------------------------------------------------------------------- the report of m6_launch vs baseline


def test_report_against_the_baseline_embeds_at_least_four_figures(report_html: str) -> None:
    images = png_images(report_html)
    assert report_html.count("<img") == len(images)  # every image is an embedded PNG
    assert len(images) >= 4
    assert all(alt and w > 300 and h > 150 for alt, w, h in images)
    alts = " | ".join(a for a, _, _ in images)
    for part in ("cumulative deliveries", "Will AITO deliver", "vs baseline", "minus baseline", "AITO M6 deliveries came from",
                 "Monthly deliveries per brand", "Price segments", "Brand shares inside each price segment"):
        assert part in alts


def test_report_loads_nothing_from_the_network(report_html: str) -> None:
    assert not re.search(r'(?:src|href)\s*=\s*"(?!data:|#)', report_html)
    assert "<link" not in report_html and "@import" not in report_html and "url(" not in report_html


def test_report_headline_matches_the_target_arithmetic(batches: tuple[Path, Path], report_html: str) -> None:
    base, m6 = (load_results(p) for p in batches)
    t = m6.manifest["scenario"]["targets"][0]
    window = {}
    for name, res in (("baseline", base), ("m6", m6)):
        oc = target_outcomes(res.sales, t["brand"], t["units"], t["start"], t["by"])
        s = summarize(oc, t["units"])
        assert f"delivered in the window: {s['delivered_mean']:,.0f}" in report_html
        assert f'<div class="big">{100 * s["probability"]:.0f}%</div>' in report_html
        replicate = oc["run_id"].map(res.runs.set_index("run_id")["replicate"])
        window[name] = pd.Series(oc["delivered"].to_numpy(float), index=replicate.to_numpy())
    diff = float((window["m6"] - window["baseline"]).mean())  # paired by replicate
    assert diff > 0  # the M6 adds deliveries on the same seeds
    assert f"m6_launch - baseline, deliveries in the window:</b> {diff:+,.0f}" in report_html


def test_report_holds_assumptions_differences_comparison_and_manifest(batches: tuple[Path, Path], report_html: str) -> None:
    base, m6 = (load_results(p) for p in batches)
    for res in (base, m6):
        assert res.manifest["scenario_hash"] in report_html
        assert str(res.manifest["seed"]) in report_html
    assert "Key assumptions of m6_launch" in report_html
    assert "What differs from baseline" in report_html and ">products.AITO M6</td>" in report_html
    assert "Products delivering from the forecast start" in report_html
    assert "Against the reported figures (m6_launch)" in report_html and "MAPE %" in report_html
    assert "New in this scenario: <b>AITO M6</b>" in report_html
    assert "only 3 finished run(s)" in report_html  # the warning about few replicates


# --------------------------------------------------------------------------- synthetic folders


def test_report_of_one_folder_without_targets_goes_next_to_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = write_synthetic_results(tmp_path / "nt", targets=[])
    assert main(["report", str(folder)]) == 0
    out = folder / "report.html"
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    assert "The scenario has no targets." in html
    assert len(png_images(html)) == 4  # fan, brands, segments, brand shares in segments: no target figure
    assert "Paired differences" not in html and "Cannibalisation" not in html


@pytest.mark.parametrize("what", [w for w in PLOTS if w not in (*NEEDS_FORECAST, BACKTEST)])  # those: test_report_forecast.py
def test_plot_writes_each_figure(what: str, synthetic: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = synthetic
    out = tmp_path / f"{what}.png"
    args = ["plot", str(b), "--what", what, "--out", str(out), "--dpi", "60"]
    assert main(args + (["--vs", str(a)] if what in NEEDS_VS else [])) == 0
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", raw[16:24])) > 100


def test_plot_writes_svg(synthetic: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "fan.svg"
    assert main(["plot", str(synthetic[0]), "--what", "fan", "--out", str(out)]) == 0
    assert "<svg" in out.read_text()[:2000]


def _fails(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_input_exits_2_with_a_message(synthetic: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = synthetic
    _fails(["plot", str(a), "--what", "fan", "--out", str(tmp_path / "f.jpg")], "f.jpg: unknown figure format '.jpg'", capsys)
    _fails(["plot", str(a), "--what", "paired", "--out", str(tmp_path / "p.png")], "--what paired needs a second results folder", capsys)
    _fails(["report", str(tmp_path / "nowhere")], "no such results folder", capsys)
    _fails(["report", str(a), "--unpaired"], "--unpaired needs a second results folder", capsys)
    _fails(["plot", str(a), "--what", "fan", "--out", str(tmp_path / "f.png"), "--dpi", "5"], "--dpi: must be in 20..1200", capsys)
    no_target = write_synthetic_results(tmp_path / "nt", targets=[])
    _fails(["plot", str(no_target), "--what", "target", "--out", str(tmp_path / "t.png")], "the scenario has no targets", capsys)
    other_seed = tmp_path / "seed8"
    shutil.copytree(a, other_seed)
    manifest = json.loads((other_seed / "manifest.json").read_text())
    (other_seed / "manifest.json").write_text(json.dumps({**manifest, "seed": 8}))
    _fails(["report", str(b), "--vs", str(other_seed), "--out", str(tmp_path / "r.html")], "not run on the same seed", capsys)
    _fails(["plot", str(b), "--vs", str(other_seed), "--what", "paired", "--out", str(tmp_path / "p.png")],
           "not run on the same seed", capsys)  # fmt: skip
    assert main(["plot", str(b), "--vs", str(other_seed), "--unpaired", "--what", "paired", "--out", str(tmp_path / "p.png")]) == 0


def test_scenario_differences_match_named_items_and_compare_other_lists() -> None:
    ref = {"name": "a", "seed": 1, "products": [{"name": "X", "price": 1.0}, {"name": "Y", "price": 2.0}],
           "events": [{"month": "2026-01", "type": "price"}]}  # fmt: skip
    this = {"name": "b", "seed": 1, "products": [{"name": "X", "price": 1.5}, {"name": "Z", "price": 3.0}],
            "events": [{"month": "2026-01", "type": "price"}, {"month": "2026-05", "type": "stores"}]}  # fmt: skip
    assert scenario_differences(ref, this) == [
        ("events[+]", "(absent)", "month: 2026-05; type: stores"),
        ("products.X.price", "1", "1.5"),
        ("products.Y", "name: Y; price: 2", "(absent)"),
        ("products.Z", "(absent)", "name: Z; price: 3"),
    ]
    assert scenario_differences(ref, ref) == []
