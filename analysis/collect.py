"""Collect run directories (any folder holding summary.json, found recursively) into tables.

Nothing is read from folder names: every field comes from summary.json, stats.csv,
train.csv (and, for a sweep, its multirun.yaml), each checked against analysis/schema.py on
load: a SchemaError names the file. A run that failed or diverged is kept in the runs table
with its error, never dropped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from analysis.schema import STATS, SUMMARY, TRAIN, SchemaError, check_summary, read_csv

RUN_COLUMNS = ["run", *SUMMARY.names]


@dataclass
class Collection:
    """stats: every stats.csv row; train: every train.csv row; runs: one row per run (each
    with ``run``, its folder relative to its root); sweeps: each root's config and overrides."""

    stats: pd.DataFrame
    train: pd.DataFrame
    runs: pd.DataFrame
    sweeps: list[dict] = field(default_factory=list)


def run_dirs(root: Path) -> list[Path]:
    """Every folder under (or equal to) root that holds a summary.json, sorted."""
    return sorted(p.parent for p in Path(root).rglob("summary.json"))


def _overrides(folder: Path) -> str:
    path = folder / ".hydra" / "overrides.yaml"
    return " ".join(yaml.safe_load(path.read_text()) or []) if path.exists() else ""


def _sweep(root: Path) -> dict:
    """The sweep's config: multirun.yaml at a sweep's root, else the run's own .hydra."""
    for path in (root / "multirun.yaml", root / ".hydra" / "config.yaml"):
        if path.exists():
            return {"root": str(root), "config": path.read_text(), "overrides": _overrides(root)}
    return {"root": str(root), "config": "", "overrides": ""}


def _label(root: Path, folder: Path, several: bool) -> str:
    relative = folder.relative_to(root).as_posix() if folder != root else "."
    return f"{root.name}/{relative}" if several else relative


def read_summary(path: Path) -> dict:
    """summary.json, checked against the schema."""
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SchemaError(f"{path} is not JSON: {error}") from error
    if not isinstance(summary, dict):
        raise SchemaError(f"{path} is not a JSON object")
    return check_summary(summary, path)


def collect(*roots: Path) -> Collection:
    """All runs under ``roots``; ``run`` labels are relative to their root (prefixed by the
    root's name when there are several roots)."""
    stats, train, runs = [], [], []
    roots = tuple(Path(r) for r in roots)
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"no such run or sweep directory: {root}")
        for folder in run_dirs(root):
            label = _label(root, folder, len(roots) > 1)
            summary = read_summary(folder / "summary.json")
            runs.append({"run": label, **{k: summary.get(k) for k in SUMMARY.names}})
            if (folder / "stats.csv").exists():
                stats.append(read_csv(STATS, folder / "stats.csv").assign(run=label))
            if (folder / "train.csv").exists():
                frame = read_csv(TRAIN, folder / "train.csv")
                train.append(frame.assign(run=label, task=summary["task"], estimator=summary["estimator"]))
    return Collection(
        stats=pd.concat(stats, ignore_index=True) if stats else pd.DataFrame(),
        train=pd.concat(train, ignore_index=True) if train else pd.DataFrame(),
        runs=pd.DataFrame(runs, columns=RUN_COLUMNS),
        sweeps=[_sweep(root) for root in roots],
    )
