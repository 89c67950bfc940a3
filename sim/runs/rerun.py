"""``sim rerun``: one stored run re-run alone and compared with the stored tables, exactly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.runs import store
from sim.runs.chunks import run_chunk, with_design
from sim.runs.manifest import new_manifest
from sim.runs.run import RunSpec
from sim.scenario.schema import Scenario
from sim.scenario.yamlio import InputError


@dataclass
class RerunReport:
    run_id: int
    identical: bool
    differences: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)


def rebuild_spec(manifest: dict[str, Any], row: dict[str, Any]) -> RunSpec:
    """The spec of one stored run, from the manifest (resolved scenario, choice kernel) and its runs row
    (seed identity, scale, sweep point and parameters)."""
    try:
        scenario = Scenario.model_validate(manifest["scenario"])
    except Exception as exc:
        raise InputError(f"the manifest's scenario no longer validates with this code: {exc}") from None
    # A parameter's label (as written in the sweep file) and its resolved path in the scenario.
    targets = {p["path"]: p.get("target", p["path"]) for p in (manifest.get("design") or {}).get("parameters", [])}
    overrides = {
        targets.get(k[len("param:") :], k[len("param:") :]): _plain(v) for k, v in row.items() if k.startswith("param:")
    }
    overrides.pop("scale", None)  # a swept scale is the run's own (its row's ``scale``), not a scenario value
    point = row.get("point")
    spec = RunSpec(
        run_id=int(row["run_id"]),
        replicate=int(row["replicate"]),
        entropy=int(row["seed_entropy"]),
        spawn_key=tuple(int(k) for k in str(row["spawn_key"]).split(",") if k != ""),
        scenario=scenario,
        scale=float(row["scale"]),
        overrides=overrides,
        point=None if point is None or pd.isna(point) else int(point),
    )
    # Manifests written before the kernel was recorded do not say: the default then.
    return replace(spec, kernel=manifest["kernel"]) if manifest.get("kernel") else spec


def _plain(v: Any) -> Any:
    """A value read from Parquet as the plain Python value it was written from."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def rerun(out: str | Path, run_id: int, dest: str | Path | None = None, kernel: str | None = None) -> RerunReport:
    """Re-run one stored run alone and compare its tables with the stored ones, exactly.

    The rerun's tables go through the same Parquet round trip as the stored ones; the
    ``seconds`` column (wall time) is not compared.

    Args:
        out: the results folder.
        run_id: the run to reproduce.
        dest: write the rerun's tables as a results folder here (default: not kept).
        kernel: the choice kernel to rerun with (default: the batch's, as its manifest records it).
            Another kernel draws other random numbers: the notes then say why the tables differ.
    """
    import tempfile

    out = Path(out)
    manifest = store.read_manifest(out)
    stored_runs = store.read_table(out, "runs", run_ids=[run_id])
    if stored_runs.empty:
        raise InputError(f"{out}: no run with run_id {run_id} is stored")
    if len(stored_runs) > 1:
        raise InputError(f"{out}: run {run_id} is stored {len(stored_runs)} times; the folder holds runs of more "
                         "than one batch")  # fmt: skip
    if dest is not None and Path(dest).resolve() == out.resolve():
        raise InputError(f"{dest}: is the folder of the stored run; write the rerun elsewhere")
    kept = store.prepare_output(Path(dest)) if dest is not None else None  # refused before the run, not after
    row = stored_runs.iloc[0].to_dict()
    spec = rebuild_spec(manifest, row)
    notes = []
    if manifest.get("scenario_hash") and spec.scenario.hash() != manifest["scenario_hash"]:
        notes.append(
            f"the stored scenario now hashes to {spec.scenario.hash()}, not {manifest['scenario_hash']}: "
            "the scenario schema (fields or defaults) changed since the batch ran"
        )
    if manifest.get("code_version") and manifest["code_version"] != store.code_version():
        notes.append(f"code version {store.code_version()} differs from the batch's {manifest['code_version']}")
    stored_kernel = manifest.get("kernel")
    if kernel is not None:
        spec = replace(spec, kernel=kernel)
    if not stored_kernel:
        notes.append(
            f"the manifest does not record the choice kernel (written before sim recorded it); rerun with the "
            f"{spec.kernel} kernel: a batch run with the other one draws other random numbers, and its tables differ"
        )
    elif spec.kernel != stored_kernel:
        notes.append(
            f"the batch ran with the {stored_kernel} kernel, this rerun with the {spec.kernel} kernel: the two draw "
            f"the same law from other random numbers, so the tables differ (to reproduce the batch, rerun with the "
            f"{stored_kernel} kernel: from the command line, without SIM_KERNEL)"
        )
    t0 = time.perf_counter()
    new_runs, new_sales = run_chunk([spec])
    new_runs = with_design(new_runs, store.read_design(out))
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        target = kept if kept is not None else store.prepare_output(Path(tmp))
        name = f"{run_id:08d}"
        store.write_part(target, "sales", name, new_sales)
        store.write_part(target, "runs", name, new_runs)
        if dest is not None:
            m = new_manifest("rerun", **{k: manifest.get(k) for k in ("scenario_name", "scenario_hash", "scenario", "seed", "scale")},
                             kernel=spec.kernel, source=str(out), source_run_id=run_id, status="complete", asked=1, finished=1)  # fmt: skip
            store.write_manifest(target, m)
        got_runs = store.read_table(target, "runs")
        got_sales = store.read_table(target, "sales")
    stored_sales = store.read_table(out, "sales", run_ids=[run_id])
    diffs = _compare("runs", stored_runs.drop(columns=["seconds"]), got_runs.drop(columns=["seconds"]))
    diffs += _compare("sales", stored_sales, got_sales)
    return RerunReport(run_id, not diffs, diffs, seconds, notes)


def _compare(name: str, stored: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    """Exact comparison (NaN equals NaN); returns readable differences."""
    if stored.empty and got.empty:
        return []
    if list(stored.columns) != list(got.columns):
        return [f"{name}: columns differ: stored {list(stored.columns)}, rerun {list(got.columns)}"]
    if len(stored) != len(got):
        return [f"{name}: {len(stored)} stored rows, {len(got)} in the rerun"]
    out = []
    for c in stored.columns:
        a, b = stored[c], got[c]
        if str(a.dtype) != str(b.dtype):
            out.append(f"{name}.{c}: dtype {a.dtype} stored, {b.dtype} in the rerun")
            continue
        same = (a == b).fillna(False).to_numpy(bool) | (a.isna() & b.isna()).to_numpy(bool)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            out.append(
                f"{name}.{c}: {int((~same).sum())} of {len(a)} rows differ; first at row {i}: "
                f"stored {a.iloc[i]!r}, rerun {b.iloc[i]!r}"
            )
    return out


