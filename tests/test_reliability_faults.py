"""Faults: a batch killed (SIGKILL) at any point and resumed gives the tables of an uninterrupted batch;
a disk that fills up or turns read-only mid-batch gives a clean error and leaves no corrupt part;
nothing is written outside the results folder; nothing stored is a pickle.

The kill campaign is deterministic: a ``sim run`` (or ``sim sweep``) in a child process counts the
moments of its batch (a run starting, half-way through its months, ending; a part, the manifest or the
design table opened, half written, synced, renamed) and sends itself SIGKILL at the N-th one, for N
spread over the whole batch. Children are forked by a server that has already imported ``sim``
(tests/data/reliability/killer.py), so a kill costs a fraction of a second, not an interpreter
start-up. Two more kills hit real ``python -m sim run`` processes with two workers, when the clock says.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DATA, TINY, cli_env
from pandas.testing import assert_frame_equal

from sim import cli
from sim.runs import store

SWEEP = DATA / "reliability" / "kill_sweep.yaml"

#: The killed batch: 6 runs of tiny.yaml, one per chunk, coarse scale, in the batch's own process.
RUNS = 6
RUN_ARGS = ["-r", str(RUNS), "--seed", "5", "--scale", "500", "--executor", "serial", "--chunk-size", "1", "-q"]
SWEEP_ARGS = ["--executor", "serial", "--chunk-size", "1", "-q"]

KILLER = DATA / "reliability" / "killer.py"


class Killer:
    """A fork server (tests/data/reliability/killer.py) that runs ``sim ARGV`` in children killed at a moment."""

    def __init__(self, folder: Path):
        # One thread when it forks: one BLAS thread, and no background thread in Arrow's jemalloc.
        threads = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env = {**cli_env(), **threads, "JE_ARROW_MALLOC_CONF": "background_thread:false"}
        env.pop("PYTHONWARNINGS")
        self.folder, self.n = folder, 0
        self.proc = subprocess.Popen(
            [sys.executable, str(KILLER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, cwd=folder
        )

    def __call__(self, argv: list[str], kill_at: int = 0, log: Path | None = None) -> int:
        """Exit status of ``sim ARGV`` in a child killed at moment ``kill_at`` (-9 for SIGKILL)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.n += 1
        self.stderr = self.folder / f"stderr-{self.n}.txt"
        request = {"argv": argv, "kill_at": kill_at, "log": str(log) if log else None, "stderr": str(self.stderr)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the fork server died"
        return int(json.loads(answer)["status"])

    def group(self, requests: list[dict[str, Any]]) -> list[int]:
        """Exit statuses of several ``sim`` commands run at once (see killer.py's ``group`` requests)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"group": requests}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the fork server died"
        return [int(s) for s in json.loads(answer)["statuses"]]

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def killer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    k = Killer(tmp_path_factory.mktemp("killer"))
    yield k
    k.close()


# -------------------------------------------------------------- the checks


def assert_same_results(out: Path, ref: Path, runs: int) -> None:
    """``out`` holds exactly the tables of ``ref``: no run lost, none twice, no debris."""
    got, want = store.load_results(out), store.load_results(ref)
    assert got.runs["run_id"].tolist() == list(range(runs)), "a run is lost or stored twice"
    assert not got.sales.duplicated(["run_id", "month", "market", "model"]).any()
    assert_frame_equal(got.runs.drop(columns="seconds"), want.runs.drop(columns="seconds"), check_exact=True)
    assert_frame_equal(got.sales, want.sales, check_exact=True)
    if want.design is not None:
        assert got.design is not None
        assert_frame_equal(got.design, want.design, check_exact=True)
    m = got.manifest
    assert (m["status"], m["asked"], m["finished"], m["failed"]) == ("complete", runs, runs, 0)
    assert_no_debris(out)


def assert_no_debris(out: Path) -> None:
    """No temporary file, every part readable, a sales part exactly for each runs part."""
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    runs = {p.name for p in (out / "runs").glob("part-*.parquet")}
    sales = {p.name for p in (out / "sales").glob("part-*.parquet")}
    assert runs == sales
    for p in out.rglob("*.parquet"):
        pq.read_table(p)  # raises on a torn file


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted batch (in this process)."""
    ref = tmp_path_factory.mktemp("reference") / "run"
    assert cli.main(["run", str(TINY), *RUN_ARGS, "--out", str(ref)]) == 0
    return ref


@pytest.fixture(scope="module")
def moments(tmp_path_factory: pytest.TempPathFactory, killer: Killer) -> list[str]:
    """Every moment of the batch, from a child that runs it through without a kill."""
    folder = tmp_path_factory.mktemp("moments")
    log = folder / "moments.txt"
    assert killer(["run", str(TINY), *RUN_ARGS, "--out", str(folder / "run")], log=log) == 0
    return log.read_text().splitlines()


# Kill points among the batch's ~120 moments (see the `moments` fixture; -1 is the last), chosen to
# hit each kind of moment in each phase: before the first manifest exists, inside a run, between a
# chunk's sales part and its runs part, between the runs part and the manifest, after the last write.
KILL_POINTS = [1, 2, 4, 6, 7, 8, 13, 15, 17, 18, 20, 23, 26, 56, 90, 115, -1]


@pytest.mark.slow
def test_the_kill_points_cover_every_kind_of_moment(moments: list[str]) -> None:
    hit = {moments[k - 1 if k > 0 else k].split(" ")[0] for k in KILL_POINTS}
    kinds = {m.split(" ")[0] for m in moments}
    assert len(moments) >= 90 and max(KILL_POINTS) <= len(moments)
    assert hit == kinds == {"opened", "half-written", "synced", "renamed", "run-start", "run-half-way", "run-end"}


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_sigkill_then_resume_equals_an_uninterrupted_batch(
    kill_at: int, tmp_path: Path, reference: Path, moments: list[str], killer: Killer
) -> None:
    at = kill_at if kill_at > 0 else len(moments)
    out = tmp_path / "run"
    argv = ["run", str(TINY), *RUN_ARGS, "--out", str(out)]
    assert killer(argv, kill_at=at) == -signal.SIGKILL, moments[at - 1]
    if not out.exists():  # pragma: no cover - every moment comes after the folder is made
        pytest.fail("no results folder")
    assert cli.main([*argv, "--resume"]) == 0, f"resume after a kill at '{moments[at - 1]}'"
    assert_same_results(out, reference, RUNS)


@pytest.mark.slow
@pytest.mark.parametrize("first, second", [(8, 3), (40, 20)])
def test_a_resume_killed_in_turn_still_ends_identical(
    first: int, second: int, tmp_path: Path, reference: Path, killer: Killer
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(TINY), *RUN_ARGS, "--out", str(out)]
    assert killer(argv, kill_at=first) == -signal.SIGKILL
    assert killer([*argv, "--resume"], kill_at=second) == -signal.SIGKILL
    assert cli.main([*argv, "--resume"]) == 0
    assert_same_results(out, reference, RUNS)


@pytest.mark.slow
def test_a_killed_batch_is_not_overwritten_without_resume_or_force(
    tmp_path: Path, killer: Killer, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(TINY), *RUN_ARGS, "--out", str(out)]
    assert killer(argv, kill_at=30) == -signal.SIGKILL
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli.main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------- sweeps


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ref = tmp_path_factory.mktemp("sweep-reference") / "sweep"
    assert cli.main(["sweep", str(SWEEP), *SWEEP_ARGS, "--out", str(ref)]) == 0
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 4, 11, 23, 36])
def test_sweep_killed_then_resumed_equals_an_uninterrupted_sweep(
    kill_at: int, tmp_path: Path, sweep_reference: Path, killer: Killer
) -> None:
    # Moments 1-4 are the design table's write (before the manifest exists).
    out = tmp_path / "sweep"
    argv = ["sweep", str(SWEEP), *SWEEP_ARGS, "--out", str(out)]
    assert killer(argv, kill_at=kill_at) == -signal.SIGKILL
    assert cli.main([*argv, "--resume"]) == 0
    assert_same_results(out, sweep_reference, 4)


# ------------------------------------------------- real processes, real workers


@pytest.mark.slow
def test_real_sim_run_with_two_workers_killed_by_the_clock(tmp_path: Path, sim_start: Callable[..., Any]) -> None:
    """``python -m sim run -w 2`` killed when its fourth part appears, then resumed."""
    args = ["-r", "8", "--seed", "3", "--scale", "20", "--chunk-size", "1", "-q"]
    ref = tmp_path / "ref"
    assert cli.main(["run", str(TINY), *args, "--executor", "serial", "--out", str(ref)]) == 0
    for i, wait_for in enumerate((4,)):
        out = tmp_path / f"run{i}"
        proc = sim_start("run", str(TINY), *args, "-w", "2", "--out", str(out))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if len(list((out / "runs").glob("part-*.parquet"))) >= wait_for:
                    break
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, "the batch ended before it could be killed"
        assert 0 < len(store.scan_finished(out).run_ids) < 8
        assert cli.main(["run", str(TINY), *args, "--executor", "serial", "--out", str(out), "--resume"]) == 0
        assert_same_results(out, ref, 8)


# ---------------------------------------------------------------- write errors


class _FullFile(io.FileIO):
    """A file on a full disk: half of what is written lands, then ENOSPC."""

    def write(self, data: Any) -> int:
        super().write(memoryview(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FailingDisk:
    """``open`` for sim.runs.store whose N-th file fails: full (ENOSPC after half its bytes) or read-only."""

    def __init__(self, fail_at: int, err: int):
        self.fail_at, self.err, self.n = fail_at, err, 0

    def __call__(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        self.n += 1
        if self.n != self.fail_at:
            return open(path, mode, *args, **kwargs)
        if self.err != errno.ENOSPC:
            raise OSError(self.err, os.strerror(self.err), str(path))
        return _FullFile(path, mode.replace("b", ""))


# The batch's atomic writes: 1 the first manifest; then per chunk its sales part, runs part and the
# manifest (2-4 for the first chunk); last, 3 x RUNS + 2, the final manifest.
WRITE_FAILURES = [
    (1, errno.ENOSPC), (2, errno.ENOSPC), (3, errno.ENOSPC), (4, errno.ENOSPC), (3 * RUNS + 2, errno.ENOSPC),
    (6, errno.EROFS), (9, errno.EACCES),
]


@pytest.mark.parametrize("fail_at, err", WRITE_FAILURES)
def test_a_write_error_mid_batch_is_a_clean_error_and_leaves_no_corrupt_part(
    fail_at: int, err: int, tmp_path: Path, reference: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(TINY), *RUN_ARGS, "--out", str(out)]
    disk = _FailingDisk(fail_at, err)
    monkeypatch.setattr(store, "open", disk, raising=False)
    status = cli.main(argv)
    text = capsys.readouterr().err
    assert status == 1
    assert text.startswith("error: ") and os.strerror(err) in text and "--resume" in text, text
    assert "Traceback" not in text and "internal error" not in text
    assert_no_debris(out)
    monkeypatch.undo()  # the disk is repaired
    assert cli.main([*argv, "--resume"]) == 0
    assert_same_results(out, reference, RUNS)


def test_an_unwritable_results_folder_is_refused_before_any_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.is_relative_to(tmp_path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert cli.main(["run", str(TINY), *RUN_ARGS, "--out", str(tmp_path / "out")]) == 2
    text = capsys.readouterr().err
    assert "cannot prepare the results folder: Permission denied" in text and "Traceback" not in text


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a user that is not root")
def test_a_read_only_folder_mid_batch(
    tmp_path: Path, reference: Path, killer: Killer, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(TINY), *RUN_ARGS, "--out", str(out)]
    assert killer(argv, kill_at=30) == -signal.SIGKILL
    for folder in (out, out / "runs", out / "sales"):
        folder.chmod(0o555)
    try:
        assert cli.main([*argv, "--resume"]) in (1, 2)
        assert "Permission denied" in capsys.readouterr().err
    finally:
        for folder in (out, out / "runs", out / "sales"):
            folder.chmod(0o755)
    assert cli.main([*argv, "--resume"]) == 0
    assert_same_results(out, reference, RUNS)


# ------------------------------------------------------ where results go, and how


def test_nothing_is_written_outside_the_results_folder(tmp_path: Path) -> None:
    """A sweep with two worker processes, from an empty working folder, with its own temporary folder."""
    inputs, cwd, tmp, home = (tmp_path / d for d in ("in", "cwd", "tmp", "home"))
    for d in (inputs, cwd, tmp, home):
        d.mkdir()
    (inputs / "tiny.yaml").write_bytes(TINY.read_bytes())
    (inputs / "sweep.yaml").write_text(SWEEP.read_text().replace("../tiny.yaml", "tiny.yaml"))
    before = {p: p.read_bytes() for p in inputs.iterdir()}
    env = {**cli_env(), "TMPDIR": str(tmp), "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "sweep", str(inputs / "sweep.yaml"), "-w", "2", "--chunk-size", "1", "-q", "--out", str(out)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(out))
    assert written == ["in/sweep.yaml", "in/tiny.yaml"]
    assert {p: p.read_bytes() for p in inputs.iterdir()} == before
    assert not list(cwd.iterdir()) and not list(tmp.iterdir()) and not list(home.iterdir())
    assert_no_pickle(out)


def assert_no_pickle(out: Path) -> None:
    """Every stored file is JSON or Parquet of plain columns: nothing a reader would have to unpickle."""
    plain = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string, pa.types.is_boolean)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert p.suffix in (".json", ".parquet"), p
        if p.suffix == ".json":
            json.loads(p.read_text())
            continue
        schema = pq.read_schema(p)
        for f in schema:
            assert any(is_type(f.type) for is_type in plain), f"{p.name}: column {f.name} is {f.type}"
        meta = schema.metadata or {}
        assert set(meta) <= {b"pandas"}, meta.keys()
        json.loads(meta.get(b"pandas", b"{}"))  # the pandas metadata is JSON, not a pickle


def test_no_pickle_in_stored_results(reference: Path, tmp_path: Path) -> None:
    assert_no_pickle(reference)
    assert cli.main(["export", str(reference), "--csv", "--to", str(tmp_path / "csv")]) == 0
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["runs.csv", "sales.csv"]
