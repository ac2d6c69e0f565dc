"""``discograd-report DIR [DIR ...]``: one report for any number of runs and sweeps.

Writes into ``--out`` (default: DIR/report for the first DIR):
    summary.csv          per configuration and probe step: mean over seeds and 95% CI of
                         every metric (analysis/aggregate.py)
    figures/NAME.png|svg every figure of analysis/figures.py
    report.html          self-contained (figures embedded): tables, figures, failed runs and
                         unreadable ones, the sweep's config and overrides, the environment
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
from analysis.tables import distinguishing, first_probes, interval
from primitives.io import write_atomic

PACKAGES = ("torch", "hydra-core", "numpy", "pandas", "scipy", "seaborn", "matplotlib", "wandb")


def results_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The headline table: every configuration (CONFIG_KEY) at its first probe step."""
    if summary.empty:
        return pd.DataFrame()
    first = first_probes(summary)
    table = pd.DataFrame({
        "task": first["task"], "family": first["family"], "estimator": first["estimator"],
        "overrides": distinguishing(first), "knobs": first["knobs"],
        "temperature": first["temperature"].map(lambda t: "" if pd.isna(t) else f"{t:g}"),
        "step": first["step"], "seeds": first["seeds"],
        "bias norm [95% CI]": [interval(*v) for v in first[["bias_norm", "bias_norm_lo", "bias_norm_hi"]].values],
        "variance [95% CI]": [interval(*v) for v in first[["variance", "variance_lo", "variance_hi"]].values],
        "MSE": first["mse"].map(lambda v: f"{v:.3g}"),
        "evaluations": first["evaluations"].map(lambda v: f"{v:g}"),
        "variance x evaluations": first["work_normalized_variance"].map(lambda v: f"{v:.3g}"),
        "us / estimate": (first["seconds_per_estimate"] * 1e6).map(lambda v: f"{v:.3g}"),
        "warning": first["warning"],
        "config_id": first["config_id"],
    }).reset_index(drop=True)  # fmt: skip
    return table.drop(columns="overrides") if (table["overrides"] == "").all() else table


PROBLEM_COLUMNS = ["run", "status", "task", "estimator", "device", "error"]


def failed_runs(collection: Collection) -> pd.DataFrame:
    runs = collection.runs
    return runs.loc[runs["status"] != "ok", PROBLEM_COLUMNS].reset_index(drop=True)


def problem_runs(collection: Collection) -> pd.DataFrame:
    """The runs that did not finish ok, then one row per unreadable file (status "unreadable",
    the error naming the file; task, estimator and device left empty)."""
    failed = failed_runs(collection)
    if collection.unreadable.empty:
        return failed
    unreadable = collection.unreadable.assign(status="unreadable")
    unreadable = unreadable.reindex(columns=PROBLEM_COLUMNS, fill_value="")
    return pd.concat([failed, unreadable], ignore_index=True) if len(failed) else unreadable


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


def render_html(tables: dict[str, pd.DataFrame], pngs: dict[str, bytes], collection: Collection, title: str) -> str:
    figures = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"><figcaption>{name}</figcaption></figure>'
        for name, png in pngs.items()
    )
    sweeps = "\n".join(
        f"<h3>{html.escape(s['root'])}</h3><p>overrides: <code>{html.escape(s['overrides'] or '(none)')}</code></p>"
        f"<pre>{html.escape(s['config'])}</pre>"
        for s in collection.sweeps
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse;font-size:0.9em}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left} img{max-width:100%}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em} figure{margin:1em 0}"
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{style}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{counts(collection)}; written {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}</p>
<h2>Results (first probe; mean over seeds, 95% CI)</h2>
{_html_table(tables['results'])}
<h2>Figures</h2>
{figures}
<h2>Runs that did not finish ok or could not be read</h2>
{_html_table(tables['failed'])}
<h2>Sweep configuration and overrides</h2>
{sweeps}
<h2>Environment</h2>
{_html_table(tables['environment'])}
</body></html>
"""


def _markdown_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if not frame.empty else "none"


def render_markdown(tables: dict[str, pd.DataFrame], names: list[str], collection: Collection, title: str) -> str:
    lines = [f"# {title}", "", f"{counts(collection)}.", "",
             "## Results (first probe; mean over seeds, 95% CI)", "", _markdown_table(tables["results"]), "", "## Figures", ""]  # fmt: skip
    lines += [f"![{name}](figures/{name}.png)" for name in names]
    lines += ["", "## Runs that did not finish ok or could not be read", "", _markdown_table(tables["failed"]),
              "", "## Sweep configuration and overrides", ""]  # fmt: skip
    for sweep in collection.sweeps:
        lines += [f"### {sweep['root']}", "", f"overrides: `{sweep['overrides'] or '(none)'}`", "", "```yaml", sweep["config"].rstrip(), "```", ""]
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
    tables = {"results": results_table(summary), "failed": problem_runs(collection), "environment": environment(collection)}
    title = "discograd report: " + ", ".join(str(r) for r in roots)
    write_atomic(out / "report.html", render_html(tables, pngs, collection, title))
    write_atomic(out / "report.md", render_markdown(tables, list(pngs), collection, title))
    return out / "report.html", paths, summary, collection
