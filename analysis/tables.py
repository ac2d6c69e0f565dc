"""Tables of probe statistics: the end-of-sweep table (terminal) and the rows of report.html's.

Both show each configuration (CONFIG_KEY) at its first probe step and at its final one (the
last step probed) side by side, sorted within each task by the final MSE; a configuration
probed at one step only (steps=0) shows it once.
"""
from __future__ import annotations

import math

import pandas as pd

from analysis.aggregate import summarize
from analysis.schema import CONFIG_KEY


def interval(value: float, lo: float, hi: float) -> str:
    return f"{value:.3g}" if pd.isna(lo) or pd.isna(hi) else f"{value:.3g} [{lo:.3g}, {hi:.3g}]"


SHOWN_AS_COLUMNS = ("task", "estimator", "temperature", "estimator.temperature")


def _shown(token: str, estimator: str, temperature: float | None, hide: tuple[str, ...]) -> bool:
    """Whether a column already shows ``token`` for a row of ``estimator``: ``estimator=NAME``
    only on that estimator's own rows (on a basket's row it says which run probed it); given
    the row's ``temperature`` (NaN: none), ``temperature=T`` only where that column shows T
    (on a row without one, it says which run probed it)."""
    key, _, value = token.partition("=")
    if key == "estimator":
        return key in hide and value == estimator.split("[", 1)[0]
    if temperature is not None and key in ("temperature", "estimator.temperature"):
        return key in hide and math.isclose(_number(value), temperature, rel_tol=1e-9)
    return key in hide


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def distinguishing(frame: pd.DataFrame, hide: tuple[str, ...] = SHOWN_AS_COLUMNS,
                   by_temperature: bool = False) -> pd.Series:  # fmt: skip
    """Each row's overrides less the ones every row shares and those of the keys in ``hide``
    (shown otherwise: as columns, panels, axes): what tells the jobs of a sweep apart (the
    files keep them all). ``frame`` has ``overrides`` and ``estimator``.

    ``by_temperature``, for a table with a row's own ``temperature`` column: a temperature
    override is hidden only where that column shows it, and the overrides that differ
    between the jobs of one configuration (``summarize`` joins them with " | ": keys its
    config_id leaves out, such as the temperature reinforce does not read) are left out."""
    jobs = frame["overrides"].map(lambda o: [part.split() for part in o.split(" | ")])
    if by_temperature:  # what every job of the configuration typed
        tokens = jobs.map(lambda js: [t for t in js[0] if all(t in j for j in js)])
        temperatures = frame["temperature"].astype(float)
    else:
        tokens = jobs.map(lambda js: [t for j in js for t in j])
        temperatures = [None] * len(frame)  # not a Series of None: pandas 3 makes it NaN
    shared = set.intersection(*map(set, tokens)) if len(tokens) else set()
    kept = [dict.fromkeys(t for t in ts if t not in shared and not _shown(t, e, T, hide))
            for ts, e, T in zip(tokens, frame["estimator"], temperatures)]  # fmt: skip
    return pd.Series([" ".join(k) for k in kept], index=frame.index, dtype=object)


def _warnings(first: str, final: str, at: tuple[str, str]) -> str:
    """The probes' warnings at both steps: once where they agree, else each with its step."""
    if first == final:
        return first
    return "; ".join(f"{label}: {text}" for label, text in zip(at, (first, final)) if text)


def first_and_final(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration from ``summarize``'s rows: its columns at its first probe
    step, and every column C also as C_final at its final step (the last one probed, which
    ``step_final`` holds); sorted by task, then final MSE (ties: overrides, estimator)."""
    steps = summary.groupby(CONFIG_KEY)["step"]
    first = summary[summary["step"] == steps.transform("min")].set_index(CONFIG_KEY)
    final = summary[summary["step"] == steps.transform("max")].set_index(CONFIG_KEY)
    rows = first.join(final.add_suffix("_final")).reset_index()
    rows = rows.sort_values(["task", "overrides", "estimator"], kind="stable")
    return rows.sort_values(["task", "mse_final"], kind="stable", na_position="last")


def step_labels(rows: pd.DataFrame) -> tuple[str, str] | tuple[str]:
    """Column suffixes of the first and the final step: "@0", "@50" (the step, where every
    configuration shares it, else "@first", "@final"); one where no configuration was
    probed after its first step."""
    if (rows["step"] == rows["step_final"]).all() and rows["step"].nunique() == 1:
        return (f"@{rows['step'].iloc[0]}",)
    first = f"@{rows['step'].iloc[0]}" if rows["step"].nunique() == 1 else "@first"
    final = f"@{rows['step_final'].iloc[0]}" if rows["step_final"].nunique() == 1 else "@final"
    return first, final


def step_columns(rows: pd.DataFrame, at: tuple[str, ...]) -> dict[str, pd.Series]:
    """seeds, the final step where configurations differ in it, then bias norm and variance
    [95% CI] and MSE at each step of ``at`` side by side, and the probes' warnings."""
    suffixes = ("", "_final")[: len(at)]
    seeds = [str(a) if a == b else f"{a}→{b}" for a, b in zip(rows["seeds"], rows["seeds_final"])]
    columns = {"seeds": pd.Series(seeds, index=rows.index)}
    if at[-1] == "@final":
        columns["final step"] = rows["step_final"]
    for name, metric in (("bias norm", "bias_norm"), ("variance", "variance")):
        for label, s in zip(at, suffixes):
            ends = rows[[f"{metric}{s}", f"{metric}_lo{s}", f"{metric}_hi{s}"]].values
            columns[f"{name} {label}"] = pd.Series([interval(*v) for v in ends], index=rows.index)
    for label, s in zip(at, suffixes):
        columns[f"MSE {label}"] = rows[f"mse{s}"].map(lambda v: f"{v:.3g}")
    warned = zip(rows["warning"], rows["warning_final"])
    columns["warning"] = pd.Series([_warnings(a, b, at) if len(at) == 2 else a for a, b in warned],
                                   index=rows.index)  # fmt: skip
    return columns


def temperatures(rows: pd.DataFrame) -> pd.Series:
    """The temperature column as shown: empty for an estimator without one."""
    return rows["temperature"].map(lambda t: "" if pd.isna(t) else f"{t:g}")


def _steps_title(at: tuple[str, ...]) -> str:
    """"step 0", "steps 0 and 50", or with "first"/"final" for steps that differ by row."""
    steps = [label[1:] for label in at]
    if len(steps) == 1:
        return f"step {steps[0]}"
    if all(step.isdigit() for step in steps):
        return f"steps {steps[0]} and {steps[1]}"
    named = [f"step {s}" if s.isdigit() else f"each configuration's {s} step" for s in steps]
    return " and ".join(named)


def split_basket(stats: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trained estimators' own probes (a run's ``estimator`` in its ``config_id``) and the
    others (probe.estimators, probed beside them at the trained parameters)."""
    if stats.empty or runs.empty or not {"config_id", "estimator"} <= set(runs.columns):
        return stats, stats.iloc[:0]
    trained = pd.MultiIndex.from_frame(runs[["config_id", "estimator"]].astype(str).drop_duplicates())
    own = pd.MultiIndex.from_frame(stats[["config_id", "estimator"]].astype(str)).isin(trained)
    return stats[own], stats[~own]


def results_columns(rows: pd.DataFrame, at: tuple[str, ...], extra: dict[str, pd.Series] | None = None,
                    overrides: pd.Series | None = None, report: bool = False) -> pd.DataFrame:  # fmt: skip
    """The columns of a results table of ``first_and_final`` rows at the steps ``at``, as the
    end-of-sweep table shows them, or (``report``) as report.html does: also the knobs, the
    work-normalized variance and the config_id, with wider headings. ``extra`` comes after the
    temperature; ``overrides`` is the column as shown, by default ``distinguishing``'s."""
    temp, rate = ("temp.", "µs / est.") if report else ("temp", "us/est")
    cost = {"evals": rows["evaluations_final"].map("{:g}".format)}  # at the final step
    if report:
        cost["var. x evals"] = rows["work_normalized_variance_final"].map("{:.3g}".format)
    cost[rate] = (rows["seconds_per_estimate_final"] * 1e6).map("{:.3g}".format)
    columns = step_columns(rows, at)
    warning = columns.pop("warning")
    table = pd.DataFrame({
        "task": rows["task"], "family": rows["family"], "estimator": rows["estimator"],
        "overrides": distinguishing(rows, by_temperature=True) if overrides is None else overrides,
        **({"knobs": rows["knobs"]} if report else {}), temp: temperatures(rows), **(extra or {}),
        **columns, **cost, "warning": warning, **({"config_id": rows["config_id"]} if report else {}),
    }).reset_index(drop=True)  # fmt: skip
    if rows.groupby("task")["family"].nunique().max() == 1:
        table = table.drop(columns="family")  # the task says it
    if (table["overrides"] == "").all():
        table = table.drop(columns="overrides")  # a plain sweep: task, estimator, temperature say it all
    return table


def _table(rows: pd.DataFrame, at: tuple[str, ...], extra: dict[str, pd.Series] | None = None,
           overrides: pd.Series | None = None) -> list[str]:  # fmt: skip
    """The lines of one end-of-sweep table (``results_columns``)."""
    table = results_columns(rows, at, extra, overrides)
    warning = table.pop("warning")
    if (warning != "").any():  # last, read from the left (to_string right-aligns)
        width = max(warning.str.len().max(), len("warning"))
        table["warning".ljust(width)] = warning.str.ljust(width)
    return [line.rstrip() for line in table.to_string(index=False).splitlines()]


MEASURED = ["task", "family", "estimator", "knobs", "temperature", "step", "seeds", "bias_sq", "variance", "mse"]


def basket_at_start(basket: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The basket's rows at their first probe step, one per measurement: the runs of a sweep
    start from the same parameters and draw a probe's noise from (seed, step, label), so at
    step 0 their baskets measure the same thing, number for number; rows equal in every
    measured value are one row, ``runs`` says how many (rows that differ in anything stay apart).
    Returns the rows, ``runs`` and the overrides column (blank on a row of several runs)."""
    rows = first_and_final(summarize(basket))
    key = rows[MEASURED].map(repr).agg("|".join, axis=1)
    runs = key.map(key.value_counts())
    keep = ~key.duplicated()
    shown = distinguishing(rows, by_temperature=True).where(runs == 1, "")  # one run's would misname a row of several
    rows = rows[keep].copy()
    for final in [c for c in rows.columns if c.endswith("_final")]:  # shown at the first step only
        rows[final] = rows[final.removesuffix("_final")]
    rows = rows.sort_values(["task", "mse"], kind="stable")
    return rows, runs[keep].loc[rows.index].astype(str), shown[keep].loc[rows.index]


def format_results(stats: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Bias norm, variance (95% CIs; over seeds as in summary.csv) and MSE of each trained
    configuration at its first and final probe; then the estimators probed beside them
    (probe.estimators) at the first step, one row per distinct measurement (their final-step
    rows, one per run, are report.html's); then the runs that failed or warned."""
    lines = []
    if not stats.empty:
        trained, basket = split_basket(stats, runs)
        rows = first_and_final(summarize(trained if not trained.empty else stats))
        at = step_labels(rows)
        samples = ", ".join(str(n) for n in sorted(stats["samples"].unique()))
        references = ", ".join(sorted(stats["reference"].unique()))
        lines.append(f"Gradient estimates at {_steps_title(at)} ({samples} draws each, "
                     f"reference: {references}); mean over seeds [95% CI], by MSE {at[-1]} within a task")
        lines += _table(rows, at)
        if not trained.empty and not basket.empty:
            start, count, shown = basket_at_start(basket)
            first = step_labels(start)
            lines += ["", f"Estimators probed beside them (probe.estimators) at {_steps_title(first)}, at the trained "
                          "runs' shared starting parameters; runs: how many runs measured the row (the same draws); "
                          f"their {basket[CONFIG_KEY].drop_duplicates().shape[0]} final-step rows, one per run: report.html"]
            lines += _table(start, first, {"runs": count}, shown)
    lines += run_problems(runs)
    return "\n".join(lines)


def run_problems(runs: pd.DataFrame) -> list[str]:
    """Lines for the runs that did not finish ok, then those that did with a warning."""
    lines = []
    bad = runs[runs["status"] != "ok"]
    if not bad.empty:
        lines.append(f"\n{len(bad)} of {len(runs)} runs did not finish ok:")
        lines += [f"  {r.run}: {r.status}: {r.error}" for r in bad.itertuples()]
    warning = runs["warning"].fillna("") if "warning" in runs else pd.Series("", index=runs.index)
    warned = runs[(runs["status"] == "ok") & (warning != "")]
    if not warned.empty:
        lines.append(f"\n{len(warned)} of {len(runs)} runs finished ok with a warning:")
        lines += [f"  {r.run}: {r.warning}" for r in warned.itertuples()]
    return lines
