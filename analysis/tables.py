"""Terminal tables of probe statistics."""
from __future__ import annotations

import pandas as pd

KEY = ["task", "family", "estimator", "settings", "temperature"]


def _interval(value: float, lo: float, hi: float) -> str:
    return f"{value:.3g} [{lo:.3g}, {hi:.3g}]"


def first_probes(stats: pd.DataFrame) -> pd.DataFrame:
    """Each run's first probe (step 0), one row per estimator it probed: all estimators at
    the same parameters. Jobs that differ only in a knob their estimator ignores (temperature for
    reinforce, say) measured the same thing with the same seed; they are shown once."""
    first = stats[stats["step"] == stats.groupby("run")["step"].transform("min")]  # every estimator probed there
    return first.drop_duplicates(subset=KEY + ["seed"]).sort_values(KEY, na_position="first")


def format_results(stats: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Bias norm, variance (95% CIs) and MSE of each run's first probe, then failed runs."""
    lines = []
    if not stats.empty:
        first = first_probes(stats)
        table = pd.DataFrame({
            "task": first["task"], "family": first["family"], "estimator": first["estimator"],
            "temperature": first["temperature"].map(lambda t: "" if pd.isna(t) else f"{t:g}"),
            "bias_norm [95% CI]": [_interval(*v) for v in first[["bias_norm", "bias_norm_lo", "bias_norm_hi"]].values],
            "variance [95% CI]": [_interval(*v) for v in first[["variance", "variance_lo", "variance_hi"]].values],
            "mse": first["mse"].map(lambda v: f"{v:.3g}"),
            "evals": first["evaluations"],
            "us/estimate": (first["seconds_per_estimate"] * 1e6).map(lambda v: f"{v:.3g}"),
        })  # fmt: skip
        settings = first["settings"].fillna("")
        if (settings != "").any():
            table.insert(3, "settings", settings.values)
        lines.append(f"Gradient estimates at step {first['step'].min()} ({first['samples'].iloc[0]} draws each, reference: "
                     f"{', '.join(sorted(first['reference'].unique()))})")
        lines.append(table.to_string(index=False))
    bad = runs[runs["status"] != "ok"]
    if not bad.empty:
        lines.append(f"\n{len(bad)} of {len(runs)} runs did not finish ok:")
        lines += [f"  {r.run}: {r.status}: {r.error}" for r in bad.itertuples()]
    return "\n".join(lines)
