"""Terminal tables of probe statistics."""
from __future__ import annotations

import pandas as pd

from analysis.aggregate import summarize
from analysis.schema import CONFIG_KEY


def interval(value: float, lo: float, hi: float) -> str:
    return f"{value:.3g}" if pd.isna(lo) or pd.isna(hi) else f"{value:.3g} [{lo:.3g}, {hi:.3g}]"


SHOWN_AS_COLUMNS = ("task", "estimator", "temperature", "estimator.temperature")


def _shown(token: str, estimator: str, hide: tuple[str, ...]) -> bool:
    """Whether a column already shows ``token`` for a row of ``estimator``: ``estimator=NAME``
    only on that estimator's own rows (on a basket's row it says which run probed it)."""
    key, _, value = token.partition("=")
    if key == "estimator":
        return key in hide and value == estimator.split("[", 1)[0]
    return key in hide


def distinguishing(frame: pd.DataFrame, hide: tuple[str, ...] = SHOWN_AS_COLUMNS) -> pd.Series:
    """Each row's overrides less the ones every row shares and those of the keys in ``hide``
    (shown otherwise: as columns, panels, axes): what tells the jobs of a sweep apart (the
    files keep them all). ``frame`` has ``overrides`` and ``estimator``."""
    tokens = frame["overrides"].map(lambda o: [t for part in o.split(" | ") for t in part.split()])
    shared = set.intersection(*map(set, tokens)) if len(tokens) else set()
    kept = [dict.fromkeys(t for t in ts if t not in shared and not _shown(t, e, hide))
            for ts, e in zip(tokens, frame["estimator"])]  # fmt: skip
    return pd.Series([" ".join(k) for k in kept], index=frame.index, dtype=object)


def first_probes(summary: pd.DataFrame) -> pd.DataFrame:
    """Each configuration (CONFIG_KEY) at its first probe step, from ``summarize``'s rows:
    every estimator of a run at the same parameters, seeds pooled."""
    first = summary[summary["step"] == summary.groupby(CONFIG_KEY)["step"].transform("min")]
    return first.sort_values(["task", "overrides", "estimator"], kind="stable")


def format_results(stats: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Bias norm, variance (95% CIs; over seeds as in summary.csv) and MSE of each
    configuration at its first probe, then failed runs."""
    lines = []
    if not stats.empty:
        first = first_probes(summarize(stats))
        table = pd.DataFrame({
            "task": first["task"], "family": first["family"], "estimator": first["estimator"],
            "overrides": distinguishing(first),
            "temperature": first["temperature"].map(lambda t: "" if pd.isna(t) else f"{t:g}"),
            "seeds": first["seeds"],
            "bias_norm [95% CI]": [interval(*v) for v in first[["bias_norm", "bias_norm_lo", "bias_norm_hi"]].values],
            "variance [95% CI]": [interval(*v) for v in first[["variance", "variance_lo", "variance_hi"]].values],
            "mse": first["mse"].map(lambda v: f"{v:.3g}"),
            "evals": first["evaluations"].map(lambda v: f"{v:g}"),
            "us/estimate": (first["seconds_per_estimate"] * 1e6).map(lambda v: f"{v:.3g}"),
            "warning": first["warning"],
        })  # fmt: skip
        if (table["warning"] == "").all():
            table = table.drop(columns="warning")
        if (table["overrides"] == "").all():
            table = table.drop(columns="overrides")  # a plain sweep: task, estimator, temperature say it all
        samples = ", ".join(str(n) for n in sorted(stats["samples"].unique()))
        references = ", ".join(sorted(stats["reference"].unique()))
        step = first["step"].min()
        lines.append(f"Gradient estimates at step {step} ({samples} draws each, "
                     f"reference: {references})")
        lines.append(table.to_string(index=False))
    bad = runs[runs["status"] != "ok"]
    if not bad.empty:
        lines.append(f"\n{len(bad)} of {len(runs)} runs did not finish ok:")
        lines += [f"  {r.run}: {r.status}: {r.error}" for r in bad.itertuples()]
    return "\n".join(lines)
