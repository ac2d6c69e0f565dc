"""``discograd``: the Hydra app. ``main`` checks every job of the command line first
(discograd/preflight.py), then hands over to Hydra, whose task function is ``app``.
``discograd check TARGET`` runs the conformance kit instead (discograd/conformance.py), and
``discograd list [SECTION]`` lists the estimators, tasks, datasets and presets
(discograd/listing.py)."""
from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from discograd import conformance, listing
from discograd.errors import ConfigError
from discograd.preflight import CONF_DIR, preflight
from discograd.resume import finished
from discograd.run import run_job

log = logging.getLogger(__name__)


def fail(message: str) -> None:
    print(f"discograd: error: {message}", file=sys.stderr)
    sys.exit(2)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if cfg.get("resume"):
        done = finished(cfg, Path(hydra_cfg.sweep.dir if multirun else hydra_cfg.runtime.output_dir))
        if done is not None:
            log.info("resume: skipped, this config finished ok in %s", done)
            return
    summary = run_job(cfg, Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task))
    if multirun:
        return  # the sweep goes on; the end-of-sweep table lists failed jobs
    if summary["error_type"] == "ConfigError":
        fail(summary["error"])
    if summary["status"] == "failed":
        print(f"discograd: run failed: {summary['error']}", file=sys.stderr)
        sys.exit(1)
    if summary["status"] == "diverged":
        print(f"discograd: run diverged: {summary['error']}", file=sys.stderr)
        sys.exit(3)


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so that pending atomic writes remove their temp files."""
    raise SystemExit(128 + signum)


def version() -> str:
    """discograd's version (its installed distribution's), then Hydra's."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        ours = installed("discograd")
    except PackageNotFoundError:
        ours = "unknown (not installed)"
    return f"discograd {ours} (Hydra {hydra.__version__}, torch {__import__('torch').__version__})"


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(version())
        sys.exit(0)
    if sys.argv[1:2] == ["check"]:  # the conformance kit, not a run (discograd/conformance.py)
        sys.exit(conformance.main(sys.argv[2:]))
    if sys.argv[1:2] == ["list"]:  # what there is to run (discograd/listing.py)
        sys.exit(listing.main(sys.argv[2:]))
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        preflight(sys.argv[1:])
    except ConfigError as error:
        fail(str(error))
    try:
        app()
    except KeyboardInterrupt:  # the job wrote status interrupted (run_job); no traceback
        print("discograd: interrupted (Ctrl-C); summary.json says status interrupted, resume=true reruns it", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
