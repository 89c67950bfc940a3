"""Batches: seeds, executors, the streaming store, failures, resume after SIGKILL, rerun."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, tiny_scenario
from pandas.testing import assert_frame_equal

from sim.cli import main
from sim.runs import batch, chunks, executors, store
from sim.runs.run import make_specs
from sim.scenario.yamlio import InputError


def _batch(tmp_path: Path, specs, name: str, **kw) -> store.Results:
    out = store.prepare_output(tmp_path / name)
    batch.run_batch(specs, out, {"request": {"kind": "test"}}, progress=False, **kw)
    return store.load_results(out)


def _same(a: store.Results, b: store.Results) -> None:
    """Identical tables, bit for bit, except the wall time of each run."""
    assert_frame_equal(a.runs.drop(columns="seconds"), b.runs.drop(columns="seconds"), check_exact=True)
    assert_frame_equal(a.sales, b.sales, check_exact=True)


# ----------------------------------------------------------------------- tables


def test_the_sales_table_has_its_fixed_types_whatever_its_columns_come_as():
    from sim.runs.run import SALES_COLUMNS, SALES_MEASURES, STRING_COLUMNS, empty_sales, execute, sales_frame

    spec = make_specs(tiny_scenario({}), 1, seed=2)[0]
    columns = {c: list(v) for c, v in execute(spec).sales.items()}  # Python lists of str, int and float
    # What the table was built as before each column was converted on its own: a frame, then its types.
    types = {"run_id": "int64", "replicate": "int64", **{c: "string" for c in STRING_COLUMNS}}
    types.update({m.column: "int64" if m.kind == "count" else "float64" for m in SALES_MEASURES})
    expected = pd.DataFrame(columns).astype(types)[list(SALES_COLUMNS)]
    assert_frame_equal(sales_frame(columns), expected, check_exact=True)
    as_arrays = {c: np.array(v, dtype=str if c in STRING_COLUMNS else None) for c, v in columns.items()}
    assert_frame_equal(sales_frame(as_arrays), expected, check_exact=True)
    assert_frame_equal(empty_sales(), expected.iloc[:0].reset_index(drop=True), check_exact=True)


# ----------------------------------------------------------------------- seeds


def test_seeds_of_all_runs_distinct(tiny):
    specs = make_specs(tiny, 200, seed=3)
    keys = {(s.entropy, s.spawn_key) for s in specs}
    assert len(keys) == 200
    states = {tuple(s.seed_sequence().generate_state(4)) for s in specs}
    assert len(states) == 200
    # spawn children of the root, as SeedSequence.spawn makes them
    children = np.random.SeedSequence(3).spawn(200)
    assert [s.spawn_key for s in specs] == [c.spawn_key for c in children]


def test_seed_identity_is_recorded(tmp_path, tiny):
    res = _batch(tmp_path, make_specs(tiny, 4, seed=9), "o", executor="serial")
    assert list(res.runs["seed_entropy"]) == ["9"] * 4
    assert list(res.runs["spawn_key"]) == ["0", "1", "2", "3"]
    assert res.runs[["seed_entropy", "spawn_key"]].drop_duplicates().shape[0] == 4


def test_common_random_numbers_across_scenarios(tiny):
    """Same root seed: replicate r of two scenarios draws the same stream, so paired differences
    come from the scenarios and not from noise."""
    cosmetic = tiny_scenario({"description": "another text"})
    ra, sa = chunks.run_chunk(make_specs(tiny, 3, seed=5))
    rb, sb = chunks.run_chunk(make_specs(cosmetic, 3, seed=5))
    assert_frame_equal(sa, sb)
    # B1's price cut moved from 2024-06 to 2024-09: the months before buyers can anticipate it
    # (one month ahead) are the same draws, hence the same sales.
    later = tiny_scenario({"events[0].month": "2024-09"})
    rc, sc = chunks.run_chunk(make_specs(later, 3, seed=5))
    assert (ra[["seed_entropy", "spawn_key"]] == rc[["seed_entropy", "spawn_key"]]).all().all()
    before = sa["month"] < "2024-05"
    assert_frame_equal(sa[before].reset_index(drop=True), sc[sc["month"] < "2024-05"].reset_index(drop=True))
    assert not sa[~before].reset_index(drop=True).equals(sc[sc["month"] >= "2024-05"].reset_index(drop=True))


# ------------------------------------------------------------------- executors


def test_serial_equals_processes_and_chunking_changes_nothing(tmp_path, tiny):
    specs = make_specs(tiny, 6, seed=1)
    serial = _batch(tmp_path, specs, "serial", executor="serial", chunk_size=4)
    procs = _batch(tmp_path, specs, "procs", executor="processes", workers=2, chunk_size=1)
    _same(serial, procs)
    assert len(serial.runs) == 6 and (serial.runs["status"] == "ok").all()
    assert sorted(p.name for p in (tmp_path / "procs" / "runs").iterdir()) == [f"part-{i:08d}.parquet" for i in range(6)]


def test_reading_some_brands_reads_their_rows_of_the_whole_table(tmp_path, tiny):
    specs = make_specs(tiny, 3, seed=2)
    whole = _batch(tmp_path, specs, "b", executor="serial")
    some = store.load_results(tmp_path / "b", brands=["A"])
    assert set(some.sales["brand"]) == {"A"} and set(whole.sales["brand"]) == {"A", "B"}
    want = whole.sales[whole.sales["brand"] == "A"].reset_index(drop=True)
    assert_frame_equal(some.sales, want)
    assert_frame_equal(some.runs, whole.runs)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed is not installed (pip install -e '.[dask]')",
)
def test_dask_local_cluster_equals_processes_equals_serial(tmp_path, tiny):
    specs = make_specs(tiny, 6, seed=2)
    serial = _batch(tmp_path, specs, "serial", executor="serial")
    procs = _batch(tmp_path, specs, "procs", executor="processes", workers=2)
    dask = _batch(tmp_path, specs, "dask", executor="dask", workers=2, chunk_size=2)
    _same(serial, procs)
    _same(serial, dask)
    assert dask.manifest["executor"] == "dask" and dask.manifest["workers"] == 2


def test_bad_executor_is_input_error(tmp_path):
    with pytest.raises(InputError, match="--executor"):
        executors.make_executor(2, "threads")
    assert main(["run", str(TINY), "--executor", "ray", "--out", str(tmp_path / "o"), "-q"]) == 2
    assert not (tmp_path / "o").exists()


def test_bad_kernel_in_the_environment_is_input_error_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIM_KERNEL", "fortran")
    assert main(["run", str(TINY), "-r", "2", "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "SIM_KERNEL" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_worker_sends_the_sales_part_the_parent_would_write(tmp_path, tiny):
    specs = make_specs(tiny, 3, seed=5)
    runs, part = chunks.run_chunk_encoded(specs)
    rows_runs, rows = chunks.run_chunk(specs)
    assert isinstance(part, bytes) and part == store.encode_part(rows)  # the same file, byte for byte
    assert_frame_equal(runs.drop(columns="seconds"), rows_runs.drop(columns="seconds"))
    written = store.write_part(store.prepare_output(tmp_path / "out"), "sales", "00000000", part)
    assert_frame_equal(store.read_part(written).to_pandas(), rows, check_exact=True)


def test_in_flight_window_is_bounded(tiny):
    """The parent holds at most `window` chunk results at a time, whatever the number of chunks."""
    submitted = 0

    class Counting(executors.SerialExecutor):
        def submit(self, fn, /, *args, **kwargs):
            nonlocal submitted
            submitted += 1
            return super().submit(lambda *a: ("result", a), *args)

    most = 0
    chunks = [[s] for s in make_specs(tiny, 50)]
    for n, _ in enumerate(batch._results(Counting(), chunks, window=4), start=1):
        most = max(most, submitted - (n - 1))
    assert submitted == 50 and most <= 4


# ----------------------------------------------------------------- the store


def test_manifest_is_updated_after_every_chunk(tmp_path, tiny, monkeypatch):
    seen = []
    real = store._atomic_write_bytes

    def spy(path, data):
        if path.name == store.MANIFEST:
            m = json.loads(data)
            seen.append((m["status"], m["finished"]))
        real(path, data)

    monkeypatch.setattr(store, "_atomic_write_bytes", spy)
    res = _batch(tmp_path, make_specs(tiny, 5), "o", executor="serial", chunk_size=2)
    assert seen == [("running", 0), ("running", 2), ("running", 4), ("running", 5), ("complete", 5)]
    m = res.manifest
    assert (m["asked"], m["finished"], m["failed"], m["pending"], m["parts"]) == (5, 5, 0, 0, 3)
    assert m["request"] == {"kind": "test"} and m["chunk_size"] == 2


def test_adaptive_chunks_aim_at_seconds_of_work():
    sizer = chunks.ChunkSizer(slots=2)
    assert sizer.size(1000) == 1  # nothing measured yet
    sizer.observe(pd.DataFrame({"seconds": [0.01] * 4}))
    assert sizer.size(10_000) == chunks.MAX_CHUNK
    assert sizer.size(40) == 10  # the tail is shared between the workers
    sizer.observe(pd.DataFrame({"seconds": [100.0] * 4}))
    assert sizer.size(1000) == 1
    assert chunks.ChunkSizer(2, fixed=7).size(3) == 7
    specs = list(range(25))
    assert [len(c) for c in chunks.iter_chunks(specs, chunks.ChunkSizer(1, fixed=10))] == [10, 10, 5]


def test_failed_runs_are_recorded_and_the_batch_goes_on(tmp_path, monkeypatch, capsys):
    import sim.runs.run

    real = sim.runs.run.sales_table

    def flaky(model, spec):
        if spec.replicate % 3 == 1:
            raise FloatingPointError(f"demand blew up in replicate {spec.replicate}")
        return real(model, spec)

    monkeypatch.setattr(sim.runs.run, "sales_table", flaky)
    out = tmp_path / "o"
    assert main(["run", str(TINY), "-r", "7", "--workers", "1", "--chunk-size", "2", "--out", str(out)]) == 1
    res = store.load_results(out)
    assert len(res.runs) == 7
    failed = res.runs[res.runs["status"] == "failed"]
    assert list(failed["run_id"]) == [1, 4]
    assert all("Traceback" in e and "FloatingPointError: demand blew up" in e for e in failed["error"])
    assert sorted(res.sales["run_id"].unique()) == [0, 2, 3, 5, 6]
    m = res.manifest
    assert (m["status"], m["finished"], m["failed"], m["failed_run_ids"]) == ("complete", 7, 2, [1, 4])
    assert "first failure (run 1)" in capsys.readouterr().err


def test_dry_run_prints_an_estimate_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", str(TINY), "-r", "30", "--workers", "3", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "30 run(s)" in text and "pilot run:" in text and "estimated" in text and "3 worker(s)" in text
    assert not out.exists()


def test_resume_refuses_a_different_batch(tmp_path):
    out = tmp_path / "o"
    assert main(["run", str(TINY), "-r", "2", "--workers", "1", "--out", str(out), "-q"]) == 0
    assert main(["run", str(TINY), "-r", "2", "--seed", "99", "--workers", "1", "--out", str(out), "--resume", "-q"]) == 2
    assert main(["run", str(TINY), "-r", "3", "--workers", "1", "--out", str(out), "--resume", "-q"]) == 2
    assert main(["run", str(TINY), "-r", "2", "--workers", "1", "--out", str(out), "--resume", "--force", "-q"]) == 2
    assert main(["run", str(TINY), "-r", "2", "--workers", "1", "--out", str(out), "-q"]) == 2  # not empty
    # the same batch: nothing left to do
    assert main(["run", str(TINY), "-r", "2", "--workers", "1", "--out", str(out), "--resume", "-q"]) == 0
    assert store.read_manifest(out)["finished"] == 2


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_batch(tmp_path):
    out, ref = tmp_path / "killed", tmp_path / "ref"
    cmd = [sys.executable, "-m", "sim", "run", str(TINY), "-r", "40", "--workers", "1", "--chunk-size", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, "--out", str(out)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "runs").glob("part-*.parquet"))) >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the batch ended before it could be killed: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    m = store.read_manifest(out)
    stored = store.scan_finished(out).run_ids
    assert m["status"] == "running" and 0 < len(stored) < 40
    # The manifest lags the parts by at most the chunk being recorded when the kill came.
    assert len(stored) - 2 <= m["finished"] <= len(stored)
    # Debris a kill can leave: a half-written temporary file, a sales part whose runs part never came.
    (out / "runs" / ".part-00000038.parquet.tmp-12345").write_bytes(b"half a part")
    shutil.copy(next((out / "sales").glob("part-*.parquet")), out / "sales" / "part-00000039.parquet")

    done = subprocess.run([*cmd, "--out", str(out), "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    subprocess.run([*cmd, "--out", str(ref)], cwd=tmp_path, env=env, check=True, capture_output=True)
    resumed, uninterrupted = store.load_results(out), store.load_results(ref)
    _same(resumed, uninterrupted)
    assert resumed.runs["run_id"].is_unique and len(resumed.runs) == 40
    assert not list(out.rglob(".*.tmp-*"))
    m = resumed.manifest
    assert (m["status"], m["finished"], m["failed"]) == ("complete", 40, 0)
    assert m["resumed"][0]["finished_before"] == len(stored)


def _descendants(pid: int) -> set[int]:
    """Processes below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_workers_exit_when_the_batch_is_killed(tmp_path):
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "sim", "run", str(TINY), "-r", "400", "--workers", "2", "--chunk-size", "1",
           "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((out / "runs").glob("part-*.parquet"))) < 2:
            time.sleep(0.02)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2  # the forkserver and its workers
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(executors._alive(p) for p in workers):
        time.sleep(0.1)
    left = [p for p in workers if executors._alive(p)]
    for p in left:  # do not leave them behind if the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, "worker processes outlived the killed batch"


# ---------------------------------------------------------------------- rerun


def test_rerun_reproduces_a_run_bit_for_bit(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", str(TINY), "-r", "3", "--seed", "4", "--scale", "20", "--workers", "1", "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["rerun", str(out), "2", "--out", str(tmp_path / "again")]) == 0
    assert "run 2: identical" in capsys.readouterr().out
    again = store.load_results(tmp_path / "again")
    stored = store.load_results(out)
    assert_frame_equal(again.sales, stored.sales[stored.sales["run_id"] == 2].reset_index(drop=True))

    # Tamper with the stored tables: the rerun must notice.
    part = next(p for p in (out / "sales").glob("part-*.parquet") if 2 in set(pd.read_parquet(p)["run_id"]))
    sales = pd.read_parquet(part)
    sales.loc[sales["run_id"] == 2, "units"] += 1
    sales.to_parquet(part, index=False)
    assert main(["rerun", str(out), "2"]) == 1
    text = capsys.readouterr().out
    assert "DIFFERENT" in text and "sales.units" in text
    assert main(["rerun", str(out), "17"]) == 2


def test_manifest_records_what_rerun_needs(tmp_path):
    out = tmp_path / "o"
    assert main(["run", str(TINY), "-r", "2", "--workers", "1", "--out", str(out), "-q", "--set", "products.A1.price=260000"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["scenario"]["products"][0]["price"] == 260000
    assert m["request"]["scenario_hash"] == m["scenario_hash"] and m["request"]["replications"] == 2
    assert main(["rerun", str(out), "1"]) == 0


def test_runs_use_one_blas_thread_whatever_the_executor(tiny, monkeypatch):
    """A multi-threaded BLAS may sum in another order and flip a buyer's choice: every
    executor runs with the same single thread so that results are identical bit for bit."""
    from threadpoolctl import threadpool_info

    threads = []

    def spy(spec):
        threads.append({i["num_threads"] for i in threadpool_info()})
        return real(spec)

    real = chunks.execute
    monkeypatch.setattr(chunks, "execute", spy)
    chunks.run_chunk(make_specs(tiny, 2))
    assert threads == [{1}, {1}]
