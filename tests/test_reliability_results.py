"""Results folders as readers find them: partial, damaged, foreign or degenerate.

- A partial batch (killed, interrupted, stopped by a full disk) is refused by every reader (``compare``,
  ``report``, ``plot``, ``export``, ``validate-model``, ``sim.load_results``) with "k of N runs finished;
  continue with --resume or pass --allow-partial"; with ``--allow-partial`` each reads it and says so
  (the report in its headline). Failed runs are counted and said.
- A damaged or foreign folder (a part truncated, replaced by junk, a FIFO or a folder; a manifest that is
  not one; a part of another table) is a located exit 2, never an internal error or a hang (property-based).
- Degenerate batches (one run, no deliveries, no target, every run failed) give a report, a figure or a
  located refusal.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TINY
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim import cli
from sim.runs import store
from sim.runs.results import PartialResults
from sim.scenario.yamlio import InputError

RUN = ["-r", "6", "--seed", "5", "--scale", "500", "--executor", "serial", "--chunk-size", "1", "-q"]
PLOTS = ("fan", "target", "brands", "segments", "segment-brands")


def main(argv: list[str]) -> tuple[int, str]:
    """``sim ARGV`` in this process: its exit status and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(argv)
    return status, err.getvalue()


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete batch of 6 runs, one part each."""
    out = tmp_path_factory.mktemp("complete") / "run"
    assert cli.main(["run", str(TINY), *RUN, "--out", str(out)]) == 0
    return out


def partial_copy(complete: Path, dest: Path, status: str = "interrupted", keep: int = 4) -> Path:
    """``complete`` as a batch stopped after ``keep`` runs, with the manifest such a batch leaves."""
    shutil.copytree(complete, dest)
    for r in range(keep, 6):
        for table in store.TABLES:
            (dest / table / f"part-{r:08d}.parquet").unlink()
    m = json.loads((dest / store.MANIFEST).read_text())
    m.update(status=status, finished=keep, pending=6 - keep, parts=keep)
    (dest / store.MANIFEST).write_text(json.dumps(m))
    return dest


def readers(folder: Path, tmp: Path) -> dict[str, list[str]]:
    return {
        "compare": ["compare", str(folder)],
        "report": ["report", str(folder), "--out", str(tmp / "report.html")],
        "plot": ["plot", str(folder), "--what", "fan", "--out", str(tmp / "fan.png")],
        "export": ["export", str(folder), "--csv", "--to", str(tmp / "csv")],
        "validate-model": ["validate-model", str(folder), "--json"],
    }


# ------------------------------------------------------------------ partial batches


@pytest.mark.parametrize("reader", ["compare", "report", "plot", "export", "validate-model"])
@pytest.mark.parametrize("status, why", [("interrupted", "the batch was interrupted"), ("running", "the batch was stopped"),
                                         ("aborted", "the batch was aborted")])  # fmt: skip
def test_every_reader_refuses_a_partial_batch(reader: str, status: str, why: str, complete: Path, tmp_path: Path) -> None:
    folder = partial_copy(complete, tmp_path / "partial", status)
    code, err = main(readers(folder, tmp_path)[reader])
    assert code == 2, err
    assert err.startswith(f"{folder}: 4 of 6 runs finished ({why}); continue with --resume or pass --allow-partial"), err
    assert not [p for p in tmp_path.iterdir() if p.name != "partial"], "a refused reader wrote something"


@pytest.mark.parametrize("reader", ["compare", "report", "plot", "export", "validate-model"])
def test_with_allow_partial_every_reader_reads_it_and_says_so(reader: str, complete: Path, tmp_path: Path) -> None:
    folder = partial_copy(complete, tmp_path / "partial")
    code, err = main([*readers(folder, tmp_path)[reader], "--allow-partial"])
    assert code == 0, err
    if reader == "compare":
        assert f"note: {folder}: PARTIAL: 4 of 6 runs finished (the batch was interrupted)" in err
    if reader == "report":
        assert "PARTIAL batch: 4 of 6 runs finished (the batch was interrupted)" in (tmp_path / "report.html").read_text()
    if reader == "plot":
        assert (tmp_path / "fan.png").stat().st_size > 0
    if reader == "export":
        runs = (tmp_path / "csv" / "runs.csv").read_text().splitlines()
        assert len(runs) == 1 + 4


def test_load_results_refuses_a_partial_batch_unless_asked(complete: Path, tmp_path: Path) -> None:
    folder = partial_copy(complete, tmp_path / "partial")
    with pytest.raises(PartialResults, match="4 of 6 runs finished"):
        sim.load_results(folder)
    res = sim.load_results(folder, allow_partial=True)
    c = res.completeness
    assert c is not None and res.partial and (c.asked, c.finished, c.failed, c.status) == (6, 4, 0, "interrupted")
    assert sorted(res.runs["run_id"]) == [0, 1, 2, 3] and set(res.sales["run_id"]) == {0, 1, 2, 3}
    full = sim.load_results(complete)
    assert full.completeness is not None and full.completeness.complete and not full.partial


def test_a_sales_part_without_its_runs_part_is_not_read(complete: Path, tmp_path: Path) -> None:
    """A batch killed between a chunk's two writes: the chunk's sales are not counted, the batch is partial."""
    folder = partial_copy(complete, tmp_path / "partial")
    shutil.copy(complete / "sales" / "part-00000004.parquet", folder / "sales")
    res = sim.load_results(folder, allow_partial=True)
    assert set(res.sales["run_id"]) == {0, 1, 2, 3}  # the header's count and the targets' agree


def test_failed_runs_are_counted_and_said(complete: Path, tmp_path: Path) -> None:
    folder = tmp_path / "failed"
    shutil.copytree(complete, folder)
    part = folder / "runs" / "part-00000002.parquet"
    t = pq.read_table(part).to_pandas()
    t["status"], t["error"] = "failed", "Traceback: something broke"
    pq.write_table(pa.Table.from_pandas(t, preserve_index=False), part)
    res = sim.load_results(folder)
    assert res.completeness is not None and (res.completeness.failed, res.completeness.complete) == (1, False)
    code, err = main(["compare", str(folder)])
    assert code == 0 and f"note: {folder}: 1 run(s) failed and are left out" in err
    code, err = main(["report", str(folder), "--out", str(tmp_path / "r.html")])
    assert code == 0 and "1 run(s) failed</b> and are left out" in (tmp_path / "r.html").read_text()


def test_compare_counts_the_reported_rows_it_sets_aside(complete: Path) -> None:
    code, err = main(["compare", str(complete)])
    assert code == 0 and "row(s) of the reported figures give no figure and are set aside (" in err


# ------------------------------------------------------------------ damaged and foreign folders


def _foreign_parquet(path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)


MUTATIONS = {
    "truncate": lambda p, k, junk: p.write_bytes(p.read_bytes()[: k % max(1, p.stat().st_size)]),
    "junk": lambda p, k, junk: p.write_bytes(junk),
    "delete": lambda p, k, junk: p.unlink(),
    "fifo": lambda p, k, junk: (p.unlink(), os.mkfifo(p)),
    "folder": lambda p, k, junk: (p.unlink(), p.mkdir()),
    "foreign parquet": lambda p, k, junk: _foreign_parquet(p),
    "json of another shape": lambda p, k, junk: p.write_text(json.dumps([[1], "x", {}, {"kind": 5, "scenario": "x"}, {"status": 3}][k % 5])),
    "a column dropped": lambda p, k, junk: pq.write_table(pq.read_table(p).drop_columns([pq.read_table(p).column_names[k % len(pq.read_table(p).column_names)]]), p),  # fmt: skip
    "a part of the other table": lambda p, k, junk: shutil.copy(p.parent.parent / ("sales" if p.parent.name == "runs" else "runs") / p.name, p),  # fmt: skip
}
FILES = ("manifest.json", "runs/part-00000000.parquet", "runs/part-00000003.parquet", "sales/part-00000001.parquet")


@pytest.mark.slow
@settings(max_examples=40)
@given(file=st.sampled_from(FILES), mutation=st.sampled_from(sorted(MUTATIONS)), k=st.integers(0, 10_000),
       junk=st.binary(max_size=200))  # fmt: skip
def test_a_damaged_or_foreign_folder_is_a_located_exit_2(complete: Path, file: str, mutation: str, k: int, junk: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        shutil.copytree(complete, folder)
        target = folder / file
        if mutation in ("a column dropped", "a part of the other table") and not file.endswith(".parquet"):
            mutation = "junk"
        MUTATIONS[mutation](target, k, junk)
        for argv in (["export", str(folder), "--csv", "--to", str(Path(tmp) / "csv")], ["compare", str(folder), "--what", "targets"]):
            code, err = main(argv)
            assert "internal error" not in err and "Traceback" not in err, (mutation, file, err)
            assert code in (0, 2), (mutation, file, code, err)
            if code == 2:
                assert err.strip().splitlines()[-1].startswith(str(folder)), err  # located: the folder, or a file in it
        try:
            store.load_results(folder)
        except InputError:
            pass


# ------------------------------------------------------------------ degenerate batches


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One run; no deliveries (no capacity); no target; no buyers; every run failed."""
    base = tmp_path_factory.mktemp("degenerate")
    argv = ["run", str(TINY), "--scale", "500", "--executor", "serial", "-q"]
    cases = {
        "one run": ["-r", "1"],
        "no deliveries": ["-r", "2", *(a for p in ("A1", "A2", "B1") for a in ("--set", f"products.{p}.capacity.max=0"))],
        "no target": ["-r", "2", "--set", "targets=[]"],
        "no buyers": ["-r", "2", "--set", "markets[0].buyers_per_month=0"],
    }
    out = {}
    for name, extra in cases.items():
        out[name] = base / name.replace(" ", "-")
        assert cli.main([*argv, *extra, "--out", str(out[name])]) in (0, 1)
    failed = base / "all-failed"
    shutil.copytree(out["one run"], failed)
    part = failed / "runs" / "part-00000000.parquet"
    t = pq.read_table(part).to_pandas()
    t["status"], t["error"] = "failed", "Traceback: broke"
    pq.write_table(pa.Table.from_pandas(t, preserve_index=False), part)
    for table in ("sales",):
        s = pq.read_table(failed / table / "part-00000000.parquet").to_pandas().iloc[0:0]
        pq.write_table(pa.Table.from_pandas(s, preserve_index=False), failed / table / "part-00000000.parquet")
    out["every run failed"] = failed
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", ["one run", "no deliveries", "no target", "no buyers", "every run failed"])
def test_a_degenerate_batch_gives_a_report_or_a_located_refusal(case: str, degenerate: dict[str, Path], tmp_path: Path) -> None:
    folder = degenerate[case]
    # The report draws every figure of one batch; plot each alone where a figure may have nothing to draw.
    plots = PLOTS if case in ("no deliveries", "no target") else ()
    commands = [["report", str(folder), "--out", str(tmp_path / "r.html")], ["compare", str(folder)],
                *(["plot", str(folder), "--what", w, "--out", str(tmp_path / f"{w}.png")] for w in plots)]  # fmt: skip
    outcomes = []
    for argv in commands:
        code, err = main(argv)
        assert "internal error" not in err and "Traceback" not in err, (argv, err)
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            assert err.strip().splitlines()[-1].startswith(str(folder)), err
        outcomes.append(code)
    if case != "every run failed":
        assert outcomes[0] == 0, "the report of a degenerate batch that has runs is written"
