r"""Aggregate probe statistics over seeds: one row per configuration and probe step.

A configuration is ``CONFIG_KEY`` (analysis/schema.py): its config_id and, within the run,
the probed estimator's label. Rows of one key pool their seeds; different keys never merge.
Jobs with one config_id and one seed measured the same thing (reinforce swept over a
temperature it does not read): counted once. temperature and the learned values are
averaged like the metrics (a learned temperature differs by seed).

bias_sq, the signed unbiased estimate of ||b||^2, is averaged like the others: its mean over
seeds is unbiased, where a mean of bias_norm (clipped at 0) is not; so with several seeds
bias_norm and its CI are the square roots of bias_sq's mean and t-interval ends (clipped
at 0), widened as below. ``warning`` lists the seeds
whose probe flagged its own intervals (analysis.statistics.warning).

For each metric the row holds the mean over seeds and a 95% CI: with several seeds, the
t-interval of the mean over seeds (the seed-to-seed spread includes the training
trajectory's randomness); with one seed, the run's own CI for bias_norm and variance (the
probe's sampling error) and none for the other metrics. For bias_norm and variance with
several seeds the interval is widened to hold the mean of the runs' own intervals too: a
few seeds can agree by chance (two debiased bias norms both clipped at 0, say), which
would make the t-interval claim a precision no single probe had.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from analysis.schema import CONFIG_KEY, DESCRIPTIVE, LEARNED

AVERAGED = ["temperature", *(c.name for c in LEARNED)]  # mean over seeds, no interval
METRICS = ["bias_sq", "bias_norm", "relative_bias", "variance", "mse", "snr", "cosine", "work_normalized_variance", "seconds_per_estimate"]
OWN_CI = ("bias_norm", "variance")  # metrics whose per-run CI a single seed can fall back on
NONNEGATIVE = ("bias_norm", "relative_bias", "variance", "mse", "work_normalized_variance", "seconds_per_estimate")


def _interval(values: pd.Series, level: float) -> tuple[float, float, float]:
    x = values.to_numpy(dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, np.nan, np.nan
    half = float(scipy_stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def seed_warnings(group: pd.DataFrame) -> str:
    """The probes' warnings over a configuration's seeds: "" when none, else e.g.
    "2 of 3 seeds: two distinct draws: ..." (each distinct message once)."""
    warned = group["warning"].fillna("").astype(str)
    warned = warned[warned != ""]
    if warned.empty:
        return ""
    return f"{len(warned)} of {len(group)} seeds: " + "; ".join(sorted(warned.unique()))


def summarize(stats: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """[configurations x steps] rows, as a reader scans them (by task, overrides, estimator):
    config_id, overrides, task, family, estimator, knobs, step, seeds, evaluations, the
    AVERAGED columns, and for each metric M: M, M_lo, M_hi."""
    if stats.empty:
        return pd.DataFrame()
    keys = CONFIG_KEY + ["step"]
    # equal across a configuration's jobs, except overrides of keys its config_id leaves out
    # (a temperature reinforce does not read): those are all listed
    described = stats.groupby(keys)[DESCRIPTIVE].agg(lambda c: " | ".join(sorted(c.astype(str).unique())))
    frame = stats.drop_duplicates(subset=keys + ["seed"])  # one config_id and seed: one measurement
    rows = []
    for key, group in frame.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, key)) | described.loc[key].to_dict()
        row["seeds"] = int(group["seed"].nunique())
        row["evaluations"] = float(group["evaluations"].mean())
        row |= {c: float(group[c].astype(float).mean()) for c in AVERAGED}
        row["warning"] = seed_warnings(group)
        for metric in METRICS:
            mean, lo, hi = _interval(group[metric], level)
            if metric == "bias_norm" and len(group) > 1:  # from the unbiased bias_sq: a mean of clipped norms is biased up
                sq, sq_lo, sq_hi = _interval(group["bias_sq"], level)
                mean, lo, hi = (float(np.sqrt(max(v, 0.0))) for v in (sq, sq_lo, sq_hi))
            if metric in OWN_CI:
                own_lo, own_hi = float(group[f"{metric}_lo"].mean()), float(group[f"{metric}_hi"].mean())
                lo, hi = (own_lo, own_hi) if len(group) == 1 else (min(lo, own_lo), max(hi, own_hi))
            if metric in NONNEGATIVE and lo < 0:
                lo = 0.0  # the t-interval knows no bounds; these metrics do
            row |= {metric: mean, f"{metric}_lo": lo, f"{metric}_hi": hi}
        rows.append(row)
    frame = pd.DataFrame(rows)
    first = ["config_id", "overrides", "task", "family", "estimator", "knobs", "step", "seeds"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    order = ["task", "overrides", "estimator", "config_id", "step"]
    return frame.sort_values(order, ignore_index=True)
