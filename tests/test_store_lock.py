"""One writer per results folder: the lock every writing command takes, and what readers and writers see
of another process's lock (sim.runs.lock).

A second writer exits 2 naming the holder (pid, command, start); a lock left by a killed writer is taken
over; ``--force`` and ``--resume`` are refused while another process writes, and the folder is unchanged;
the lock file is removed when its writer ends. The store refuses a folder that holds a run twice, and says
which. Another process holds the lock in these tests: a small Python program (:func:`holder`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, TINY, cli_env

from sim import cli
from sim.runs import lock, store
from sim.scenario.yamlio import InputError

RUN = ["-r", "4", "--seed", "5", "--scale", "500", "--executor", "serial", "--chunk-size", "1", "-q"]
SWEEP = DATA / "reliability" / "kill_sweep.yaml"

#: Takes the lock of the folder argv[1] as a ``sim run`` would, says so, and holds it until stdin closes.
HOLDER = """
import sys
from sim.runs import lock
from sim.runs.manifest import COMMAND_LINE
COMMAND_LINE.set(["sim", "run", "holder.yaml", "--out", sys.argv[1]])
lock.acquire(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lock") / "run"
    assert cli.main(["run", str(TINY), *RUN, "--out", str(out)]) == 0
    return out


@pytest.fixture
def holder() -> Iterator[Any]:
    """``holder(folder)`` starts a process that holds ``folder``'s lock; it ends with the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(folder: Path) -> subprocess.Popen[str]:
        folder.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=cli_env(), text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        for f in (p.stdin, p.stdout):
            if f is not None:
                f.close()


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def writers(results: Path, folder: Path) -> dict[str, list[str]]:
    """A command of each kind that writes ``folder`` (a copy of ``results`` where it needs one)."""
    return {
        "run": ["run", str(TINY), *RUN, "--out", str(folder)],
        "run --force": ["run", str(TINY), *RUN, "--out", str(folder), "--force"],
        "run --resume": ["run", str(TINY), *RUN, "--out", str(folder), "--resume"],
        "sweep": ["sweep", str(SWEEP), "--executor", "serial", "-q", "--out", str(folder)],
        "rerun --out": ["rerun", str(results), "1", "--out", str(folder)],
        "export --to": ["export", str(results), "--csv", "--to", str(folder)],
    }


@pytest.mark.parametrize("kind", ["run", "run --force", "run --resume", "sweep", "rerun --out", "export --to"])
def test_a_second_writer_exits_2_naming_the_holder_and_changes_nothing(
    kind: str, results: Path, tmp_path: Path, holder, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "busy"
    if kind in ("run --force", "run --resume"):
        shutil.copytree(results, folder)
    p = holder(folder)
    before = snapshot(folder)
    assert cli.main(writers(results, folder)[kind]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: another sim process is writing this folder: pid {p.pid} on " in err, err
    assert f"`sim run holder.yaml --out {folder}`, since " in err and "Traceback" not in err
    assert snapshot(folder) == before


@pytest.mark.parametrize("argv", [["export", "{f}", "--csv"], ["report", "{f}"], ["plot", "{f}", "--what", "fan", "--out", "{f}/fan.png"]])
def test_writing_into_a_results_folder_another_process_writes_is_refused(
    argv: list[str], results: Path, tmp_path: Path, holder, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "busy"
    shutil.copytree(results, folder)
    holder(folder)
    before = snapshot(folder)
    assert cli.main([a.replace("{f}", str(folder)) for a in argv]) == 2
    assert "another sim process is writing this folder" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_when_the_holder_ends_the_lock_file_is_gone_and_the_folder_free(tmp_path: Path, holder) -> None:
    folder = tmp_path / "out"
    p = holder(folder)
    assert lock.current_holder(folder) is not None and lock.current_holder(folder).pid == p.pid
    assert p.stdin is not None
    p.stdin.close()  # the holder releases and ends
    p.wait(timeout=30)
    assert not (folder / lock.LOCK_FILE).exists()
    assert cli.main(["run", str(TINY), *RUN, "--out", str(folder)]) == 0
    assert not (folder / lock.LOCK_FILE).exists()


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path: Path, holder, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "out"
    p = holder(folder)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    left = lock.current_holder(folder)  # the file stays, naming a process that is gone
    assert left is not None and left.pid == p.pid and not left.alive()
    assert cli.main(["run", str(TINY), *RUN, "--out", str(folder)]) == 0
    err = capsys.readouterr().err
    assert f"took over the lock left by a writer that is no longer running (pid {p.pid} on " in err
    assert not (folder / lock.LOCK_FILE).exists()
    assert store.load_results(folder).completeness.complete


def test_a_reader_says_the_batch_is_being_written(results: Path, tmp_path: Path, holder, capsys) -> None:
    folder = tmp_path / "running"
    shutil.copytree(results, folder)
    for table in ("runs", "sales"):
        (folder / table / "part-00000003.parquet").unlink()
    p = holder(folder)
    assert cli.main(["compare", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "3 of 4 runs finished (a sim process is writing it now: pid" in err and str(p.pid) in err
    assert "continue with --resume or pass --allow-partial" in err


def test_the_lock_is_reentrant_in_a_process_and_its_file_goes_with_the_last_release(tmp_path: Path) -> None:
    assert lock.acquire(tmp_path) is None
    assert lock.acquire(tmp_path) is None
    lock.release(tmp_path)
    assert (tmp_path / lock.LOCK_FILE).exists()
    holder = lock.current_holder(tmp_path)
    assert holder is not None and holder.is_this_process()
    lock.release(tmp_path)
    assert not (tmp_path / lock.LOCK_FILE).exists()


def test_a_check_that_refuses_under_the_lock_leaves_the_lock_file_as_it_was(tmp_path: Path) -> None:
    (tmp_path / lock.LOCK_FILE).write_text('{"pid": 999999999, "host": "gone", "command": "sim run", "started": "x"}')
    before = snapshot(tmp_path)

    def refuse() -> None:
        raise InputError("no")

    with pytest.raises(InputError):
        lock.acquire(tmp_path, refuse)
    assert snapshot(tmp_path) == before
    fresh = tmp_path / "new"
    fresh.mkdir()
    with pytest.raises(InputError):
        lock.acquire(fresh, refuse)
    assert not list(fresh.iterdir())  # the lock file it made is gone again


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_a_lock_file_that_is_not_a_regular_file_is_refused(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    where = tmp_path / "out"
    where.mkdir()
    {"symlink": lambda p: p.symlink_to(target), "fifo": os.mkfifo, "folder": Path.mkdir}[kind](where / lock.LOCK_FILE)
    with pytest.raises(InputError, match="cannot lock the folder|is not a regular file"):
        lock.acquire(where)
    assert target.read_text() == "keep"


# ------------------------------------------------------------------ a run stored twice


def test_a_folder_that_holds_a_run_twice_is_refused_naming_the_run_and_its_parts(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "twice"
    shutil.copytree(results, folder)
    for table in ("runs", "sales"):  # a second batch's chunk of run 2, as two writers at once left it
        shutil.copy(folder / table / "part-00000002.parquet", folder / table / "part-00000099.parquet")
    with pytest.raises(InputError, match=r"run ids stored more than once: 2 \(part-00000002.parquet and part-00000099.parquet\)"):
        store.load_results(folder)
    for argv in (["compare", str(folder)], ["run", str(TINY), *RUN, "--out", str(folder), "--resume"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "run ids stored more than once: 2" in err and "Traceback" not in err
