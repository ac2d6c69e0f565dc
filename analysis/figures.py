"""The report's figures: each a pure function DataFrame -> matplotlib Figure (seaborn style).

Inputs are the tables of analysis/: ``summary`` from aggregate.summarize (one row per
configuration and step), ``stats`` and ``train`` from collect. One panel per task; a line's
colour is its estimator's hue (lighter for each further configuration of it); every legend
sits outside the axes (right of the panels, or below them when long), the figure grown to
hold it, so it covers no data. Where each configuration is one point (a forest plot), the
configurations are rows named by horizontal tick labels and need no legend; the figure is as
tall as its rows and as wide as its longest label beside the plot.

How to read them: intervals are the 95% CIs of aggregate.summarize (bands along a curve,
error bars on points). Axes of quantities that are often estimated as 0 (bias, variance)
are symlog: logarithmic above a threshold the axis label names, linear from 0 up to it, so
a zero has its own place, marked by a black line, and small values still show.
Temperatures are compared at 3 significant digits (a float32 0.1 is the temperature 0.1).
"""
from __future__ import annotations

import textwrap
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from analysis.schema import CONFIG_KEY  # noqa: E402
from analysis.tables import MEASURED, SHOWN_AS_COLUMNS, distinguishing  # noqa: E402

# train.csv metric -> its name in words; a task's curve is the first of these its train.csv has
METRIC_LABELS = {
    "exact_objective": "exact objective E_q[f(z)]",
    "kl": "KL(q || p)",
    "train_neg_elbo": "train -ELBO (nats)",
    "test_neg_elbo": "test -ELBO (nats)",
    "test_iwae_100": "test -IWAE bound, k=100 (nats)",
    "objective": "objective (mean estimate since the last row)",
}
DECADES = 4  # a symlog axis is logarithmic at most this many decades below its largest value
LINESTYLES = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2))]
MARKERS = "osD^v*X<>"
PAGE = 10.5  # inches: 1155 px at the report's 110 dpi, what a 1280-px window shows unscaled
ROW = 0.3  # inches per row of a forest plot: a 9-point tick label and air
WRAP = 60  # characters: a forest plot's longer labels wrap


def palette(labels: pd.Series, estimators: pd.Series) -> dict[str, tuple]:
    """A colour per line label: its estimator's hue (tab10; husl beyond ten estimators), each
    further label of one estimator (another configuration of it) a lighter shade."""
    pairs = pd.DataFrame({"label": labels, "estimator": estimators}).drop_duplicates("label")
    names = sorted(pairs["estimator"].unique())
    hues = dict(zip(names, sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))))
    colours = {}
    for estimator, group in pairs.groupby("estimator"):
        hue, variants = np.array(hues[estimator]), sorted(group["label"])
        for i, label in enumerate(variants):
            colours[label] = tuple(hue + (1 - hue) * 0.6 * i / max(1, len(variants) - 1))
    return colours


def _panels(tasks: list[str], title: str, height: float = 4.0, stacked: list[float] | None = None,
            width: float | None = None):  # fmt: skip
    """One axes per task, side by side (5 inches each unless ``width`` says) or one above the
    other (``stacked`` giving their relative heights); returns (figure, axes)."""
    sns.set_theme(style="whitegrid", context="notebook")
    shape, width = ((len(tasks), 1) if stacked else (1, len(tasks))), width or 5.0 * len(tasks)
    fig, axes = plt.subplots(*shape, figsize=(width, height), squeeze=False, layout="constrained",
                             height_ratios=stacked)  # fmt: skip
    fig.suptitle(title)
    for ax, task in zip(axes.ravel(), tasks):
        ax.set_title(task)
    return fig, list(axes.ravel())


def _inches(fig: Figure, artist) -> np.ndarray:
    """The [width, height] ``artist`` takes on ``fig``, in inches."""
    return artist.get_window_extent(fig.canvas.get_renderer()).size / fig.dpi


def _legend(fig: Figure, handles: list, title: str = "estimator") -> None:
    """One legend for the figure, outside the panels, the figure grown by its size so the
    axes keep theirs: on the right where one column fits the figure's height and, beside the
    panels, the page's width (PAGE), else below in as many columns as the page holds."""
    if not handles:
        return
    style = dict(handles=handles, title=title, frameon=False, fontsize=9)
    legend = fig.legend(loc="outside right center", **style)
    (width, height), (w, h) = _inches(fig, legend), fig.get_size_inches()
    if height <= h - 0.8 and w + width <= PAGE:
        fig.set_figwidth(w + width + 0.1)
        return
    legend.remove()
    ncols = min(len(handles), max(1, int((max(w, PAGE) + 0.25) // (width + 0.25))))  # 0.25: column gap
    legend = fig.legend(loc="outside lower center", ncols=ncols, **style)
    width, height = _inches(fig, legend)
    fig.set_size_inches(max(w, width + 0.2), h + height + 0.1)


def _empty(title: str, message: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    fig.suptitle(title)
    return fig


def _tau(temperatures: pd.Series) -> pd.Series:
    """Temperatures at 3 significant digits (NaN: none), so float noise makes no new one."""
    return temperatures.astype(float).map(lambda t: float(f"{t:.3g}"))


def _series(frame: pd.DataFrame, hide: tuple[str, ...] = ()) -> pd.Series:
    """What tells a line apart: the estimator label, plus the configuration's distinguishing
    overrides other than those the figure shows by panel, x axis or colour, and ``hide`` (so
    configurations that differ in, say, task.target are separate lines, never one)."""
    rest = distinguishing(frame, SHOWN_AS_COLUMNS + hide)
    return pd.Series([f"{e} {r}".strip() for e, r in zip(frame["estimator"], rest)], index=frame.index)


def _pooled(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows equal in every measured value (analysis.tables.MEASURED) as one row, whose
    overrides are those its runs share: at the first probe a sweep's basket measures the same
    thing in every run (as basket_at_start pools it for the tables), and so do configurations
    that differ only in a knob the estimator does not read (st at three temperatures)."""
    key = rows[MEASURED].map(repr).agg("|".join, axis=1)
    pooled = []
    for _, group in rows.groupby(key, sort=False):
        row = group.iloc[0].copy()
        if len(group) > 1:
            tokens = [o.replace(" | ", " ").split() for o in group["overrides"]]
            row["overrides"] = " ".join(t for t in tokens[0] if all(t in other for other in tokens[1:]))
        pooled.append(row)
    return pd.DataFrame(pooled)


def _first_step(summary: pd.DataFrame) -> pd.DataFrame:
    """Each configuration (CONFIG_KEY) at its first probe step, equal measurements pooled
    (_pooled), with its ``series`` label and its temperature as ``tau``."""
    first = _pooled(summary[summary["step"] == summary.groupby(CONFIG_KEY)["step"].transform("min")])
    return first.assign(series=_series(first), tau=_tau(first["temperature"]))


def _label(row: pd.Series) -> str:
    return row["series"] if pd.isna(row["tau"]) else f"{row['series']} τ={row['tau']:g}"


def _err(mid, lo, hi) -> np.ndarray:
    """[2, n] distances from ``mid`` down to ``lo`` and up to ``hi``, for errorbar (0 where unknown)."""
    mid, lo, hi = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (mid, lo, hi))
    return np.nan_to_num(np.vstack([mid - lo, hi - mid]).clip(min=0))


def _zero_aware(ax: plt.Axes, axis: str, values) -> str:
    """Sets ``axis`` ("x" or "y") to symlog, linear below the smallest positive value (at most
    DECADES decades below the largest, floored to a power of ten), limits from just below 0,
    and marks 0 with a black line. Returns the axis-label suffix that says so."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    positive = v[v > 0]
    top = positive.max() if len(positive) else 1.0
    smallest = max(positive.min() if len(positive) else top, top / 10**DECADES)
    threshold = 10.0 ** np.floor(np.log10(smallest))
    getattr(ax, f"set_{axis}scale")("symlog", linthresh=threshold, linscale=0.4)
    getattr(ax, f"set_{axis}lim")(-0.3 * threshold, 2.5 * max(top, threshold))
    (ax.axhline if axis == "y" else ax.axvline)(0, color="black", lw=0.9, zorder=1)
    return f"(0 marked; log above {threshold:g})"


def _styles(taus: pd.Series, kind: str) -> tuple[Callable[[float], object], list[Line2D]]:
    """A ``kind`` ("marker" or "linestyle") per temperature, and the legend's entries: one
    per temperature (black, in its style) and "no temperature" where one is missing.
    Returns (temperature -> style, entries)."""
    cycle, none = (MARKERS, "P") if kind == "marker" else (LINESTYLES, "-")
    styles = {t: cycle[i % len(cycle)] for i, t in enumerate(sorted(taus.dropna().unique()))}
    labels = {f"τ={t:g}": s for t, s in styles.items()}
    labels |= {"no temperature": none} if taus.isna().any() else {}
    look = {"linestyle": ""} if kind == "marker" else {}
    entries = [Line2D([], [], color="black", label=label, **look, **{kind: s}) for label, s in labels.items()]
    return (lambda t: styles.get(t, none)), entries


def _swatches(colours: dict, **look) -> list[Line2D]:
    return [Line2D([], [], color=colours[name], label=name, **look) for name in sorted(colours)]


def _free(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of estimators without a temperature, one per line label (in a run's basket
    they are probed in every run of the sweep: at the first probe, the same measurement)."""
    return rows[rows["tau"].isna()].drop_duplicates("series").sort_values("series")


def _configurations(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of a forest plot, top down by label: each configuration with a temperature,
    one per label of those without (_free); its name (wrapped at WRAP) as ``configuration``."""
    rows = pd.concat([rows[rows["tau"].notna()], _free(rows)]).sort_values(["series", "tau"])
    names = [textwrap.fill(_label(r), WRAP, break_on_hyphens=False) for _, r in rows.iterrows()]
    return rows.assign(configuration=names)


def _forest_panels(title: str, rows: dict[str, pd.DataFrame | None]):
    """Panels one above the other (_panels), one per task: as tall as its forest plot's
    ``rows`` (None: a curve panel, 3.5 inches), wide enough for the longest ``configuration``
    of them beside a 5-inch plot."""
    names = [n.split("\n") for r in rows.values() if r is not None for n in r["configuration"]]
    row = ROW * max(map(len, names), default=1)  # inches: a row holds the most lines of a name
    sizes = [3.5 if r is None else row * max(2, len(r)) for r in rows.values()]
    width = max((TextPath((0, 0), line, size=9).get_extents().width for n in names for line in n), default=0)
    return _panels(list(rows), title, 1.0 + sum(sizes) + 0.7 * len(rows), sizes, 5.5 + width / 72)  # pt / 72


def _forest(ax: plt.Axes, rows: pd.DataFrame, columns: list[str], colours: dict) -> None:
    """Each of ``rows`` a point at its ``columns`` (mean, CI low, CI high) on the x axis, its
    CI a horizontal error bar, in its series' colour, one above the other in order, named by
    its ``configuration`` (a horizontal tick label: no legend needed)."""
    for y, (_, row) in enumerate(rows.iterrows()):
        ax.errorbar(row[columns[0]], y, xerr=_err(*row[columns]), fmt="o", ms=5, color=colours[row["series"]],
                    capsize=3)  # fmt: skip
    ax.set_yticks(range(len(rows)), rows["configuration"], fontsize=9)
    ax.set_ylim(len(rows) - 0.5, -0.5)


# ------------------------------------------------------------------ metric vs temperature


def _over_temperature(ax: plt.Axes, rows: pd.DataFrame, metric: str, colours: dict) -> dict:
    """Estimators with a temperature: mean (points) and CI band over it (log x); the others:
    a dashed line at their mean across, and their CI as an error bar right of the last
    temperature, above the tick "no τ"."""
    handles, taus = {}, sorted(rows["tau"].dropna().unique())
    for series, group in rows[rows["tau"].notna()].groupby("series"):
        group, colour = group.sort_values("tau"), colours[series]
        ax.plot(group["tau"], group[metric], marker="o", ms=5, color=colour)
        ax.fill_between(group["tau"], group[f"{metric}_lo"], group[f"{metric}_hi"], color=colour,
                        alpha=0.1, lw=0)  # fmt: skip
        handles[series] = Line2D([], [], color=colour, marker="o", label=series)
    free = _free(rows)
    at = taus[-1] * 1.5 * (1.06 ** np.arange(len(free)))
    for x, (_, row) in zip(at, free.iterrows()):
        colour = colours[row["series"]]
        ax.axhline(row[metric], color=colour, linestyle="--", lw=1)
        ax.errorbar(x, row[metric], yerr=_err(*row[[metric, f"{metric}_lo", f"{metric}_hi"]]), fmt="o", ms=5,
                    color=colour, capsize=3)  # fmt: skip
        label = f"{row['series']} (no temperature)"
        handles[label] = Line2D([], [], color=colour, linestyle="--", label=label)
    ax.set_xscale("log")
    ticks = taus + ([float(np.sqrt(at[0] * at[-1]))] if len(free) else [])
    ax.set_xticks(ticks, [f"{t:g}" for t in taus] + (["no τ"] if len(free) else []))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(free):
        ax.axvline(taus[-1] * 1.22, color="lightgrey", lw=1)
    ax.set_xlabel("temperature τ")
    return handles


def _why_no_curve(taus: list[float]) -> str:
    return f"single temperature τ={taus[0]:g}" if taus else "no estimator here reads a temperature"


def versus_temperature(summary: pd.DataFrame, metric: str, label: str) -> Figure:
    """``metric`` (mean over seeds, 95% CI) against temperature at the first probe, per
    estimator: a line with a CI band over the temperatures (log axis); an estimator without
    a temperature is a dashed line at its mean, its CI an error bar at "no τ". The metric's
    axis is symlog with 0 marked. With a single temperature (or none) there is no curve to
    draw: the title (a panel's title, where only that task has one) says so, and the panel
    is a forest plot, each configuration a row with its point and CI (_forest)."""
    title = f"{label} vs temperature (first probe)"
    if summary.empty:
        return _empty(title, "no probe statistics")
    data = _first_step(summary)
    taus = sorted(data["tau"].dropna().unique())
    if len(taus) < 2:
        title = f"{label} (first probe)\n{_why_no_curve(taus)}: no curve over temperature, a point each"
    tasks, colours = sorted(data["task"].unique()), palette(data["series"], data["estimator"])
    by_task = {task: data[data["task"] == task] for task in tasks}
    forests = {t: _configurations(rows) for t, rows in by_task.items() if rows["tau"].nunique() < 2}
    fig, axes = _forest_panels(title, {t: forests.get(t) for t in tasks}) if forests else _panels(tasks, title)
    columns, handles = [metric, f"{metric}_lo", f"{metric}_hi"], {}
    for ax, task in zip(axes, tasks):
        rows = by_task[task]
        if task in forests:
            _forest(ax, forests[task], columns, colours)
            ax.set_xlabel(f"{label} {_zero_aware(ax, 'x', rows[columns])}")
            if len(taus) >= 2:
                ax.set_title(f"{task}: {_why_no_curve(sorted(rows['tau'].dropna().unique()))}")
            continue
        handles |= _over_temperature(ax, rows, metric, colours)
        ax.set_ylabel(f"{label}\n{_zero_aware(ax, 'y', rows[columns])}")
    _legend(fig, [handles[k] for k in sorted(handles)])
    return fig


def variance_vs_temperature(summary: pd.DataFrame) -> Figure:
    return versus_temperature(summary, "variance", "variance tr Cov(g)")


def bias_vs_temperature(summary: pd.DataFrame) -> Figure:
    return versus_temperature(summary, "bias_norm", "bias norm ||E g - ∇||")


# ------------------------------------------------------------------ bias², variance, work


def _iso_mse(ax: plt.Axes) -> None:
    """Grey curves bias² + variance = c at powers of ten c across the axes' limits, each
    labelled "MSE c" where it crosses the diagonal (else near the top or right edge; a curve
    with no room for its label inside the axes is left out)."""
    (_, x1), (_, y1) = ax.get_xlim(), ax.get_ylim()
    smallest = min(ax.xaxis.get_transform().linthresh, ax.yaxis.get_transform().linthresh)
    for c in 10.0 ** np.arange(np.floor(np.log10(smallest)), np.ceil(np.log10(x1 + y1)) + 1):
        spots = [(c / 2, c / 2), (c - 0.5 * y1, 0.5 * y1), (0.5 * x1, c - 0.5 * x1)]
        inside = [(x, y) for x, y in spots if 0 < x <= x1 / 1.6 and 0 < y <= y1 / 1.3]
        if not inside:  # a curve that cannot carry its label inside the axes is not drawn
            continue
        bend = min(c, smallest)  # where the symlog axes turn linear
        v = np.concatenate([np.linspace(0, bend, 50), np.geomspace(bend, c, 300)])
        ax.plot(v, c - v, color="grey", lw=0.7, alpha=0.7, zorder=0)  # the limits are set: no autoscale
        ax.text(*inside[0], f"MSE {c:g}", color="dimgrey", fontsize=7, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))  # fmt: skip


def bias_variance_plane(summary: pd.DataFrame) -> Figure:
    """bias² against variance per configuration at the first probe, with both CIs as error
    bars (colour: estimator, marker: temperature), on symlog axes; grey curves of equal MSE
    (bias² + variance = c) are labelled with c. A bias estimated as 0 sits on the marked
    bias² = 0 line, apart from the small positive ones; its bar reaches its CI's upper end."""
    title = "bias² vs variance (first probe); grey: equal-MSE curves"
    if summary.empty:
        return _empty(title, "no probe statistics")
    data = _first_step(summary)
    data = data.assign(**{f"b2{end}": data[f"bias_norm{end}"] ** 2 for end in ("", "_lo", "_hi")})
    tasks, colours = sorted(data["task"].unique()), palette(data["series"], data["estimator"])
    marker, entries = _styles(data["tau"], "marker")
    fig, axes = _panels(tasks, title, 4.5)
    for ax, task in zip(axes, tasks):
        rows = data[data["task"] == task]
        for _, row in rows.iterrows():
            ax.errorbar(row["variance"], row["b2"], xerr=_err(*row[["variance", "variance_lo", "variance_hi"]]),
                        yerr=_err(*row[["b2", "b2_lo", "b2_hi"]]), fmt=marker(row["tau"]), ms=6,
                        color=colours[row["series"]], capsize=2, elinewidth=0.8, alpha=0.85)  # fmt: skip
        x_scale = _zero_aware(ax, "x", rows[["variance", "variance_lo", "variance_hi"]])
        y_scale = _zero_aware(ax, "y", rows[["b2", "b2_lo", "b2_hi"]])
        _iso_mse(ax)
        if (rows["b2"] == 0).any():
            ax.text(0.98, 0.0, "bias estimated 0", transform=ax.get_yaxis_transform(), ha="right",
                    va="bottom", fontsize=8)  # fmt: skip
        ax.set(xlabel=f"variance {x_scale}", ylabel=f"bias²\n{y_scale}")
    _legend(fig, _swatches(colours, marker="o", linestyle="") + entries, "estimator, temperature")
    return fig


def work_normalized_variance(summary: pd.DataFrame) -> Figure:
    """variance × evaluations of f per configuration at the first probe (the variance at
    equal work; lower is better): a forest plot (_forest), each configuration's point with
    its 95% CI (the variance's, times the evaluations) on a log axis. Configurations at 0
    (exact enumeration) cannot sit on a log axis: the axis label lists them."""
    title = "work-normalized variance (variance × evaluations of f), first probe"
    if summary.empty:
        return _empty(title, "no probe statistics")
    data = _first_step(summary)
    data = data.assign(wnv=data["work_normalized_variance"], lo=data["variance_lo"] * data["evaluations"],
                       hi=data["variance_hi"] * data["evaluations"])  # fmt: skip
    tasks, colours = sorted(data["task"].unique()), palette(data["series"], data["estimator"])
    rows = {task: _configurations(data[data["task"] == task]) for task in tasks}
    shown = {task: r[r["wnv"] > 0] for task, r in rows.items()}
    fig, axes = _forest_panels(title, shown)
    for ax, task in zip(axes, tasks):
        zero = rows[task][~(rows[task]["wnv"] > 0)]
        _forest(ax, shown[task], ["wnv", "lo", "hi"], colours)
        ends = shown[task][["wnv", "lo", "hi"]].to_numpy().ravel()
        ends = ends[np.isfinite(ends) & (ends > 0)]
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # limits at whole decades: 2 labels at least
        if len(ends):
            ax.set_xlim(10 ** np.floor(np.log10(ends.min() / 2)), 10 ** np.ceil(np.log10(ends.max() * 2)))
        zeros = ", ".join(dict.fromkeys(zero["configuration"].str.replace("\n", " ")))
        note = "\n" + textwrap.fill(f"= 0, not on a log axis: {zeros}", 70) if zeros else ""
        ax.set_xlabel(f"variance × evaluations (log){note}")
    return fig


# ------------------------------------------------------------------ along training


def _train_metric(rows: pd.DataFrame) -> str:
    return next(m for m in METRIC_LABELS if m in rows and rows[m].notna().any())


def training_curves(train: pd.DataFrame, x: str = "step") -> Figure:
    """The task's training metric (the first of METRIC_LABELS its train.csv has, named in
    words) against ``x``: "step", or "train_seconds" (wall time of training, probes
    excluded). One line per run; colour: its estimator and distinguishing overrides (its
    series; seeds of one configuration share it), line style: its temperature (solid: an
    estimator without one)."""
    xlabel = "training seconds (probe time excluded)" if x == "train_seconds" else "step"
    title = f"training curves vs {xlabel}"
    if train.empty:
        return _empty(title, "no training rows")
    starts = _tau(train.sort_values("step").groupby("run")["temperature"].transform("first"))
    train = train.assign(tau=starts, series=_series(train, ("seed",)))  # tau: the run's first (one may move)
    tasks, colours = sorted(train["task"].unique()), palette(train["series"], train["estimator"])
    style, entries = _styles(train["tau"], "linestyle")
    fig, axes = _panels(tasks, title)
    for ax, task in zip(axes, tasks):
        rows = train[train["task"] == task]
        metric = _train_metric(rows)
        for _, group in rows.groupby("run"):
            first = group.iloc[0]
            ax.plot(group[x], group[metric], color=colours[first["series"]],
                    linestyle=style(first["tau"]), lw=1.3, alpha=0.85)  # fmt: skip
        ax.set(xlabel=xlabel, ylabel=METRIC_LABELS[metric])
    _legend(fig, _swatches(colours) + entries, "estimator, temperature")
    return fig


def variance_along_training(summary: pd.DataFrame) -> Figure:
    """Gradient variance (mean over seeds, 95% CI band) at each probe step, per configuration
    (colour: estimator, line style: its temperature at the first probe), symlog y with 0 marked."""
    title = "gradient variance along training"
    if summary.empty:
        return _empty(title, "no probe statistics")
    summary = summary.assign(series=_series(summary))
    first = summary.sort_values("step").groupby(CONFIG_KEY)["temperature"].transform("first")
    summary = summary.assign(tau=_tau(first))  # the first probe's: a learned temperature moves
    tasks, colours = sorted(summary["task"].unique()), palette(summary["series"], summary["estimator"])
    style, entries = _styles(summary["tau"], "linestyle")
    fig, axes = _panels(tasks, title)
    for ax, task in zip(axes, tasks):
        rows = summary[summary["task"] == task]
        for (_, _, series), group in rows.groupby(CONFIG_KEY + ["series"]):
            group, colour = group.sort_values("step"), colours[series]
            ax.plot(group["step"], group["variance"], color=colour, linestyle=style(group["tau"].iloc[0]),
                    marker="o", ms=3)  # fmt: skip
            ax.fill_between(group["step"], group["variance_lo"], group["variance_hi"], color=colour,
                            alpha=0.12, lw=0)  # fmt: skip
        scale = _zero_aware(ax, "y", rows[["variance", "variance_lo", "variance_hi"]])
        ax.set(xlabel="step", ylabel=f"variance tr Cov(g)\n{scale}")
    _legend(fig, _swatches(colours) + entries, "estimator, temperature")
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
