"""Concurrent writers on one results folder: it always ends holding one batch, never a mixed, duplicated or
mislabelled one.

Each round starts, at once, three or four ``sim run`` processes on one folder, chosen among a writer of the
batch of seed 21, a writer of the batch of seed 22, a resumer of either, and a ``--force`` of either; each
starts after a random delay (0-0.3 s), and one of them may be sent SIGKILL or SIGTERM at a random moment.
Whatever happened, the folder then holds at most one batch, every stored run of it equal to the same run of
an uninterrupted batch of that seed (no run twice, no run of the other seed, no manifest naming the wrong
seed), and a ``--resume`` of the batch it holds ends complete and identical to the uninterrupted one. The
processes are forked by the fork server of the kill campaign (tests/data/reliability/killer.py), 20 rounds,
seeded, in about 30 s.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY
from pandas.testing import assert_frame_equal
from test_reliability_faults import Killer, assert_no_debris

from sim import cli
from sim.runs import store

RUNS = 6
SEEDS = (21, 22)
ROUNDS = 20
#: Whatever a round does, it must end within this many seconds.
ROUND_SECONDS = 30


def batch_argv(folder: Path, seed: int, *extra: str) -> list[str]:
    return ["run", str(TINY), "-r", str(RUNS), "--seed", str(seed), "--scale", "500", "--executor", "serial",
            "--chunk-size", "1", "-q", "--out", str(folder), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[int, store.Results]:
    """The uninterrupted batch of each seed."""
    out = {}
    for seed in SEEDS:
        folder = tmp_path_factory.mktemp(f"reference-{seed}") / "run"
        assert cli.main(batch_argv(folder, seed)) == 0
        out[seed] = store.load_results(folder)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    k = Killer(tmp_path_factory.mktemp("stress"))
    yield k
    k.close()


def assert_one_batch(folder: Path, references: dict[int, store.Results]) -> int | None:
    """The folder holds nothing, or runs of one batch only, each equal to the reference run; returns its seed."""
    if not (folder / store.MANIFEST).exists():
        assert not list((folder / "runs").glob("part-*")) if (folder / "runs").exists() else True
        return None
    got = store.load_results(folder, allow_partial=True)  # refuses a run stored twice
    seed = got.manifest["seed"]
    assert got.manifest["request"]["seed"] == seed
    ref = references[seed]
    if got.runs.empty:  # the first manifest is written, no run yet
        assert got.sales.empty and got.completeness is not None and got.completeness.finished == 0
        return int(seed)
    ids = got.runs["run_id"].tolist()
    assert set(ids) <= set(range(RUNS)), ids
    want_runs = ref.runs[ref.runs["run_id"].isin(ids)].reset_index(drop=True)
    assert_frame_equal(got.runs.drop(columns="seconds"), want_runs.drop(columns="seconds"), check_exact=True)
    want_sales = ref.sales[ref.sales["run_id"].isin(ids)].reset_index(drop=True)
    assert_frame_equal(got.sales, want_sales, check_exact=True)
    assert got.completeness is not None and got.completeness.finished == len(ids)
    if got.manifest["status"] == "complete":
        assert sorted(ids) == list(range(RUNS))
    return int(seed)


def participants(rng: random.Random, folder: Path, stderr: Path) -> list[dict[str, Any]]:
    """Three or four of: a writer of each seed, a resumer, a --force; random delays; maybe one signalled."""
    kinds = [("write", 21), ("write", 22), ("resume", rng.choice(SEEDS)), ("force", rng.choice(SEEDS))]
    chosen = rng.sample(kinds, rng.choice((3, 4)))
    out = []
    for i, (kind, seed) in enumerate(chosen):
        extra = {"write": (), "resume": ("--resume",), "force": ("--force",)}[kind]
        out.append({"argv": batch_argv(folder, seed, *extra), "delay": round(rng.uniform(0, 0.3), 3),
                    "stderr": str(stderr / f"{i}-{kind}-{seed}.txt")})  # fmt: skip
    if rng.random() < 0.5:
        victim = rng.choice(out)
        victim["signal"] = rng.choice((signal.SIGKILL, signal.SIGTERM))
        victim["signal_after"] = round(rng.uniform(0.02, 0.5), 3)
    return out


@pytest.mark.slow
def test_concurrent_writers_resumers_and_force_leave_one_consistent_batch(
    tmp_path: Path, references: dict[int, store.Results], server: Killer
) -> None:
    rng = random.Random(20261207)
    outcomes: dict[str, int] = {}
    for n in range(ROUNDS):
        folder, stderr = tmp_path / f"round-{n}", tmp_path / f"stderr-{n}"
        stderr.mkdir()
        group = participants(rng, folder, stderr)
        t0 = time.monotonic()
        statuses = server.group(group)
        assert time.monotonic() - t0 < ROUND_SECONDS, f"round {n} took too long"
        for req, status in zip(group, statuses, strict=True):
            text = Path(req["stderr"]).read_text()
            assert "internal error" not in text and "Traceback" not in text, text
            # 0 done; 2 refused (another writer holds the folder, or it is not empty); killed; 143 SIGTERM
            assert status in (0, 2, -signal.SIGKILL, 128 + signal.SIGTERM), (req["argv"], status, text)
            if status == 2:
                assert ("another sim process is writing this folder" in text or "not empty" in text
                        or "cannot resume: the folder holds a different batch" in text), text  # fmt: skip
            key = "done" if status == 0 else "refused" if status == 2 else "stopped"
            outcomes[key] = outcomes.get(key, 0) + 1
        seed = assert_one_batch(folder, references)
        if seed is None:
            continue
        # Whatever the round left, the batch it holds can be finished, and then equals the uninterrupted one.
        assert cli.main(batch_argv(folder, seed, "--resume")) == 0
        assert_one_batch(folder, references)
        got = store.load_results(folder)
        assert got.completeness is not None and got.completeness.complete
        assert_no_debris(folder)
        assert not (folder / ".sim-lock").exists()
    print(f"stress outcomes over {ROUNDS} rounds: {outcomes}")  # shown with -s; RELIABILITY.md quotes it
    # The rounds did make writers meet: many were refused, many finished.
    assert outcomes.get("refused", 0) >= ROUNDS // 2 and outcomes.get("done", 0) >= ROUNDS // 2, outcomes
