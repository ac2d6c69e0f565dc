"""Collect run directories (any folder holding summary.json, found recursively) into tables.

Nothing is read from folder names: every field comes from summary.json, stats.csv,
train.csv (and, for a sweep, its multirun.yaml), each checked against analysis/schema.py on
load: a SchemaError names the file. A run that failed or diverged is kept in the runs table
with its error, never dropped. A run with a file that cannot be read (empty, cut short, not
CSV or JSON, not the schema) is left out of stats, train and runs and listed in
``Collection.unreadable``, one row per such file, or with ``strict=True`` is an error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from analysis.schema import STATS, SUMMARY, TRAIN, SchemaError, Table, check_summary, read_csv

# summary.json's optional fields the runs table carries ("" where an older summary lacks one)
RUN_EXTRA = ("warning",)
RUN_COLUMNS = list(dict.fromkeys(["run", *SUMMARY.names, *RUN_EXTRA]))
UNREADABLE_COLUMNS = ["run", "file", "error"]


@dataclass
class Collection:
    """stats: every stats.csv row; train: every train.csv row; runs: one row per run (each
    with ``run``, its folder relative to its root); sweeps: each root's config and overrides;
    unreadable: one row per file that could not be read (``run``, ``file``, ``error``: the
    message, which names the file), its run in none of the other tables."""

    stats: pd.DataFrame
    train: pd.DataFrame
    runs: pd.DataFrame
    sweeps: list[dict] = field(default_factory=list)
    unreadable: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNREADABLE_COLUMNS))


def run_dirs(root: Path) -> list[Path]:
    """Every folder under (or equal to) root that holds a summary.json, sorted."""
    return sorted(p.parent for p in Path(root).rglob("summary.json"))


def _overrides(folder: Path) -> str:
    path = folder / ".hydra" / "overrides.yaml"
    return " ".join(yaml.safe_load(path.read_text()) or []) if path.exists() else ""


def _sweep(root: Path) -> dict:
    """What a root ran: ``overrides``, the command line's (a sweep's from multirun.yaml, whose
    ``hydra.overrides.task`` they are, else the run's .hydra/overrides.yaml); ``sweeper``, the
    swept values the config itself sets (an experiment's ``hydra.sweeper.params``, less the
    keys the command line overrides: those win); ``config``, the config of its first job as
    run (.hydra/config.yaml, interpolations resolved where they can be; no ``hydra`` node),
    ``config_of``, that job's folder; ``runs``, how many runs the root holds."""
    overrides, sweeper = _overrides(root), ""
    if (root / "multirun.yaml").exists():
        node = (yaml.safe_load((root / "multirun.yaml").read_text()) or {}).get("hydra") or {}
        typed = (node.get("overrides") or {}).get("task") or []
        keys = {t.split("=", 1)[0].lstrip("+~") for t in typed}
        params = (node.get("sweeper") or {}).get("params") or {}
        overrides = " ".join(typed)
        sweeper = " ".join(f"{k}={v}" for k, v in params.items() if k not in keys)
    runs = run_dirs(root)
    jobs = [f for f in [root, *runs] if (f / ".hydra" / "config.yaml").exists()]
    config = _resolved(jobs[0] / ".hydra" / "config.yaml") if jobs else ""
    config_of = _label(root, jobs[0], False) if jobs else ""
    return {"root": str(root), "overrides": overrides, "sweeper": sweeper, "config": config,
            "config_of": config_of, "runs": len(runs)}


def _resolved(path: Path) -> str:
    """A job's config.yaml with its interpolations (``${temperature}``) resolved; as written
    where one cannot be (a resolver only Hydra registers)."""
    text = path.read_text()
    try:
        return OmegaConf.to_yaml(OmegaConf.create(yaml.safe_load(text) or {}), resolve=True)
    except (OmegaConfBaseException, yaml.YAMLError):
        return text


def _label(root: Path, folder: Path, several: bool) -> str:
    relative = folder.relative_to(root).as_posix() if folder != root else "."
    return f"{root.name}/{relative}" if several else relative


def _text(path: Path) -> str:
    """The file's text; a SchemaError naming it if it cannot be read, is empty or is not text."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SchemaError(f"{path} cannot be read: {error.strerror}") from error
    if not data:
        raise SchemaError(f"{path} is empty")
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        byte = f"byte {data[error.start]:#04x} at offset {error.start}"
        raise SchemaError(f"{path} is not text ({byte} is not UTF-8)") from error


def read_summary(path: Path) -> dict:
    """summary.json, checked against the schema."""
    try:
        summary = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise SchemaError(f"{path} is not JSON (truncated?): {error}") from error
    if not isinstance(summary, dict):
        raise SchemaError(f"{path} is not a JSON object (it holds a {type(summary).__name__})")
    return check_summary(summary, path)


def read_table(table: Table, path: Path) -> pd.DataFrame:
    """A CSV file of a run, checked against ``table``: the runner writes one only with its
    first row, so a file without rows (empty, or a header alone) was cut short."""
    _text(path)  # the checks read_csv cannot word: unreadable, empty, not text
    try:
        frame = read_csv(table, path)
    except SchemaError as error:  # pandas ends some of its messages with a newline
        raise SchemaError(str(error).strip()) from error
    if frame.empty:
        raise SchemaError(f"{path} has a header but no rows (cut short?)")
    return frame


READERS = {"summary.json": read_summary, "stats.csv": partial(read_table, STATS),
           "train.csv": partial(read_table, TRAIN)}


def _read_run(folder: Path) -> tuple[dict[str, Any], list[tuple[Path, SchemaError]]]:
    """The run's files that exist, read, by name; and (file, error) for each that cannot be."""
    files, problems = {}, []
    for name, reader in READERS.items():
        if (path := folder / name).exists():
            try:
                files[name] = reader(path)
            except SchemaError as error:
                problems.append((path, error))
    return files, problems


def collect(*roots: Path, strict: bool = True) -> Collection:
    """All runs under ``roots``; ``run`` labels are relative to their root (prefixed by the
    root's name when there are several roots). A file that cannot be read is a SchemaError
    naming it (``strict``), else its run is left out and each such file of it is listed in
    ``unreadable``."""
    stats, train, runs, unreadable = [], [], [], []
    roots = tuple(Path(r) for r in roots)
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"no such run or sweep directory: {root}")
        for folder in run_dirs(root):
            label = _label(root, folder, len(roots) > 1)
            files, problems = _read_run(folder)
            if problems and strict:
                raise problems[0][1]
            if problems:
                unreadable += [(label, str(path), str(error)) for path, error in problems]
                continue
            summary = files["summary.json"]
            runs.append({"run": label, **{k: summary.get(k) for k in SUMMARY.names},
                         **{k: summary.get(k) or "" for k in RUN_EXTRA}})
            if "stats.csv" in files:
                stats.append(files["stats.csv"].assign(run=label))
            if "train.csv" in files:
                frame = files["train.csv"]
                train.append(frame.assign(run=label, task=summary["task"],
                                          estimator=summary["estimator"]))
    return Collection(
        stats=pd.concat(stats, ignore_index=True) if stats else pd.DataFrame(),
        train=pd.concat(train, ignore_index=True) if train else pd.DataFrame(),
        runs=pd.DataFrame(runs, columns=RUN_COLUMNS),
        sweeps=[_sweep(root) for root in roots],
        unreadable=pd.DataFrame(unreadable, columns=UNREADABLE_COLUMNS),
    )
