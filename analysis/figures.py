"""The report's figures: each a pure function DataFrame -> matplotlib Figure (seaborn style).

Inputs are the tables of analysis/: ``summary`` from aggregate.summarize (one row per
configuration and step), ``stats`` and ``train`` from collect. One panel per task; colours
are fixed per estimator across figures; every legend sits outside the axes (to the right of
the panels), so it never covers data.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.schema import CONFIG_KEY  # noqa: E402
from analysis.tables import distinguishing  # noqa: E402

# the training metric shown per task: the first of these its train.csv has
TRAIN_METRICS = ("exact_objective", "kl", "train_neg_elbo", "objective")


def palette(estimators: list[str]) -> dict[str, tuple]:
    names = sorted(set(estimators))
    return dict(zip(names, sns.color_palette("tab10", len(names))))


def _panels(tasks: list[str], title: str) -> tuple[Figure, list[plt.Axes]]:
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.0 * len(tasks), 4.0), squeeze=False, layout="constrained")
    fig.suptitle(title)
    for ax, task in zip(axes[0], tasks):
        ax.set_title(task)
    return fig, list(axes[0])


def _legend(fig: Figure, handles: list, title: str = "estimator") -> None:
    """One legend for the figure, outside the panels on the right."""
    if handles:
        fig.legend(handles=handles, title=title, loc="outside right center", frameon=False)


def _empty(title: str, message: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    fig.suptitle(title)
    return fig


def _series(frame: pd.DataFrame) -> pd.Series:
    """What tells a line apart: the estimator label, plus the configuration's distinguishing
    overrides other than those the figure shows by panel, x axis or colour (so
    configurations that differ in, say, task.target are separate lines, never one)."""
    rest = distinguishing(frame)
    return pd.Series([f"{e} {r}".strip() for e, r in zip(frame["estimator"], rest)], index=frame.index)


def _first_step(summary: pd.DataFrame) -> pd.DataFrame:
    """Each configuration (CONFIG_KEY) at its first probe step, with its ``series`` label."""
    first = summary[summary["step"] == summary.groupby(CONFIG_KEY)["step"].transform("min")]
    return first.assign(series=_series(first))


def versus_temperature(summary: pd.DataFrame, metric: str, label: str) -> Figure:
    """metric (mean, 95% CI) vs temperature per estimator, log-log; estimators without a
    temperature are horizontal dashed lines (with their CI as a band)."""
    title = f"{label} vs temperature (first probe)"
    if summary.empty:
        return _empty(title, "no probe statistics")
    data = _first_step(summary)
    tasks, colours = sorted(data["task"].unique()), palette(data["series"])
    fig, axes = _panels(tasks, title)
    handles = {}
    for ax, task in zip(axes, tasks):
        rows = data[data["task"] == task]
        swept = rows[rows["temperature"].notna()]
        for estimator, group in swept.groupby("series"):
            group = group.sort_values("temperature")
            err = np.vstack([group[metric] - group[f"{metric}_lo"], group[f"{metric}_hi"] - group[metric]])
            ax.errorbar(group["temperature"], group[metric], yerr=np.nan_to_num(err.clip(min=0)), marker="o",
                        capsize=3, color=colours[estimator])  # fmt: skip
            handles[estimator] = Line2D([], [], color=colours[estimator], marker="o", label=estimator)
        for estimator, group in rows[rows["temperature"].isna()].groupby("series"):
            row = group.iloc[0]
            ax.axhline(row[metric], color=colours[estimator], linestyle="--")
            if np.isfinite([row[f"{metric}_lo"], row[f"{metric}_hi"]]).all():
                ax.axhspan(row[f"{metric}_lo"], row[f"{metric}_hi"], color=colours[estimator], alpha=0.12)
            handles[estimator] = Line2D([], [], color=colours[estimator], linestyle="--", label=f"{estimator} (no temperature)")
        ax.set_xscale("log")
        if (rows[metric] > 0).all():
            ax.set_yscale("log")
        ax.set_xlabel("temperature")
        ax.set_ylabel(label)
    _legend(fig, [handles[k] for k in sorted(handles)])
    return fig


def variance_vs_temperature(summary: pd.DataFrame) -> Figure:
    return versus_temperature(summary, "variance", "variance tr Cov")


def bias_vs_temperature(summary: pd.DataFrame) -> Figure:
    return versus_temperature(summary, "bias_norm", "bias norm")


def _label(row: pd.Series) -> str:
    return row["series"] if pd.isna(row["temperature"]) else f"{row['series']} τ={row['temperature']:g}"


def bias_variance_plane(summary: pd.DataFrame) -> Figure:
    """bias^2 against variance (log-log) per configuration, with iso-MSE lines
    bias^2 + variance = c at powers of ten."""
    title = "bias² vs variance (first probe); grey: iso-MSE lines"
    if summary.empty:
        return _empty(title, "no probe statistics")
    data = _first_step(summary)
    tasks, colours = sorted(data["task"].unique()), palette(data["series"])
    markers = dict(zip(sorted(data["temperature"].dropna().unique()), "osD^v*X"))
    no_temperature = "P"
    fig, axes = _panels(tasks, title)
    for ax, task in zip(axes, tasks):
        rows = data[data["task"] == task]
        variance, bias2 = rows["variance"].clip(lower=1e-300), rows["bias_norm"] ** 2
        x_lo, x_hi = variance.min() / 3, variance.max() * 3
        positive = bias2[bias2 > 0]
        y_lo = (positive.min() if len(positive) else x_lo) / 3
        y_hi = max(bias2.max(), y_lo) * 3
        bias2 = bias2.clip(lower=y_lo)  # a bias estimated as 0 sits on the bottom edge
        for (_, row), v, b in zip(rows.iterrows(), variance, bias2):
            ax.scatter(v, b, color=colours[row["series"]], marker=markers.get(row["temperature"], no_temperature), s=50, clip_on=False)
        lo, hi = min(x_lo, y_lo), max(x_hi, y_hi)
        grid = np.logspace(np.log10(lo), np.log10(hi), 400)
        for c in 10.0 ** np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(2 * hi)) + 1):
            keep = grid < c
            ax.plot(grid[keep], c - grid[keep], color="grey", lw=0.7, alpha=0.6)
        ax.set(xlim=(x_lo, x_hi), ylim=(y_lo, y_hi))
        ax.set(xscale="log", yscale="log", xlabel="variance", ylabel="bias² (0: on the bottom edge)")
    handles = [Line2D([], [], color=colours[e], marker="o", linestyle="", label=e) for e in sorted(colours)]
    handles += [Line2D([], [], color="black", marker=m, linestyle="", label=f"τ={t:g}") for t, m in markers.items()]
    if data["temperature"].isna().any():
        handles.append(Line2D([], [], color="black", marker=no_temperature, linestyle="", label="no temperature"))
    _legend(fig, handles, "estimator, temperature")
    return fig


def work_normalized_variance(summary: pd.DataFrame) -> Figure:
    """variance x evaluations of f per configuration (log scale): the variance at equal work."""
    title = "work-normalized variance (variance × evaluations of f), first probe"
    if summary.empty:
        return _empty(title, "no probe statistics")
    data = _first_step(summary)
    data = data.assign(configuration=[_label(r) for _, r in data.iterrows()])
    tasks, colours = sorted(data["task"].unique()), palette(data["series"])
    fig, axes = _panels(tasks, title)
    for ax, task in zip(axes, tasks):
        rows = data[data["task"] == task].sort_values(["series", "temperature"])
        at = np.arange(len(rows))  # one bar per configuration, even where two share a label
        ax.barh(at, rows["work_normalized_variance"], color=[colours[e] for e in rows["series"]])
        ax.set_yticks(at, rows["configuration"])
        ax.set_xscale("log")
        ax.set_xlabel("variance × evaluations")
        ax.invert_yaxis()
    return fig


def _train_metric(rows: pd.DataFrame) -> str:
    return next(m for m in TRAIN_METRICS if m in rows and rows[m].notna().any())


def training_curves(train: pd.DataFrame, x: str = "step") -> Figure:
    """The task's training metric (TRAIN_METRICS) against ``x`` (step or train_seconds), one line per
    run (colour: estimator; runs at several temperatures are separate lines)."""
    title = f"training curves vs {'training seconds (probes excluded)' if x == 'train_seconds' else 'step'}"
    if train.empty:
        return _empty(title, "no training rows")
    tasks, colours = sorted(train["task"].unique()), palette(train["estimator"])
    fig, axes = _panels(tasks, title)
    for ax, task in zip(axes, tasks):
        rows = train[train["task"] == task]
        metric = _train_metric(rows)
        for _, group in rows.groupby("run"):
            ax.plot(group[x], group[metric], color=colours[group["estimator"].iloc[0]], lw=1.2, alpha=0.8)
        ax.set_xlabel("step" if x == "step" else "training seconds")
        ax.set_ylabel(metric)
    _legend(fig, [Line2D([], [], color=colours[e], label=e) for e in sorted(colours)])
    return fig


def variance_along_training(summary: pd.DataFrame) -> Figure:
    """Gradient variance (mean over seeds, 95% CI) at each probe step, per configuration."""
    title = "gradient variance along training"
    if summary.empty:
        return _empty(title, "no probe statistics")
    summary = summary.assign(series=_series(summary))
    tasks, colours = sorted(summary["task"].unique()), palette(summary["series"])
    first = summary.sort_values("step").groupby(CONFIG_KEY)["temperature"].transform("first")  # a learned one moves
    styles = dict(zip(sorted(first.dropna().unique()), ["-", "--", ":", "-."] * 3))
    summary = summary.assign(start_temperature=first)
    fig, axes = _panels(tasks, title)
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        for (_, _, estimator), group in rows.groupby(CONFIG_KEY + ["series"]):
            group = group.sort_values("step")
            style = styles.get(group["start_temperature"].iloc[0], "-")
            ax.plot(group["step"], group["variance"], color=colours[estimator], linestyle=style, marker="o", ms=3)
            ax.fill_between(group["step"], group["variance_lo"], group["variance_hi"], color=colours[estimator], alpha=0.12)
        if (rows["variance"] > 0).all():
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("variance tr Cov")
    handles = [Line2D([], [], color=colours[e], label=e) for e in sorted(colours)]
    handles += [Line2D([], [], color="black", linestyle=s, label=f"τ={t:g}") for t, s in styles.items()]
    _legend(fig, handles, "estimator, temperature")
    return fig


def all_figures(summary: pd.DataFrame, train: pd.DataFrame) -> dict[str, Figure]:
    """Every figure of the report, by file stem."""
    return {
        "variance_vs_temperature": variance_vs_temperature(summary),
        "bias_vs_temperature": bias_vs_temperature(summary),
        "bias_variance_plane": bias_variance_plane(summary),
        "work_normalized_variance": work_normalized_variance(summary),
        "training_vs_step": training_curves(train, "step"),
        "training_vs_seconds": training_curves(train, "train_seconds"),
        "variance_along_training": variance_along_training(summary),
    }
