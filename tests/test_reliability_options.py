"""The options of every command, the sizes they ask for, overrides, calibration files, files that are not
files, signals and what a command leaves behind (issue 21).

Every case drives ``sim`` in this process and asserts exit status 2 with a message that says what is wrong,
no traceback or "internal error", and nothing written; or, for what is allowed (a swept scale, an ``end``
set on purpose), that it works.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ROOT, TINY, cli_env, tiny_child
from hypothesis import given
from hypothesis import strategies as st

from sim import cli
from sim.cli.options import MAX_COUNT, number
from sim.runs import chunks, limits, store

RUN = ["--scale", "500", "--executor", "serial", "-q"]


def main(argv: list[str]) -> tuple[int, str]:
    """``sim ARGV`` in this process: its exit status (argparse's own errors included) and its stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = int(exc.code or 0)
    return status, err.getvalue()


def refused(argv: list[str], says: str, written: Path | None = None) -> str:
    """Assert ``sim ARGV`` exits 2 saying ``says`` (no traceback), writing nothing at ``written``."""
    code, err = main(argv)
    assert code == 2, err
    assert says in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    if written is not None:
        assert not written.exists(), f"{written} was written"
    return err


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("options") / "run"
    assert cli.main(["run", str(TINY), "-r", "3", "--seed", "5", *RUN, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calibration of the tiny market (one annual figure per brand): the file's folder."""
    folder = tmp_path_factory.mktemp("calibration")
    (folder / "targets.csv").write_text("brand,model,start,end,frequency,value,confidence\n"
                                        "A,,2024-01,2024-12,annual,30000,high\nB,,2024-01,2024-12,annual,60000,high\n")  # fmt: skip
    return folder


def calibration_file(folder: Path, *parameters: str, name: str = "calib") -> Path:
    path = folder / f"{name}.yaml"
    body = "".join(f"  - {p}\n" for p in parameters)
    path.write_text(f"name: {name}\nbase: {TINY}\nthrough: 2024-12\nseed: 3\nscale: 500\nparameters:\n{body}"
                    "data: {table: targets.csv}\nmethod: {per_round: 8, quantile: 0.5}\n")  # fmt: skip
    return path


# --------------------------------------------------------------------------- numbers


@given(st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.integers(-(10**30), 10**30).map(str)))  # fmt: skip
def test_a_number_option_is_finite_and_within_its_bounds_or_refused(text: str) -> None:
    for kind, low, strict in ((int, 1, False), (float, 0.0, True)):
        parse = number(kind, low, strict=strict, maximum=MAX_COUNT, what="a number")
        try:
            v = parse(text)
        except argparse.ArgumentTypeError:
            continue
        assert math.isfinite(v) and (v > low if strict else v >= low) and v <= MAX_COUNT


def command_line(command: str, extra: list[str], tmp: Path, results: Path, calibration: Path) -> list[str]:
    """A valid command line of ``command`` with ``extra`` options, writing under ``tmp``."""
    out = ["--out", str(tmp / "out")]
    return {
        "run": ["run", str(TINY), "--executor", "serial", "-q", *out, *extra],
        "sweep": ["sweep", str(ROOT / "tests/data/reliability/kill_sweep.yaml"), "-q", *out, *extra],
        "calibrate": ["calibrate", str(calibration_file(calibration, "{path: buyers.outside_value, low: 0.5, high: 2.5}")),
                      "-q", *out, *extra],
        "sensitivity": ["sensitivity", str(calibration_file(calibration, "{path: buyers.outside_value, low: 0.5, high: 2.5}",
                                                            "{path: brands.A.appeal, low: -1, high: 1}")), *out, *extra],
        "validate-model": ["validate-model", str(results), *extra],
        "fit-appeals": ["fit-appeals", str(TINY), "--write", str(tmp / "overlay.yaml"), "--scale", "500", *extra],
        "bench": ["bench", "--buyers", "1000", *extra],
        "dashboard": ["dashboard", str(TINY), "--baseline", str(TINY), *extra],
        "plot": ["plot", str(results), "--what", "fan", "--out", str(tmp / "out.png"), *extra],
        "rerun": ["rerun", str(results), *extra],
        "compare": ["compare", str(results), *extra],
    }[command]  # fmt: skip


BAD_OPTIONS = [
    # non-finite and absurd numbers
    ("run", ["--scale", "inf"], "expected a finite number"),
    ("run", ["--scale", "nan"], "expected a finite number"),
    ("run", ["--scale", "1e400"], "expected a finite number"),
    ("run", ["--scale", "-1"], "must be > 0"),
    ("run", ["--scale", "1e12"], "fewer than one buyer agent at this scale"),
    ("run", ["--seed", "-1"], "must be at least 0"),
    ("run", ["--seed", str(2**64)], "must be at most"),
    ("run", ["-r", "0"], "must be at least 1"),
    ("run", ["-r", "2000000"], "at most 1,000,000 runs in one batch"),
    ("run", ["-w", "100000"], "must be at most"),
    ("run", ["--chunk-size", "0"], "must be at least 1"),
    ("run", ["--chunk-size", "1e3"], "expected a whole number"),
    ("sweep", ["-w", "0"], "must be at least 1"),
    ("calibrate", ["--budget", "5"], "--budget: must be at least 8"),
    ("calibrate", ["--budget", "10000000"], "--budget: must be at least 8 and at most 1,000,000"),
    ("sensitivity", ["--n", "3"], "--n: must be a power of 2"),
    ("sensitivity", ["--n", "0"], "must be at least 1"),
    ("sensitivity", ["--n", "524288"], "runs; the limit is 1,000,000 runs in one batch"),
    ("sensitivity", ["--scale", "inf"], "expected a finite number"),
    ("sensitivity", ["-r", "0"], "must be at least 1"),
    ("sensitivity", ["--seed", "-3"], "must be at least 0"),
    ("validate-model", ["--scale", "nan"], "expected a finite number"),
    ("validate-model", ["-r", "0"], "must be at least 1"),
    ("validate-model", ["--products", "-1"], "must be at least 0"),
    ("validate-model", ["--month", "2024-13"], "--month"),
    ("fit-appeals", ["--scale", "inf"], "expected a finite number"),
    ("fit-appeals", ["--replications", "0"], "must be at least 1"),
    ("fit-appeals", ["--iterations", "-1"], "must be at least 0"),
    ("fit-appeals", ["--iterations", "100000"], "must be at most 10000"),
    ("fit-appeals", ["--seed", "-1"], "must be at least 0"),
    ("fit-appeals", ["--name", "../elsewhere"], "--name: must be a plain name"),
    ("fit-appeals", ["--through", "2024-13"], "--through"),
    ("fit-appeals", ["--set", "buyers.outside_value=1", "--set", "buyers.outside_value=2"], "given twice"),
    ("bench", ["--nest-lambda", "inf"], "expected a finite number"),
    ("bench", ["--nest-lambda", "1.5"], "must be at most 1"),
    ("bench", ["--nests", "10", "--products", "5"], "--nests: at most one nest per product"),
    ("bench", ["--repeat", "0"], "must be at least 1"),
    ("bench", ["--naive-max", "1000000000"], "must be at most"),
    ("bench", ["--products", "100000"], "must be at most"),
    ("dashboard", ["--scale", "inf"], "expected a finite number"),
    ("dashboard", ["-r", "0"], "must be at least 1"),
    ("dashboard", ["--port", "-1"], "must be at least 0"),
    ("plot", ["--dpi", "0"], "--dpi: must be in 20..1200"),
    ("rerun", ["-5"], "must be at least 0"),
    # sizes that would end in MemoryError, refused before anything runs
    ("run", ["--scale", "0.00001"], "more than the limit of 20,000,000 a month"),
    ("run", ["--scale", "0.00001", "--dry-run"], "more than the limit of 20,000,000 a month"),
    ("fit-appeals", ["--scale", "0.000001"], "more than the limit of 20,000,000 a month"),
    ("bench", ["--buyers", "1000000000", "--products", "5000"], "the population needs about"),
]


@pytest.mark.parametrize("command, extra, says", BAD_OPTIONS, ids=[f"{c} {' '.join(e)}" for c, e, _ in BAD_OPTIONS])
def test_a_bad_option_exits_2_and_writes_nothing(
    command: str, extra: list[str], says: str, tmp_path: Path, results: Path, calibration: Path
) -> None:
    refused(command_line(command, extra, tmp_path, results, calibration), says, tmp_path / "out")
    assert not (tmp_path / "overlay.yaml").exists() and not (tmp_path / "out.png").exists()


def test_a_batch_that_would_not_fit_in_memory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "physical_memory", lambda: 2 * 10**9)  # a machine of 2 GB
    refused(["run", str(TINY), "--scale", "0.01", "-w", "4", "--out", str(tmp_path / "out")],
            "need about", tmp_path / "out")  # fmt: skip
    err = refused(["run", str(TINY), "--scale", "0.01", "-w", "4", "--out", str(tmp_path / "out")], "this machine has 2.0 GB")
    assert "use a larger scale or fewer --workers" in err


# --------------------------------------------------------------------------- sweeping the scale


def test_a_swept_scale_is_the_runs_scale_and_reruns_identically(tmp_path: Path) -> None:
    sweep = tmp_path / "scale.yaml"
    sweep.write_text(f"base: {TINY}\ndesign: grid\nreplications: 2\nparameters:\n  - {{path: scale, values: [250, 500]}}\n")
    out = tmp_path / "out"
    assert cli.main(["sweep", str(sweep), "--executor", "serial", "-q", "--out", str(out)]) == 0
    res = store.load_results(out)
    assert res.runs.groupby("point")["scale"].first().tolist() == [250.0, 500.0]
    assert (res.runs["status"] == "ok").all()
    for run_id in (0, 3):
        assert cli.main(["rerun", str(out), str(run_id)]) == 0


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize("sets, says", [
    (["products.A1.name=A9"], "<--set products.A1.name>:1: products.A1.name: cannot rename an item"),
    (["stores[0].brand=B"], "cannot rename an item"),
    (["extends=other.yaml"], "<--set extends>:1: extends: cannot be set: 'extends' is read before any --set applies"),
    (["products.A1.price=1", "products.A1.price=2"], "--set products.A1.price: given twice (1 and 2)"),
    (["products.A1.price=240000", "products[0].price=260000"], "names the same value as 'products.A1.price' (products[0].price)"),
    (["products.A1.price=240000", "products[name=A1].price=260000"], "names the same value as 'products.A1.price'"),
    (["buyers={price_sensitivity: 1}", "buyers.outside_value=2"], "lies inside 'buyers', which sets buyers whole"),
])  # fmt: skip
def test_an_override_that_would_be_ignored_or_ambiguous_is_refused(sets: list[str], says: str, tmp_path: Path) -> None:
    argv = ["run", str(TINY), *RUN, "--out", str(tmp_path / "out")]
    refused([*argv, *(a for s in sets for a in ("--set", s))], says, tmp_path / "out")


def test_an_end_set_on_purpose_cuts_the_scenario_short(tmp_path: Path) -> None:
    """Items after an ``end`` set by the caller, or inherited from a longer scenario, are not errors."""
    assert main(["run", str(TINY), *RUN, "--set", "end=2024-05", "--out", str(tmp_path / "a")])[0] == 0
    shorter = tiny_child(tmp_path, "shorter", "end: 2024-05\n")
    code, err = main(["validate", str(shorter)])
    assert code == 0, err


# --------------------------------------------------------------------------- calibration files


@pytest.mark.parametrize("parameters, field, says", [
    (["{path: products.A2.appeal, offset: true, low: -1, high: 1, prior: normal, mean: 40, sd: 0.1}"],
     "parameters[0].mean", "has 0 of its mass inside [-1, 1]"),
    (["{path: buyers.outside_value, low: 0.5, high: 2.5}", "{path: 'buyers[outside_value]', low: 0.5, high: 2.5}"],
     "parameters[1].path", "not in the base scenario"),
    (["{path: products.A1.appeal, low: -1, high: 1}", "{path: 'products[0].appeal', low: -1, high: 1}"],
     "parameters[1].path", "parameter 'products[0].appeal' appears twice (as 'products.A1.appeal', both products[0].appeal)"),
    (["{path: scale, low: 100, high: 500}"], "parameters[0].path", "it cannot be fitted"),
])  # fmt: skip
def test_a_bad_calibration_parameter_is_refused_before_the_first_round(
    parameters: list[str], field: str, says: str, calibration: Path, tmp_path: Path
) -> None:
    path = calibration_file(calibration, *parameters, name=f"bad{abs(hash(says)) % 10**6}")
    err = refused(["calibrate", str(path), "--out", str(tmp_path / "out"), "-q"], says, tmp_path / "out")
    assert err.startswith(f"{path}:") and f": {field}: " in err.splitlines()[0], err


def test_a_lever_that_is_also_a_parameter_under_another_spelling_is_refused(calibration: Path, tmp_path: Path) -> None:
    path = calibration_file(calibration, "{path: products.A1.appeal, low: -1, high: 1}",
                            "{path: buyers.outside_value, low: 0.5, high: 2.5}", name="levers")  # fmt: skip
    refused(["sensitivity", str(path), "--lever", "products[0].appeal=-1:1", "--out", str(tmp_path / "out")],
            "factor 'products[0].appeal' appears twice", tmp_path / "out")  # fmt: skip


# --------------------------------------------------------------------------- files that are not files


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, rather than hang the suite, if the block takes longer than ``seconds`` (a FIFO read would block)."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: reading a FIFO or a device?")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("role", ["scenario", "run", "sweep", "reported", "calibration", "tidy table", "manifest", "part"])
def test_a_fifo_is_refused_before_it_is_read(role: str, tmp_path: Path, results: Path, calibration: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = {
        "scenario": ["validate", str(fifo)],
        "run": ["run", str(fifo), "--out", str(tmp_path / "out")],
        "sweep": ["sweep", str(fifo), "--out", str(tmp_path / "out")],
        "reported": ["compare", str(results), "--reported", str(fifo)],
        "calibration": ["calibrate", str(fifo), "--out", str(tmp_path / "out")],
    }.get(role)
    if role == "tidy table":
        (tmp_path / "targets.csv").unlink(missing_ok=True)
        os.mkfifo(tmp_path / "targets.csv")
        argv = ["calibrate", str(calibration_file(tmp_path, "{path: buyers.outside_value, low: 0.5, high: 2.5}")),
                "--out", str(tmp_path / "out")]  # fmt: skip
    if role in ("manifest", "part"):
        folder = tmp_path / "results"
        shutil.copytree(results, folder)
        target = folder / ("manifest.json" if role == "manifest" else "runs/part-00000001.parquet")
        target.unlink()
        os.mkfifo(target)
        argv = ["compare", str(folder)]
    assert argv is not None
    with deadline(60):
        err = refused(argv, "is not a regular file")
    assert "FIFO" in err or "regular file" in err


def test_a_device_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with deadline(60):
        refused(["validate", "/dev/zero"], "/dev/zero:1: is not a regular file (a FIFO, a device or a socket)")


# --------------------------------------------------------------------------- signals, temporary files


def test_sigterm_stops_a_batch_as_ctrl_c_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM mid-batch: the manifest says ``interrupted``, the message how to continue; --resume finishes it."""
    real = chunks.execute

    def execute(spec: Any) -> Any:
        if spec.run_id == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(spec)

    out = tmp_path / "run"
    argv = ["run", str(TINY), "-r", "6", "--seed", "5", "--chunk-size", "1", *RUN, "--out", str(out)]
    monkeypatch.setattr(chunks, "execute", execute)
    code, err = main(argv)
    assert code == 128 + signal.SIGTERM, err
    # Runs 0-2 are done when run 3 starts; the last of them may not be stored yet (a chunk in flight).
    stored = re.fullmatch(rf"interrupted: ([23]) of 6 runs are stored in {re.escape(str(out))}; continue with --resume", err.strip())
    assert stored, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["status"], manifest["finished"]) == ("interrupted", int(stored.group(1)))
    assert not [p for p in out.rglob("*") if ".tmp" in p.name] and not (out / ".sim-lock").exists()
    monkeypatch.undo()
    assert main([*argv, "--resume"])[0] == 0
    assert store.load_results(out).completeness.complete


@pytest.mark.parametrize("stop", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), KeyboardInterrupt()])
def test_export_leaves_no_temporary_file_however_it_stops(
    stop: BaseException, results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def to_csv(self: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_text("run_id,scen")  # half a file, then the disk is full (or Ctrl-C)
        raise stop

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    dest = tmp_path / "csv"
    code, err = main(["export", str(results), "--csv", "--to", str(dest)])
    assert code == (1 if isinstance(stop, OSError) else 130), err
    assert "Traceback" not in err and "internal error" not in err
    assert not list(dest.iterdir()), list(dest.iterdir())  # no temporary file, no torn CSV, no lock


def test_a_report_on_a_full_disk_leaves_no_temporary_file(results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def write_bytes(self: Path, data: bytes) -> int:
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    out = tmp_path / "report"
    out.mkdir()
    refused(["report", str(results), "--out", str(out / "r.html")], "cannot write: No space left on device")
    assert not list(out.iterdir())


@pytest.mark.slow
def test_report_and_plot_write_nothing_outside_their_output_and_a_temporary_folder(results: Path, tmp_path: Path) -> None:
    """matplotlib's cache goes to a temporary folder of the command, removed when it ends; not to ``$HOME``."""
    home, tmp, cwd, out = (tmp_path / d for d in ("home", "tmp", "cwd", "out"))
    for d in (home, tmp, cwd, out):
        d.mkdir()
    env = {**cli_env(), "HOME": str(home), "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MPLCONFIGDIR", None)
    env.pop("XDG_CACHE_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    code = ("import sys; from sim import cli; sys.exit(cli.main(sys.argv[1:4]) or cli.main(sys.argv[4:]))")
    argv = ["report", str(results), "--out=" + str(out / "r.html"), "plot", str(results), "--what", "brands", "--out", str(out / "b.svg")]
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["b.svg", "r.html"]
    assert not list(home.rglob("*")) and not list(tmp.rglob("*")) and not list(cwd.rglob("*"))


# --------------------------------------------------------------------------- engine limits (RELIABILITY.md's open items)


def test_budget_spreads_beyond_float32_are_refused_and_the_limit_runs_clean(tmp_path: Path) -> None:
    refused(["run", str(TINY), *RUN, "--set", "buyers.income_elasticity=10", "--set", "buyers.budget_sigma=2",
             "--out", str(tmp_path / "a")], "income_elasticity x budget_sigma is 20; at most 12", tmp_path / "a")  # fmt: skip
    refused(["validate", str(tiny_child(tmp_path, "wide", "buyers: {budget_sigma: 6}\n"))], "less than or equal to 5")
    # At the limit, the numpy kernel (whose float32 power overflowed) runs without a warning (warnings are errors).
    env = {**cli_env(), "SIM_KERNEL": "numpy"}
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(TINY), "--scale", "2", "--executor", "serial", "-q",
                           "--set", "buyers.income_elasticity=4", "--set", "buyers.budget_sigma=3", "--set", "end=2024-04",
                           "--out", str(tmp_path / "b")], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
