"""``discograd-report DIR [DIR ...]``: the command line of analysis/report.py.

``--wandb`` also logs the figures and the summary table as one W&B run of the sweep's group
(discograd/loggers.py), which is why the command lives here and not in analysis/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.collect import run_dirs
from analysis.report import failed_runs, write_report
from analysis.schema import SchemaError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="discograd-report", description="Tables, figures and report.html for runs and sweeps.")
    parser.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories (searched recursively for summary.json)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: FIRST_DIR/report)")
    parser.add_argument("--wandb", action="store_true", help="also log the figures and summary table as one W&B run of the sweep's group")
    args = parser.parse_args(argv)
    for folder in args.dirs:  # one line and exit 2 before any work, like discograd's bad input
        if not folder.is_dir():
            print(f"discograd-report: error: no such run or sweep directory: {folder}", file=sys.stderr)
            sys.exit(2)
        if not run_dirs(folder):
            print(f"discograd-report: error: no runs found under {folder} (no summary.json in it or below)", file=sys.stderr)
            sys.exit(2)
    try:
        report, figures, summary, collection = write_report(args.dirs, args.out)
    except (FileNotFoundError, SchemaError) as error:
        print(f"discograd-report: error: {error}", file=sys.stderr)
        sys.exit(2)
    if args.wandb:
        from discograd.loggers import log_report  # torch and wandb only when asked for

        log_report(args.dirs[0].resolve().name, figures, summary, {"dirs": [str(d) for d in args.dirs]}, directory=report.parent)
    bad = failed_runs(collection)
    print(f"{len(collection.runs)} runs ({len(bad)} did not finish ok); report: {report}")


if __name__ == "__main__":
    main()
