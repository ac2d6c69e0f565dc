"""``discograd-report DIR [DIR ...]``: the command line of analysis/report.py.

A run file that cannot be read (empty, cut short by a killed job, not CSV or JSON, not the
schema) does not stop the report: each such file is one line on stderr,
``discograd-report: warning: unreadable: PATH ...`` (the message names the file and what is
wrong), its run is left out of the tables and figures and listed in report.html with status
``unreadable``, and the last line counts them. With ``--strict`` the first one is
``discograd-report: error: PATH ...`` and exit 2, before anything is written. Exit 2 also
when no run can be read.

``--wandb`` also logs the figures and the summary table as one W&B run of the sweep's group
(discograd/loggers.py), which is why the command lives here and not in analysis/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from analysis.collect import Collection, collect, run_dirs
from analysis.report import failed_runs, warned_runs, write_report
from analysis.schema import SchemaError


def _error(message: str) -> NoReturn:
    """One line on stderr and exit 2, like discograd's bad input."""
    print(f"discograd-report: error: {message}", file=sys.stderr)
    sys.exit(2)


def _collect(dirs: list[Path], strict: bool) -> Collection:
    """The runs under ``dirs``, each unreadable file warned about (``strict``: an error)."""
    for folder in dirs:  # before any work
        if not folder.is_dir():
            _error(f"no such run or sweep directory: {folder}")
        if not run_dirs(folder):
            _error(f"no runs found under {folder} (no summary.json in it or below)")
    try:
        collection = collect(*dirs, strict=strict)
    except SchemaError as error:
        _error(str(error))
    for message in collection.unreadable["error"]:
        print(f"discograd-report: warning: unreadable: {message}", file=sys.stderr)
    if collection.runs.empty:
        _error(f"no readable runs under {', '.join(str(d) for d in dirs)}")
    return collection


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="discograd-report",
        description="Tables, figures and report.html for runs and sweeps.",
        epilog="A run file that cannot be read (empty, cut short, not CSV or JSON, not the schema) is "
        "a warning naming it, and its run is listed as unreadable in the report; --strict makes it an "
        "error. Exit 2: a bad directory, an unreadable file under --strict, or no readable run.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories (searched recursively for summary.json)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: FIRST_DIR/report)")
    parser.add_argument("--strict", action="store_true",
                        help="an unreadable run file is an error (exit 2, nothing written)")
    parser.add_argument("--wandb", action="store_true", help="also log the figures and summary table as one W&B run of the sweep's group")
    args = parser.parse_args(argv)
    collection = _collect(args.dirs, args.strict)
    report, figures, summary, collection = write_report(args.dirs, args.out, collection)
    if args.wandb:
        from discograd.loggers import log_report  # torch and wandb only when asked for

        log_report(args.dirs[0].resolve().name, figures, summary, {"dirs": [str(d) for d in args.dirs]}, directory=report.parent)
    bad, unreadable = len(failed_runs(collection)), collection.unreadable["run"].nunique()
    warned = len(warned_runs(collection))
    runs = len(collection.runs) + unreadable
    also = (f", {warned} finished ok with a warning" if warned else "") + (f", {unreadable} unreadable" if unreadable else "")
    print(f"{runs} runs ({bad} did not finish ok{also}); report: {report}")


if __name__ == "__main__":
    main()
