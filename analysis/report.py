"""``discograd-report DIR [DIR ...]``: one report for any number of runs and sweeps.

Writes into ``--out`` (default: DIR/report for the first DIR):
    summary.csv          per configuration and probe step: mean over seeds and 95% CI of
                         every metric (analysis/aggregate.py)
    figures/NAME.png|svg every figure of analysis/figures.py
    report.html          self-contained (figures embedded): the results table (step 0 beside
                         the final step), figures, the runs that failed, warned (summary.json's
                         warning) or could not be read, the sweep's overrides and the config of
                         one of its jobs, the environment
    report.md            the same for a repository page (figures linked)
Every file is written atomically. The command line (and its ``--wandb``) is
discograd/report.py: analysis imports no torch and nothing of discograd.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import platform
from importlib import metadata
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from analysis.aggregate import summarize
from analysis.collect import Collection, collect
from analysis.figures import all_figures
from analysis.tables import basket_at_start, first_and_final, results_columns, split_basket, step_labels
from primitives.io import write_atomic

PACKAGES = ("torch", "hydra-core", "numpy", "pandas", "scipy", "seaborn", "matplotlib", "wandb")


def results_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The headline table: every configuration (CONFIG_KEY) at its first and final probe step
    side by side (once where it was probed at one step), by final MSE within each task."""
    return _results_frame(first_and_final(summary)) if not summary.empty else pd.DataFrame()


def _results_frame(rows: pd.DataFrame, extra: dict[str, pd.Series] | None = None,
                   overrides: pd.Series | None = None) -> pd.DataFrame:  # fmt: skip
    """The report's columns for ``first_and_final`` rows (analysis.tables.results_columns)."""
    return results_columns(rows, step_labels(rows), extra, overrides, report=True)


def basket_tables(trained: pd.DataFrame, basket: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The estimators probed beside the trained ones (probe.estimators), as the end-of-sweep
    table shows them: ``basket_start``, one row per distinct measurement at the first step
    (analysis.tables.basket_at_start), and ``basket``, every run's rows at its first and final
    step; both empty without a basket. ``trained``, ``basket``: analysis.tables.split_basket's."""
    if trained.empty or basket.empty:
        return {"basket_start": pd.DataFrame(), "basket": pd.DataFrame()}
    start, runs, shown = basket_at_start(basket)
    table = _results_frame(start, {"runs": runs}, shown)
    return {"basket_start": table.drop(columns="config_id"),  # a pooled row stands for several runs' ids
            "basket": results_table(summarize(basket))}


PROBLEM_COLUMNS = ["run", "status", "task", "estimator", "device", "error", "warning"]


def failed_runs(collection: Collection) -> pd.DataFrame:
    runs = collection.runs
    return runs.loc[runs["status"] != "ok", PROBLEM_COLUMNS].reset_index(drop=True)


def warned_runs(collection: Collection) -> pd.DataFrame:
    """The runs that finished ok with a warning in their summary.json (one that likely
    diverged without a non-finite objective, say)."""
    runs = collection.runs
    warned = (runs["status"] == "ok") & (runs["warning"].fillna("") != "")
    return runs.loc[warned, PROBLEM_COLUMNS].reset_index(drop=True)


def problem_runs(collection: Collection) -> pd.DataFrame:
    """The runs that did not finish ok, those that did with a warning, then one row per
    unreadable file (status "unreadable", the error naming the file; task, estimator, device
    and warning left empty)."""
    unreadable = collection.unreadable.assign(status="unreadable")
    parts = [failed_runs(collection), warned_runs(collection),
             unreadable.reindex(columns=PROBLEM_COLUMNS, fill_value="")]  # fmt: skip
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else failed_runs(collection)


def counts(collection: Collection) -> str:
    """"N runs, K ok" (", U unreadable" where some are): unreadable runs count in N."""
    runs, unreadable = collection.runs, collection.unreadable["run"].nunique()
    text = f"{len(runs) + unreadable} runs, {int((runs['status'] == 'ok').sum())} ok"
    return text + (f", {unreadable} unreadable" if unreadable else "")


def environment(collection: Collection) -> pd.DataFrame:
    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    for package in PACKAGES:
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    devices = sorted(collection.runs["device"].dropna().astype(str).unique())
    rows.append(("devices of the runs", ", ".join(devices)))
    return pd.DataFrame(rows, columns=["what", "version"])


def _figure_bytes(fig: Figure, kind: str) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind, dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="table", na_rep="") if not frame.empty else "<p>none</p>"


WRAPPED = ("overrides", "knobs", "warning")  # long text, wrapped (a CSS class each)


def _results_cell(column: str):
    """A cell of the results table as HTML: a CI under its value, long text wrapped."""
    def cell(value) -> str:
        text = html.escape(str(value))
        if column.startswith(("bias norm @", "variance @")) and " [" in text:
            point, ci = text.split(" ", 1)
            return f'{point}<br><span class="ci">{ci}</span>'
        if column in WRAPPED and text:  # a long override wraps after its "=" first
            return f'<span class="{column}">{text.replace("=", "=<wbr>")}</span>'
        return f'<span class="id">{text}</span>' if column == "config_id" else text
    return cell


def _results_html(frame: pd.DataFrame) -> str:
    """The results table in HTML, fit to a page: the config_id under the task, the knobs
    under the estimator's name."""
    if frame.empty:
        return "<p>none</p>"
    cells = pd.DataFrame({c: frame[c].map(_results_cell(c)) for c in frame.columns})
    for column, under in (("task", "config_id"), ("estimator", "knobs")):
        if under in cells:
            below = cells.pop(under)
            cells[column] = [c + ("<br>" + b if b else "") for c, b in zip(cells[column], below)]
            cells = cells.rename(columns={column: f"{column}, {under}"})
    table = cells.to_html(index=False, border=0, classes="table results", escape=False)
    return f'<div class="wide">{table}</div>'  # scrolls by itself where it cannot fit


BASKET_START = ("Estimators probed beside them (probe.estimators) at the first step, at the runs' shared "
                "starting parameters: one row per distinct measurement, runs: how many runs it stands for")


def _basket_html(tables: dict[str, pd.DataFrame]) -> str:
    """The basket's two tables: pooled at the first step, then every run's (folded)."""
    if tables["basket"].empty:
        return ""
    rows = len(tables["basket"])
    return (f"<h3>{BASKET_START}</h3>\n{_results_html(tables['basket_start'])}\n"
            f"<details><summary>The basket in every run, at its first and final step ({rows} rows, "
            f"each at its own run's parameters)</summary>\n{_results_html(tables['basket'])}</details>")


def results_heading(results: pd.DataFrame) -> str:
    """"Results (...)": what the table holds and how it is sorted."""
    mse = [c for c in results.columns if c.startswith("MSE @")]
    order = f"; by {mse[-1]} within a task" if mse else ""
    return f"Results (mean over seeds, 95% CI{order})"


def _sweep_html(sweep: dict) -> str:
    lines = [f"<h3>{html.escape(sweep['root'])}</h3>",
             f"<p>overrides: <code>{html.escape(sweep['overrides'] or '(none)')}</code></p>"]  # fmt: skip
    if sweep["sweeper"]:
        sweeper = html.escape(sweep["sweeper"])
        lines.append(f"<p>sweeps (hydra.sweeper.params): <code>{sweeper}</code></p>")
    if sweep["config"]:
        config = html.escape(sweep["config"])
        lines.append(f"<p>{html.escape(_config_of(sweep))}:</p><pre>{config}</pre>")
    return "\n".join(lines)


def _config_of(sweep: dict) -> str:
    """Whose config the section shows: one job's .hydra/config.yaml, resolved."""
    run = "this run" if sweep["config_of"] == "." else f"run {sweep['config_of']}"
    text = f"config of {run} (its .hydra/config.yaml, interpolations resolved)"
    others = sweep["runs"] - 1
    return text + (f"; the {others} other runs differ from it in their overrides" if others else "")


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
    "table{border-collapse:collapse;font-size:0.9em} img{max-width:100%} figure{margin:1em 0}"
    "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em}"
    # the results table fits a 1280 px page: small type, a CI under its value, long text wrapped
    "table.results{font-size:0.7em} table.results td,table.results th{padding:2px 3px}"
    "table.results td{white-space:nowrap} .wide{overflow-x:auto} .ci{color:#666;font-size:0.85em}"
    ".id,.knobs{color:#666;font-size:0.85em} .id{font-family:monospace}"
    ".overrides,.knobs,.warning{display:inline-block;white-space:normal;overflow-wrap:break-word}"
    ".overrides{min-width:9em;max-width:13em} .knobs{max-width:10em} .warning{min-width:9em;max-width:13em}"
)
PROBLEMS = "Runs that did not finish ok, finished with a warning, or could not be read"


def render_html(tables: dict[str, pd.DataFrame], pngs: dict[str, bytes], collection: Collection, title: str) -> str:
    figures = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"><figcaption>{name}</figcaption></figure>'
        for name, png in pngs.items()
    )
    sweeps = "\n".join(_sweep_html(s) for s in collection.sweeps)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{counts(collection)}; written {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}</p>
<h2>{results_heading(tables['results'])}</h2>
{_results_html(tables['results'])}
{_basket_html(tables)}
<h2>Figures</h2>
{figures}
<h2>{PROBLEMS}</h2>
{_html_table(tables['failed'])}
<h2>Sweep configuration and overrides</h2>
{sweeps}
<h2>Environment</h2>
{_html_table(tables['environment'])}
</body></html>
"""


def _markdown_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if not frame.empty else "none"


def _sweep_markdown(sweep: dict) -> list[str]:
    lines = [f"### {sweep['root']}", "", f"overrides: `{sweep['overrides'] or '(none)'}`", ""]
    if sweep["sweeper"]:
        lines += [f"sweeps (hydra.sweeper.params): `{sweep['sweeper']}`", ""]
    if sweep["config"]:
        lines += [f"{_config_of(sweep)}:", "",
                  "```yaml", sweep["config"].rstrip(), "```", ""]  # fmt: skip
    return lines


def render_markdown(tables: dict[str, pd.DataFrame], names: list[str], collection: Collection, title: str) -> str:
    lines = [f"# {title}", "", f"{counts(collection)}.", "", f"## {results_heading(tables['results'])}", "",
             _markdown_table(tables["results"]), ""]  # fmt: skip
    if not tables["basket"].empty:
        lines += [f"### {BASKET_START}", "", _markdown_table(tables["basket_start"]), "",
                  "### The basket in every run, at its first and final step", "", _markdown_table(tables["basket"]), ""]
    lines += ["## Figures", ""]
    lines += [f"![{name}](figures/{name}.png)" for name in names]
    lines += ["", f"## {PROBLEMS}", "", _markdown_table(tables["failed"]), "",
              "## Sweep configuration and overrides", ""]  # fmt: skip
    for sweep in collection.sweeps:
        lines += _sweep_markdown(sweep)
    lines += ["## Environment", "", _markdown_table(tables["environment"]), ""]
    return "\n".join(lines)


def write_report(
    roots: list[Path], out: Path | None = None, collection: Collection | None = None
) -> tuple[Path, dict[str, Path], pd.DataFrame, Collection]:
    """Collect ``roots`` (an unreadable file is a SchemaError) unless ``collection`` holds them
    already, write summary.csv, the figures, report.html and report.md into ``out``; returns
    (report.html's path, PNG paths by name, summary, collection)."""
    roots = [Path(r) for r in roots]
    out = Path(out) if out is not None else roots[0] / "report"
    collection = collection if collection is not None else collect(*roots)
    summary = summarize(collection.stats)
    write_atomic(out / "summary.csv", summary.to_csv(index=False))
    pngs, paths = {}, {}
    for name, fig in all_figures(summary, collection.train).items():
        pngs[name] = _figure_bytes(fig, "png")
        write_atomic(out / "figures" / f"{name}.png", pngs[name])
        write_atomic(out / "figures" / f"{name}.svg", _figure_bytes(fig, "svg"))
        paths[name] = out / "figures" / f"{name}.png"
        plt.close(fig)
    trained, basket = split_basket(collection.stats, collection.runs)
    tables = {"results": results_table(summarize(trained) if not trained.empty else summary), **basket_tables(trained, basket),
              "failed": problem_runs(collection), "environment": environment(collection)}  # fmt: skip
    title = "discograd report: " + ", ".join(str(r) for r in roots)
    write_atomic(out / "report.html", render_html(tables, pngs, collection, title))
    write_atomic(out / "report.md", render_markdown(tables, list(pngs), collection, title))
    return out / "report.html", paths, summary, collection
