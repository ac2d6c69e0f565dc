"""Hydra callbacks: print the table of a run or a sweep when it ends."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from analysis.collect import collect
from analysis.tables import format_results


class ResultsTable(Callback):
    """After a run or a multirun, print bias, variance and MSE of every job, and failures."""

    def _print(self, root: Path) -> None:
        stats, runs = collect(root)
        print(format_results(stats, runs), flush=True)
        print(f"\nfiles: {root}", flush=True)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._print(Path(config.hydra.runtime.output_dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._print(Path(config.hydra.sweep.dir))
