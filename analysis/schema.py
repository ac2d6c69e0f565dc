"""The one schema of the files a run writes: every column's name, type and meaning.

``discograd.run`` validates each row against it when it writes (:meth:`Table.row`: a missing
or unknown key is a SchemaError, never a NaN in a file); ``analysis.collect`` checks each file
against it when it loads (:meth:`Table.check`), naming the file. Nothing else lists columns.

Identity: ``config_id`` is a hash of the job's resolved config less the seed and the keys that
do not change results (discograd/identity.py); runs with one config_id and different seeds
are pooled, runs with different config_ids are never merged. ``overrides`` is the readable
form: the job's command-line overrides that distinguish it (less seed=). Within a run, the
estimators it probed are told apart by ``estimator`` (a label: the registry name, plus the
knobs that differ from their defaults).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class SchemaError(ValueError):
    """A run file or row that does not have the columns or values this version writes."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "int" | "float" | "str"
    meaning: str
    nullable: bool = False  # True: the value may be missing (None / empty cell / NaN)


INT, FLOAT, STR = "int", "float", "str"
_PYTHON = {INT: (int, np.integer), FLOAT: (int, float, np.integer, np.floating), STR: (str,)}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


@dataclass(frozen=True)
class Table:
    """The columns of one file. ``open_floats``: other float columns are allowed (train.csv's
    task metrics, named by each task's ``evaluate()``)."""

    name: str
    columns: tuple[Column, ...]
    open_floats: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` checked: every column present with a value of its type (null only where
        nullable); unknown keys only as floats of an open table. Returns them in column order."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise SchemaError(f"{self.name} row lacks {', '.join(missing)}")
        for column in self.columns:
            value = values[column.name]
            if _missing(value):
                if not column.nullable:
                    raise SchemaError(f"{self.name}: {column.name} must not be empty")
            elif isinstance(value, bool) or not isinstance(value, _PYTHON[column.dtype]):
                raise SchemaError(f"{self.name}: {column.name} must be {column.dtype}, got {value!r}")
        extra = [k for k in values if k not in self.names]
        if extra and not self.open_floats:
            raise SchemaError(f"{self.name} has no column(s) {', '.join(extra)}; columns: {', '.join(self.names)}")
        for key in extra:
            if not (_missing(values[key]) or isinstance(values[key], _PYTHON[FLOAT])) or isinstance(values[key], bool):
                raise SchemaError(f"{self.name}: metric {key} must be a number, got {values[key]!r}")
        return {k: values[k] for k in self.names + extra}

    def check(self, frame: pd.DataFrame, path: Path) -> pd.DataFrame:
        """A loaded file: every column present, each of its type; empty string cells read as ''."""
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise SchemaError(f"{path} lacks column(s) {', '.join(missing)}; expected {', '.join(self.names)}")
        if not self.open_floats and (extra := [c for c in frame.columns if c not in self.names]):
            raise SchemaError(f"{path} has unknown column(s) {', '.join(extra)}")
        for column in self.columns:
            values = frame[column.name]
            if column.dtype == STR:
                frame[column.name] = values.map(lambda v: "" if pd.isna(v) else str(v))
                continue
            converted = pd.to_numeric(values, errors="coerce")
            if (converted.isna() & values.notna()).any():
                raise SchemaError(f"{path}: column {column.name} holds non-numeric values")
            if converted.isna().any() and not column.nullable:
                raise SchemaError(f"{path}: column {column.name} has empty cells")
            frame[column.name] = converted
        return frame


def _c(name: str, dtype: str, meaning: str, nullable: bool = False) -> Column:
    return Column(name, dtype, meaning, nullable)


IDENTITY = (
    _c("config_id", STR, "hash of the resolved config less seed and result-neutral keys: one per configuration"),
    _c("overrides", STR, "the job's command-line overrides less seed= (readable form of config_id)"),
)
LEARNED = (
    _c("learned_temperature", FLOAT, "temperature an estimator learns (REBAR/RELAX with learn=true)", True),
    _c("eta", FLOAT, "learned scale of a control variate (REBAR/RELAX)", True),
    _c("alpha", FLOAT, "learned scale of the control variate from grad f (double_cv) or from H's Stein term (rodeo)", True),
    _c("beta", FLOAT, "learned scale of RODEO's second Stein control variate, on the score", True),
)

STATS = Table("stats.csv", (
    _c("step", INT, "training step of the probe"),
    *IDENTITY,
    _c("estimator", STR, "label of the probed estimator: registry name [+ knobs that differ from defaults]"),
    _c("knobs", STR, "every knob of the probed estimator's Hydra node, resolved (its identity)"),
    _c("task", STR, "registry name of the task"),
    _c("family", STR, "bernoulli | categorical"),
    _c("temperature", FLOAT, "temperature the estimates were drawn at (scheduled or learned)", True),
    *LEARNED,
    _c("samples", INT, "independent gradient estimates N behind the row"),
    _c("bias_sq", FLOAT, "unbiased estimate of ||E g - g_true||^2 (signed: average this over seeds, not bias_norm)"),
    _c("bias_norm", FLOAT, "sqrt(max(bias_sq, 0))"),
    _c("bias_norm_lo", FLOAT, "lower end of the 95% CI of bias_norm (inverted noncentral F; > 0 is the 2.5% test of zero bias)"),
    _c("bias_norm_hi", FLOAT, "upper end of the 95% CI of bias_norm"),
    _c("bias_p", FLOAT, "p-value of the test of zero bias (bias_norm_lo > 0 iff bias_p < 0.025; docs/calibration.md)"),
    _c("relative_bias", FLOAT, "bias_norm / ||reference||", True),
    _c("variance", FLOAT, "trace of the covariance of one estimate"),
    _c("variance_lo", FLOAT, "lower end of the 95% CI of variance (U-statistic standard error, scaled chi-square)"),
    _c("variance_hi", FLOAT, "upper end of the 95% CI of variance"),
    _c("mse", FLOAT, "E ||g - reference||^2 = bias_norm^2 + variance"),
    _c("snr", FLOAT, "mean over coordinates of |mean| / sd", True),
    _c("cosine", FLOAT, "mean over draws of cos(estimate, reference) (a zero draw counts 0)", True),
    _c("evaluations", INT, "evaluations of f per estimate"),
    _c("seconds_per_estimate", FLOAT, "warm wall time per estimate: the draws after the untimed first part"),
    _c("warmup_seconds", FLOAT, "wall time of the probe's first part (a tenth of the draws, one chunk at most; one draw on the loop path), timed apart: torch.func's tracing"),
    _c("work_normalized_variance", FLOAT, "variance x evaluations"),
    _c("reference", STR, "exact | estimated"),
    _c("reference_samples", INT, "draws of probe.reference_estimator behind an estimated reference", True),
    _c("warning", STR, "why the row's intervals are not to be trusted (zero variance, too few effective draws), or empty", True),
    _c("seed", INT, "the run's seed"),
    _c("device", STR, "device the run used"),
))  # fmt: skip

TRAIN = Table("train.csv", (
    _c("step", INT, "training step"),
    *IDENTITY,
    _c("seed", INT, "the run's seed"),
    _c("objective", FLOAT, "mean objective estimate of the trained estimator since the last row", True),
    _c("temperature", FLOAT, "the trained estimator's temperature at this step", True),
    *LEARNED,
    _c("train_seconds", FLOAT, "wall time of training steps (and evaluations) since the run started, probes excluded"),
    _c("probe_seconds", FLOAT, "wall time of probes since the run started"),
), open_floats=True)  # fmt: skip

SUMMARY = Table("summary.json", (
    _c("status", STR, "ok | failed | diverged | interrupted (stopped by Ctrl-C, SIGTERM or a time limit)"),
    _c("error", STR, "the error message, if the run did not finish ok", True),
    _c("error_type", STR, "the error's type", True),
    *IDENTITY,
    _c("task", STR, "the task", True),
    _c("estimator", STR, "the trained estimator's label", True),
    _c("temperature", FLOAT, "the trained estimator's final temperature", True),
    _c("seed", INT, "the run's seed", True),
    _c("device", STR, "the device asked for", True),
    _c("seconds", FLOAT, "wall time of the job"),
))  # fmt: skip
STATUSES = ("ok", "failed", "diverged", "interrupted")
# what one configuration is across seeds (config_id), and one probed estimator within it
CONFIG_KEY = ["config_id", "estimator"]
# carried per configuration in summary.csv and the tables (equal across its seeds)
DESCRIPTIVE = ["overrides", "task", "family", "knobs"]
# summary.json's structured fields beside the columns above (not checked by type)
SUMMARY_EXTRA = ("metrics", "final_probe", "learned", "diverged_at", "interrupted_at", "warning")


def check_summary(summary: dict, path: Path) -> dict:
    missing = [n for n in SUMMARY.names if n not in summary]
    if missing:
        raise SchemaError(f"{path} lacks field(s) {', '.join(missing)}")
    if summary["status"] not in STATUSES:
        raise SchemaError(f"{path}: status {summary['status']!r} is not one of {', '.join(STATUSES)}")
    return summary


def summary_fields(summary: dict) -> dict:
    """summary.json as the run loop writes it: the SUMMARY columns checked, then the extras."""
    extra = {k: summary[k] for k in SUMMARY_EXTRA if k in summary}
    unknown = [k for k in summary if k not in SUMMARY.names and k not in SUMMARY_EXTRA]
    if unknown:
        raise SchemaError(f"summary.json has no field(s) {', '.join(unknown)}")
    return SUMMARY.row({k: v for k, v in summary.items() if k in SUMMARY.names}) | extra


def read_csv(table: Table, path: Path) -> pd.DataFrame:
    """The CSV file at ``path``, checked against ``table``. Its str columns are read as text:
    left to pandas, a config_id such as 1e2345678901 would read as inf (and merge with every
    other id of that form), and 000123456789 would lose its zeros."""
    text = {c.name: str for c in table.columns if c.dtype == STR}
    try:
        frame = pd.read_csv(path, dtype=text)
    except (ValueError, pd.errors.ParserError) as error:  # EmptyDataError is a ValueError
        raise SchemaError(f"{path} is not a readable CSV file: {error}") from error
    return table.check(frame, path)
