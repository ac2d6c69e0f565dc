"""Hydra callbacks: print the table of a run or a sweep when it ends (and, with report=true,
write the sweep's report)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from analysis.collect import collect
from analysis.report import write_report
from analysis.tables import format_results


class ResultsTable(Callback):
    """After a run or a multirun, print bias, variance and MSE of every configuration at step 0
    and at its final probe (analysis/tables.py), then the runs that failed or warned."""

    def _print(self, root: Path) -> None:
        collection = collect(root)
        print(format_results(collection.stats, collection.runs), flush=True)
        print(f"\nfiles: {root}", flush=True)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._print(Path(config.hydra.runtime.output_dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        self._print(root)
        if config.get("report"):
            report, *_ = write_report([root])
            print(f"report: {report}", flush=True)
