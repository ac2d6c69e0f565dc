"""Collect run directories (any folder holding summary.json, found recursively) into tables.

Nothing is read from folder names: every field comes from summary.json and stats.csv. A run
that failed or diverged is kept in the runs table with its error, never dropped.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

RUN_COLUMNS = ["run", "status", "error", "task", "estimator", "temperature", "seed", "device"]


def run_dirs(root: Path) -> list[Path]:
    """Every folder under (or equal to) root that holds a summary.json, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("summary.json"))


def collect(*roots: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stats, runs): all stats.csv rows with a ``run`` column, and one row per run."""
    stats, runs = [], []
    for root in roots:
        for folder in run_dirs(root):
            summary = json.loads((folder / "summary.json").read_text())
            label = str(folder.relative_to(root)) if folder != Path(root) else folder.name
            runs.append({"run": label, **{k: summary.get(k) for k in RUN_COLUMNS[1:]}})
            if (folder / "stats.csv").exists():
                frame = pd.read_csv(folder / "stats.csv")
                stats.append(frame.assign(run=label))
    stats_frame = pd.concat(stats, ignore_index=True) if stats else pd.DataFrame()
    return stats_frame, pd.DataFrame(runs, columns=RUN_COLUMNS)
