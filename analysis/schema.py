"""The one definition of the tables a run writes and the report reads.

``discograd.run`` writes stats.csv with STATS_COLUMNS; ``analysis.collect`` checks every
file it loads against these lists, so a renamed or missing column fails loudly at load time,
naming the file, instead of turning into NaNs in a figure.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

STATS_COLUMNS = [
    "step", "estimator", "task", "family", "temperature", "samples",
    "bias_norm", "bias_norm_lo", "bias_norm_hi", "relative_bias",
    "variance", "variance_lo", "variance_hi", "mse", "snr", "cosine",
    "evaluations", "seconds_per_estimate", "work_normalized_variance", "reference",
    "settings", "seed", "device",
]  # fmt: skip
NUMERIC_STATS = [
    "step", "temperature", "samples", "bias_norm", "bias_norm_lo", "bias_norm_hi", "relative_bias",
    "variance", "variance_lo", "variance_hi", "mse", "snr", "cosine", "evaluations",
    "seconds_per_estimate", "work_normalized_variance", "seed",
]  # fmt: skip
# train.csv: these, then the task's evaluate() metrics (which differ by task)
TRAIN_COLUMNS = ["step", "objective", "temperature", "seconds"]
# summary.json fields every run has, whatever its status
RUN_FIELDS = ["status", "error", "task", "estimator", "temperature", "seed", "device", "config_hash"]
STATUSES = ("ok", "failed", "diverged")
# what identifies one configuration across seeds
CONFIG_KEY = ["task", "family", "estimator", "settings", "temperature"]


class SchemaError(ValueError):
    """A run file that does not have the columns or values this version writes."""


def check_columns(frame: pd.DataFrame, expected: list[str], path: Path) -> pd.DataFrame:
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise SchemaError(f"{path} lacks column(s) {', '.join(missing)}; expected at least {', '.join(expected)}")
    return frame


def check_stats(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """stats.csv with its columns, numeric where they must be (an empty temperature is NaN)."""
    check_columns(frame, STATS_COLUMNS, path)
    for column in NUMERIC_STATS:
        converted = pd.to_numeric(frame[column], errors="coerce")
        if (converted.isna() & frame[column].notna()).any():
            raise SchemaError(f"{path}: column {column} holds non-numeric values")
        frame[column] = converted
    frame["settings"] = frame["settings"].map(lambda v: "" if pd.isna(v) else str(v))  # an empty cell reads as NaN
    return frame


def check_summary(summary: dict, path: Path) -> dict:
    missing = [f for f in RUN_FIELDS if f not in summary]
    if missing:
        raise SchemaError(f"{path} lacks field(s) {', '.join(missing)}")
    if summary["status"] not in STATUSES:
        raise SchemaError(f"{path}: status {summary['status']!r} is not one of {', '.join(STATUSES)}")
    return summary
