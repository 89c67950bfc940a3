"""A backtest folder (``sim backtest --out DIR``) as the report and ``sim plot --what backtest`` read it.

``DIR/backtest.json`` holds the plan and the summary (:func:`sim.analysis.backtest.summarize_backtest`:
pooled coverage, CRPS, mean absolute log error, the model's error relative to each benchmark, over
all brands, over the five named brands and by horizon; the forecast from an assimilated state
against the same without); ``DIR/scores.parquet`` one row per scored figure, origin and forecaster.
:func:`load_backtest` reads both; :func:`horizon_errors` gives each forecaster's mean absolute log
error by horizon on the figures every forecaster scored, :func:`assimilation_errors` the model's
with and without assimilation on the figures both scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.present.json_files import read_json_object
from sim.scenario.yamlio import InputError

#: Files of a backtest folder.
SUMMARY_FILE, SCORES_FILE = "backtest.json", "scores.parquet"
#: The model's name in the scores' ``forecaster`` column; the previous origin's fit forecast from the
#: origin with the figures since assimilated by a particle filter, and without them.
MODEL, ASSIMILATED, STALE = "model", "model_assimilated", "model_stale"
#: What identifies one scored figure forecast (the same figure from the same origin).
FIGURE_KEYS = ("origin", "line", "entity", "start", "end", "horizon")
#: How the benchmarks read in tables and legends.
BENCHMARK_LABELS = {"naive": "naive (last value)", "seasonal_naive": "seasonal naive", "drift": "drift",
                    "ets": "exponential smoothing", "bass": "Bass diffusion"}  # fmt: skip


@dataclass(frozen=True)
class Backtest:
    """A backtest's summary and per-figure scores."""

    path: Path
    manifest: dict[str, Any]
    scores: pd.DataFrame

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.manifest.get("summary") or {})

    @property
    def benchmarks(self) -> list[str]:
        """The benchmarks the model was compared with (those with a relative error), in the backtest's order."""
        s = self.summary
        scored = [str(b) for b in s.get("relative_mae") or []]
        order = [str(b) for b in s.get("benchmarks") or [] if b in scored]
        return order + [b for b in scored if b not in order]


def load_backtest(folder: str | Path) -> Backtest:
    """Read a backtest folder.

    Raises:
        InputError: when the folder holds no backtest (no ``backtest.json`` with a summary, or no scores).
    """
    folder = Path(folder)
    path = folder / SUMMARY_FILE
    if not path.is_file():
        what = "no such folder" if not folder.is_dir() else f"not a backtest folder (no {SUMMARY_FILE})"
        raise InputError(f"{folder}: {what}; make one with sim backtest --out DIR")
    manifest = read_json_object(path, "a backtest's summary (sim backtest)")
    if not isinstance(manifest.get("summary"), dict):
        raise InputError(f"{path}: no backtest summary in it (an unfinished backtest? run it again with --resume)")
    scores_path = folder / SCORES_FILE
    try:
        scores = pd.read_parquet(scores_path)
    except FileNotFoundError:
        raise InputError(f"{scores_path}: missing (the backtest's per-figure scores)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{scores_path}: cannot read: {exc}") from None
    missing = {"forecaster", "horizon", "log_error"} - set(scores.columns)
    if missing:
        raise InputError(f"{scores_path}: no column(s) {', '.join(sorted(missing))}")
    return Backtest(folder, manifest, scores)


def horizon_errors(bt: Backtest) -> tuple[pd.DataFrame, int]:
    """Each forecaster's mean absolute log error by horizon, on the figures every forecaster scored.

    Returns:
        A frame indexed by horizon (months ahead) with one column per forecaster (the model
        first), and the number of figure forecasts in that common set. Forecasters that scored no
        figure at all are left out (they would empty the common set), and so are the previous origin's
        fit's forecasts with and without assimilation (:func:`assimilation_errors`).
    """
    s = bt.scores[~bt.scores["forecaster"].isin([ASSIMILATED, STALE])]
    names = [MODEL, *(b for b in pd.unique(s["forecaster"]) if b != MODEL)]
    wide = _wide(s)
    wide = wide[[n for n in names if n in wide.columns]].dropna()
    err = wide.abs().groupby(level="horizon").mean()
    return err, len(wide)


def assimilation_errors(bt: Backtest) -> pd.DataFrame:
    """The previous origin's fit's mean absolute log error by horizon without (``model``) and with the figures
    since assimilated (``model_assimilated``), on the figures both scored.

    Returns:
        A frame indexed by horizon with columns ``model`` (without), ``model_assimilated`` and ``n_figures``
        (empty when the backtest has no forecast from an assimilated state).
    """
    wide = _wide(bt.scores[bt.scores["forecaster"].isin([STALE, ASSIMILATED])])
    if ASSIMILATED not in wide.columns or STALE not in wide.columns:
        return pd.DataFrame(columns=[MODEL, ASSIMILATED, "n_figures"])
    both = wide[[STALE, ASSIMILATED]].dropna().rename(columns={STALE: MODEL})
    out = both.abs().groupby(level="horizon").mean()
    return out.assign(n_figures=both.groupby(level="horizon").size())


def _wide(scores: pd.DataFrame) -> pd.DataFrame:
    """Finite log errors, one row per figure forecast (:data:`FIGURE_KEYS`) and one column per forecaster."""
    s = scores[np.isfinite(scores["log_error"].astype(float))]
    keys = [k for k in FIGURE_KEYS if k in s.columns]
    return s.pivot_table(index=keys, columns="forecaster", values="log_error", aggfunc="first")


def horizon_coverage(bt: Backtest) -> pd.DataFrame:
    """The model's coverage of its 50% and 90% bands and its figure count, by horizon (from the summary)."""
    rows = [{"horizon": int(h["horizon"]), "n_figures": int(h.get("n_figures") or 0),
             "coverage_50": h.get("coverage_50"), "coverage_90": h.get("coverage_90")}
            for h in bt.summary.get("by_horizon") or []]  # fmt: skip
    out = pd.DataFrame(rows, columns=["horizon", "n_figures", "coverage_50", "coverage_90"])
    return out.astype({"coverage_50": float, "coverage_90": float}).set_index("horizon")
