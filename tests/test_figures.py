"""The report's figures (analysis/figures.py) read as a reader needs them: properties of the
matplotlib figures themselves, from small summary and train tables built here (no sweep).

Each configuration has its own config_id and empty overrides, so a line's label is its
estimator's name and nothing of analysis.tables.distinguishing enters these tests.
"""
from __future__ import annotations

import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from analysis import figures
from analysis.aggregate import METRICS


@pytest.fixture(autouse=True)
def close_figures():
    """Each test's figures closed after it (pyplot keeps them, and warns past 20)."""
    yield
    plt.close("all")


def config(estimator: str, temperature: float, task: str = "toy_quadratic", step: int = 0, **metrics) -> dict:
    """One summary row (aggregate.summarize's columns): every metric 1.0 with CI [0.5, 2]
    unless given; ``bias_norm=(mean, lo, hi)`` sets one metric's triple."""
    row = {"config_id": f"{task}-{estimator}-{temperature}", "overrides": "", "task": task, "family": "bernoulli",
           "estimator": estimator, "knobs": "", "step": step, "seeds": 1, "evaluations": 1.0,
           "temperature": temperature, "learned_temperature": np.nan, "eta": np.nan, "alpha": np.nan, "beta": np.nan, "warning": ""}  # fmt: skip
    for metric in METRICS:
        mean, lo, hi = metrics.get(metric, (1.0, 0.5, 2.0))
        row |= {metric: mean, f"{metric}_lo": lo, f"{metric}_hi": hi}
    return row


def table(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    """gumbel_softmax at three temperatures (biased, one bias estimated 0), reinforce without
    one (unbiased: bias 0), exact (variance 0: 512 evaluations of f)."""
    rows = [config("gumbel_softmax", t, bias_norm=(b, max(b - 0.01, 0.0), b + 0.01), variance=(v, 0.9 * v, 1.1 * v))
            for t, b, v in ((0.1, 0.002, 4.0), (0.5, 0.03, 1.0), (1.0, 0.0, 0.2))]  # fmt: skip
    rows.append(config("reinforce", np.nan, bias_norm=(0.0, 0.0, 0.02), variance=(2.0, 1.9, 2.1)))
    rows.append(config("exact", np.nan, bias_norm=(0.0, 0.0, 0.0), variance=(0.0, 0.0, 0.0)) | {"evaluations": 512.0})
    frame = table(*rows)
    return frame.assign(work_normalized_variance=frame["variance"] * frame["evaluations"])


def train_table() -> pd.DataFrame:
    """Two runs of gumbel_softmax (temperatures 0.5 and 1) and one of st, on the MRF; probes
    took 10 s each time, training 0.1 s a step."""
    runs = []
    for run, (estimator, temperature) in enumerate((("gumbel_softmax", 0.5), ("gumbel_softmax", 1.0), ("st", np.nan))):
        steps = np.arange(0, 50, 10)
        overrides = f"task=mrf estimator={estimator}" + (f" temperature={temperature}" if temperature > 0 else "")
        runs.append(pd.DataFrame({"run": str(run), "task": "mrf", "estimator": estimator, "step": steps,
                                  "overrides": overrides,
                                  "temperature": temperature, "train_seconds": 0.01 * steps,
                                  "probe_seconds": 10.0 * (1 + steps // 20), "objective": 1.0,
                                  "kl": 2.0 - 0.01 * steps - run}))  # fmt: skip
    return pd.concat(runs, ignore_index=True)


def texts(fig) -> str:
    """Every text of the figure: titles, labels, tick labels, annotations, legends."""
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_text()))


def zero_lines(ax, axis: str = "y") -> list:
    """Solid lines along ``axis`` = 0 across the axes (the marked zero)."""
    index = 1 if axis == "y" else 0
    return [line for line in ax.get_lines()
            if line.get_linestyle() == "-" and np.allclose(np.asarray(line.get_data()[index], float), 0.0)]  # fmt: skip


def bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, PolyCollection)] + list(ax.patches)


def errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


# ------------------------------------------------------------------ against temperature


def test_bias_against_temperature_is_symlog_with_zero_marked_and_ci_bands(sweep):
    """A bias of 0.002 and one estimated 0 both show: symlog (linear only below the smallest
    positive value), a marked zero line, and the CI as a band along the temperatures."""
    fig = figures.bias_vs_temperature(sweep)
    (ax,) = fig.axes
    assert ax.get_yscale() == "symlog"
    assert ax.yaxis.get_transform().linthresh <= 0.002
    assert zero_lines(ax), "no line marks bias 0"
    assert "0 marked" in ax.get_ylabel()
    assert any(isinstance(c, PolyCollection) for c in ax.collections), "no CI band over temperature"
    curve = [line for line in ax.get_lines() if list(line.get_xdata()) == [0.1, 0.5, 1.0]]
    assert len(curve) == 1 and list(curve[0].get_ydata()) == [0.002, 0.03, 0.0]
    assert "reinforce (no temperature)" in texts(fig)


def test_single_temperature_says_so_and_draws_a_forest_plot():
    """One temperature: no curve to draw; the title says so, each configuration is a row
    named by its tick label, its point with a horizontal error bar on the symlog x axis
    with 0 marked, no legend, and nothing is filled (no zero-width band, no band across)."""
    summary = table(config("gumbel_softmax", 0.5), config("st", np.nan, bias_norm=(0.0, 0.0, 0.1)))
    for fig in (figures.bias_vs_temperature(summary), figures.variance_vs_temperature(summary)):
        (ax,) = fig.axes
        assert "single temperature τ=0.5" in fig.get_suptitle()
        assert not bands(ax) and not fig.legends
        assert len(errorbars(ax)) == 2 and all(c.has_xerr and not c.has_yerr for c in errorbars(ax))
        assert [t.get_text() for t in ax.get_yticklabels()] == ["gumbel_softmax τ=0.5", "st"]
        assert ax.get_xscale() == "symlog" and zero_lines(ax, "x") and "0 marked" in ax.get_xlabel()


def test_a_task_with_one_temperature_among_curves_is_a_forest_panel():
    """Two temperatures on the MRF, one on toy_quadratic: the MRF's panel is curves over
    temperature (its legend names only them), toy_quadratic's a forest plot that says why."""
    summary = table(config("gumbel_softmax", 0.1, task="mrf"), config("gumbel_softmax", 1.0, task="mrf"),
                    config("gumbel_softmax", 0.5), config("st", np.nan))  # fmt: skip
    fig = figures.bias_vs_temperature(summary)
    curves, forest = fig.axes
    assert curves.get_xlabel() == "temperature τ" and curves.get_yscale() == "symlog"
    assert forest.get_title() == "toy_quadratic: single temperature τ=0.5" and forest.get_xscale() == "symlog"
    assert [t.get_text() for t in forest.get_yticklabels()] == ["gumbel_softmax τ=0.5", "st"]
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert entries == ["gumbel_softmax"], entries


def test_no_temperature_at_all_says_so():
    fig = figures.bias_vs_temperature(table(config("st", np.nan), config("reinforce", np.nan)))
    assert "no estimator here reads a temperature" in fig.get_suptitle()
    assert not bands(fig.axes[0])


# ------------------------------------------------------------------ the bias² / variance plane


def test_plane_labels_every_equal_mse_curve_and_draws_both_error_bars(sweep):
    fig = figures.bias_variance_plane(sweep)
    (ax,) = fig.axes
    grey = [line for line in ax.get_lines() if line.get_color() == "grey"]
    labels = [t.get_text() for t in ax.texts if t.get_text().startswith("MSE ")]
    assert grey and len(labels) == len(grey), (len(grey), labels)
    for line, label in zip(grey, labels):  # each curve is bias² + variance = its label's c
        x, y = (np.asarray(v, float) for v in line.get_data())
        assert np.allclose(x + y, float(label.split()[1]))
    bars = errorbars(ax)
    assert len(bars) == len(sweep)
    assert all(c.has_xerr and c.has_yerr for c in bars)


def test_plane_keeps_zero_bias_points_on_their_own_labelled_line(sweep):
    """A bias estimated 0 is drawn at bias² = 0 (a place of its own on the symlog axis, below
    the smallest positive bias², never clipped onto it), on a marked, labelled zero line."""
    fig = figures.bias_variance_plane(sweep)
    (ax,) = fig.axes
    assert ax.get_yscale() == "symlog" and ax.get_xscale() == "symlog"
    heights = sorted(float(c.lines[0].get_ydata()[0]) for c in errorbars(ax))
    assert heights[:3] == [0.0, 0.0, 0.0] and heights[3] == pytest.approx(0.002**2)
    assert ax.get_ylim()[0] < 0 < ax.yaxis.get_transform().linthresh <= 0.002**2
    assert zero_lines(ax, "y") and zero_lines(ax, "x")  # exact's variance 0 has its place too
    assert any("bias estimated 0" in t.get_text() for t in ax.texts)


def test_float32_temperatures_are_one_temperature():
    """0.1 as a float32 (0.0999999940) and as a float64 are one marker and one legend entry."""
    summary = table(config("gumbel_softmax", 0.1), config("rebar", float(np.float32(0.1))), config("st", np.nan))
    fig = figures.bias_variance_plane(summary)
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert entries.count("τ=0.1") == 1 and "no temperature" in entries, entries


# ------------------------------------------------------------------ work-normalized variance


def test_work_normalized_variance_is_points_with_cis_on_a_log_axis(sweep):
    """Points with horizontal error bars (the variance's CI times the evaluations), no bars
    from an edge; exact's 0 cannot sit on a log axis and is named instead."""
    fig = figures.work_normalized_variance(sweep)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert not ax.patches, "bars"
    bars = errorbars(ax)
    assert len(bars) == 4 and all(c.has_xerr and not c.has_yerr for c in bars)
    reinforce = [c for c, t in zip(bars, ax.get_yticklabels()) if t.get_text() == "reinforce"][0]
    (segment,) = reinforce.lines[2][0].get_segments()
    assert np.allclose(segment[:, 0], [1.9, 2.1])
    assert "not on a log axis: exact" in ax.get_xlabel()


# ------------------------------------------------------------------ along training


def test_training_curves_encode_temperature_and_name_the_metric():
    fig = figures.training_curves(train_table(), "step")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "KL(q || p)"
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert {"gumbel_softmax", "st", "τ=0.5", "τ=1", "no temperature"} <= set(entries), entries
    styles = [line.get_linestyle() for line in ax.get_lines()]
    assert len(set(styles)) == 3, styles  # one per temperature, and one for none


def test_training_curves_tell_configurations_apart_and_seeds_not():
    """Runs of one estimator that differ in an override are lines of their own colour, each
    named in the legend; the seeds of one configuration share theirs."""
    runs = [train_table().query("run == '2'").assign(run=f"{policy}{seed}", estimator="reinforce",
                                                      overrides=f"task=mrf task.policy={policy} seed={seed}")
            for policy in ("gru", "tabular") for seed in (0, 1)]  # fmt: skip
    fig = figures.training_curves(pd.concat(runs, ignore_index=True), "step")
    (ax,) = fig.axes
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert entries[:2] == ["reinforce task.policy=gru", "reinforce task.policy=tabular"], entries
    colours = [line.get_color() for line in ax.get_lines()]
    assert len(colours) == 4 and len(set(colours)) == 2, colours


def test_training_against_seconds_excludes_probe_time():
    train = train_table()
    fig = figures.training_curves(train, "train_seconds")
    (ax,) = fig.axes
    assert "probe time excluded" in ax.get_xlabel()
    ends = sorted(float(line.get_xdata()[-1]) for line in ax.get_lines())
    assert ends == pytest.approx([0.4] * 3)  # training only: probes took 10 s each


def test_variance_along_training_is_symlog_with_one_style_per_temperature(sweep):
    later = sweep.assign(step=10, temperature=sweep["temperature"] + 1e-9)  # float noise of a learned one
    fig = figures.variance_along_training(pd.concat([sweep, later], ignore_index=True))
    (ax,) = fig.axes
    assert ax.get_yscale() == "symlog" and zero_lines(ax)
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert [e for e in entries if e.startswith("τ=")] == ["τ=0.1", "τ=0.5", "τ=1"]


# ------------------------------------------------------------------ layout


def test_many_lines_keep_the_legend_off_the_axes_and_in_the_figure():
    """25 configurations in two tasks: the legend moves below the panels, in columns, and
    the figure grows to hold it (the axes keep their size)."""
    rows = [config(f"estimator_{i:02d}_with_a_long_label", t, task=task)
            for i in range(25) for t in (0.1, 1.0) for task in ("mrf", "toy_quadratic")]  # fmt: skip
    for fig in (figures.bias_vs_temperature(table(*rows)), figures.bias_variance_plane(table(*rows))):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        box, page = legend.get_window_extent(renderer), fig.bbox
        assert page.y0 <= box.y0 and box.y1 <= page.y1 and page.x0 <= box.x0 and box.x1 <= page.x1
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer))
            assert ax.get_window_extent(renderer).height > 150  # pixels: not squeezed away


def test_many_long_labels_at_one_temperature_stay_readable():
    """12 configurations with 60-character labels at one temperature: no figure makes
    constrained layout give up; in the forest plots each configuration is named once, by a
    horizontal tick label that overlaps no other and stays left of the axes and inside the
    figure, which is at most a page wide (figures.PAGE) and has no legend; the plane's legend
    stays off the axes."""
    names = [f"estimator_{i:02d}_" + "x" * (41 if i < 10 else 47) for i in range(12)]
    summary = table(*[config(name, 0.5 if i < 10 else np.nan, bias_norm=(0.01 * i, 0.0, 0.02 * i + 0.01))
                      for i, name in enumerate(names)])  # fmt: skip
    summary = summary.assign(work_normalized_variance=summary["variance"])
    expected = sorted(f"{name} τ=0.5" if i < 10 else name for i, name in enumerate(names))
    assert {len(label) for label in expected} == {60}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied ..." is a UserWarning
        drawn = figures.all_figures(summary, train_table())
        for fig in drawn.values():
            fig.savefig(io.BytesIO(), format="png", dpi=110, bbox_inches="tight")
            fig.canvas.draw()
    for name in ("bias_vs_temperature", "variance_vs_temperature", "work_normalized_variance"):
        fig = drawn[name]
        (ax,) = fig.axes
        renderer, page, plot = fig.canvas.get_renderer(), fig.bbox, ax.get_window_extent()
        labels = ax.get_yticklabels()
        assert [t.get_text() for t in labels] == expected and len(errorbars(ax)) == 12, name
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), name
        assert all(page.x0 <= b.x0 and b.x1 <= plot.x0 for b in boxes), name
        assert plot.width > 3 * fig.dpi and plot.height > 12 * 0.2 * fig.dpi, name  # inches: not squeezed
        assert fig.get_figwidth() <= figures.PAGE and not fig.legends, name
    fig = drawn["bias_variance_plane"]
    (legend,), (ax,) = fig.legends, fig.axes
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    assert ax.get_window_extent().width > 3 * fig.dpi
