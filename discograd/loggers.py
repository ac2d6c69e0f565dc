"""Experiment loggers (conf/logger/): ``none``, the default, and ``wandb``.

The run loop hands a logger every train.csv row (``train``) and every stats.csv row
(``probe``) as it writes them, and ``finish(summary)`` once summary.json is written, whatever
the run's status. The files stay the record; a logger mirrors them on a dashboard.

logger=wandb makes each job one W&B run (so a multirun in one process gives one per job) in
one group per sweep, offline unless ``logger.mode=online``; ``log_report`` adds a sweep's
figures and summary table to that group as one more run (job_type "report").
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from analysis.schema import STATS
from discograd.config import CONF_DIR, check_logger


class Logger:
    """logger=none: every call does nothing."""

    def train(self, row: dict[str, Any]) -> None:
        """One train.csv row (step, objective, temperature, the task's metrics, seconds)."""

    def probe(self, row: dict[str, Any]) -> None:
        """One stats.csv row (one probed estimator at one step)."""

    def finish(self, summary: dict[str, Any]) -> None:
        """The run's summary.json, once, at the end of every run, failed ones included."""


def _numbers(row: dict[str, Any], prefix: str) -> dict[str, float]:
    """The numeric fields of row but its step, as ``prefix + key`` (strings make no chart)."""
    return {prefix + k: v for k, v in row.items() if k != "step" and isinstance(v, numbers.Real)}


def _hydra_job(output_dir: Path) -> tuple[str, str]:
    """(default group, run name): in a Hydra multirun the sweep directory's name and the job's
    overrides; otherwise the run directory's parent's name and its own name."""
    group, name = output_dir.resolve().parent.name, output_dir.name
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        if hydra.mode == RunMode.MULTIRUN:
            group = Path(hydra.sweep.dir).name
        name = hydra.job.override_dirname or name
    return group, name


class WandbLogger(Logger):
    """logger=wandb: one W&B run per job.

    Logs the resolved config at the start; each train row as ``train/KEY`` and each probe row as
    ``probe/KEY`` (``probe/ESTIMATOR/KEY`` when ``probe.estimators`` probes several), at the
    row's step; at the end the summary (W&B's run summary) and the stats rows as the table
    ``stats``, and the run finishes with exit code 0 for status ok, else 1.
    """

    def __init__(self, cfg: DictConfig, output_dir: Path) -> None:
        import wandb  # here, not at the top: importing wandb costs a second that logger=none need not pay

        self.wandb, self.rows = wandb, []
        self.per_estimator = bool(OmegaConf.select(cfg, "probe.estimators"))
        knobs = cfg.logger
        group, name = _hydra_job(output_dir)
        directory = Path(knobs.dir) if knobs.dir else output_dir
        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=knobs.project, entity=knobs.entity, group=knobs.group or group, job_type="run", name=name,
            notes=str(output_dir), tags=list(knobs.tags), mode=knobs.mode, dir=directory,
            config=OmegaConf.to_container(cfg, resolve=True), reinit="create_new",
        )  # fmt: skip

    def train(self, row: dict[str, Any]) -> None:
        self.run.log(_numbers(row, "train/"), step=row["step"])

    def probe(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        prefix = f"probe/{row['estimator']}/" if self.per_estimator else "probe/"
        self.run.log(_numbers(row, prefix), step=row["step"])

    def finish(self, summary: dict[str, Any]) -> None:
        table = self.wandb.Table(columns=STATS.names, data=[[row.get(c) for c in STATS.names] for row in self.rows])
        self.run.log({"stats": table})
        self.run.summary.update(summary)
        self.run.finish(exit_code=0 if summary["status"] == "ok" else 1)


def make_logger(cfg: DictConfig, output_dir: Path) -> Logger:
    """The logger cfg.logger names (none if cfg has no logger node); raises ConfigError for bad
    knobs, and whatever wandb.init raises (e.g. no API key for mode=online)."""
    check_logger(cfg)
    if OmegaConf.select(cfg, "logger.name", default="none") == "none":
        return Logger()
    return WandbLogger(cfg, Path(output_dir))


def log_report(
    group: str, figures: Mapping[str, Path], summary: pd.DataFrame, config: Mapping[str, Any], directory: Path | None = None
) -> None:
    """Log a sweep's report as one W&B run of ``group`` (job_type "report"): each PNG figure as
    the image ``figures/NAME``, and ``summary`` (summary.csv) as the table ``summary``.

    Args:
        group: the group's default, the sweep directory's name (``logger.group`` wins).
        figures: PNG paths by figure name.
        summary: the report's summary table.
        config: logged as the run's config; its ``logger`` node, if any (a sweep's composed
            config), sets the W&B knobs over conf/logger/wandb.yaml's defaults.
        directory: where W&B writes its files (DIRECTORY/wandb/) when ``logger.dir`` is null;
            None: wandb's default, $WANDB_DIR or the working directory.
    """
    import wandb  # only when a report is logged

    knobs = OmegaConf.load(CONF_DIR / "logger" / "wandb.yaml")
    if isinstance(config.get("logger"), Mapping) and config["logger"].get("name") == "wandb":
        knobs = OmegaConf.merge(knobs, config["logger"])
    check_logger(OmegaConf.create({"logger": knobs}))
    directory = knobs.dir or directory
    if directory is not None:
        Path(directory).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=knobs.project, entity=knobs.entity, group=knobs.group or group, job_type="report", name=f"report {group}",
        tags=list(knobs.tags), mode=knobs.mode, dir=directory, config=dict(config), reinit="create_new",
    )  # fmt: skip
    images = {f"figures/{name}": wandb.Image(str(path)) for name, path in figures.items()}
    run.log({**images, "summary": wandb.Table(dataframe=summary)})
    run.finish()
