"""Checks every job of a command line before Hydra starts the first one.

Hydra composes a sweep's jobs one at a time, so a typo in the fifth job would surface after
four had run, as a traceback. Here the overrides (and an experiment's hydra.sweeper.params)
are expanded the way Hydra's basic sweeper does, each job's config is composed with Hydra's
compose API, and :func:`discograd.config.validate` runs on it. Device availability is left
to the jobs: a sweep over device=cpu,cuda on a machine without CUDA records the cuda job as
failed and finishes the others.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

from discograd.config import CONF_DIR, validate
from discograd.errors import ConfigError
from discograd import resume

MULTIRUN_FLAGS = ("-m", "--multirun")


def _composition_error(error: HydraException) -> ConfigError:
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options is not None:
        group, _, name = str(error.missing_cfg_file).rpartition("/")
        return ConfigError(f"unknown {group or 'config'} {name!r}; valid: {', '.join(sorted(error.options))}")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # Hydra's message spreads over lines (what failed, a hint, the cause); keep the first three, before its key dump
    kept = [line for line in lines[:3] if not line.startswith(("full_key", "object_type"))]
    return ConfigError(" ".join(kept) or type(error).__name__)


def _parse(overrides: list[str]) -> list:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise _composition_error(error) from None


def _compose(overrides: list[str], hydra_config: bool = False) -> DictConfig:
    try:
        return compose("config", overrides=overrides, return_hydra_config=hydra_config)
    except HydraException as error:
        raise _composition_error(error) from None


def job_overrides(args: list[str]) -> list[list[str]] | None:
    """The override list of every job ``discograd ARGS`` would run, or None where ARGS
    hold flags other than -m (--cfg, --help, ...) that Hydra handles itself."""
    multirun = any(a in MULTIRUN_FLAGS for a in args)
    overrides = [a for a in args if a not in MULTIRUN_FLAGS]
    if any(a.startswith("-") for a in overrides):
        return None
    if not multirun:
        return [overrides]
    fixed = [o.input_line for o in _parse(overrides) if not o.is_sweep_override()]
    params = OmegaConf.select(_compose(fixed, hydra_config=True), "hydra.sweeper.params") or {}
    parsed = _parse([f"{k}={v}" for k, v in params.items()] + overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


FIXED_GROUPS = ("probe",)  # nodes whose set of knobs is fixed (conf/config.yaml); tasks and estimators check theirs on construction


def unknown_keys(cfg: DictConfig, base: DictConfig) -> None:
    """A ConfigError naming a key of ``cfg`` that the root config does not have (``+stpes=10``,
    which Hydra itself suggests after a typo, would otherwise run the default silently), with
    the nearest valid key."""
    for prefix, node, known in [("", cfg, base), *((f"{g}.", cfg[g], base[g]) for g in FIXED_GROUPS if g in cfg)]:
        valid = [k for k in known if k != "hydra"]
        for key in node:
            if key != "hydra" and key not in known:
                near = difflib.get_close_matches(str(key), valid, n=1)
                hint = f"did you mean {prefix}{near[0]}? " if near else ""
                raise ConfigError(f"unknown key {prefix}{key}; {hint}valid: {', '.join(prefix + v for v in valid)}")


def writable_output(cfg: DictConfig, multirun: bool) -> None:
    """A ConfigError if the run's (or the sweep's) output directory cannot be made: Hydra would
    fail on it with a traceback of 15 lines. It is created here, as Hydra would create it."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    if folder is None:
        return
    try:
        os.makedirs(Path(str(folder)), exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write the output directory {key}={folder}: {error.strerror or error}") from None
    if not os.access(str(folder), os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the output directory {key}={folder}: permission denied")


def job_folder(cfg: DictConfig, multirun: bool, number: int) -> Path | None:
    """Where the job writes: hydra.run.dir, or in a sweep hydra.sweep.dir/<job number> (Hydra's
    default subdir; None for a custom subdir, which only Hydra resolves)."""
    if not multirun:
        folder = OmegaConf.select(cfg, "hydra.run.dir", throw_on_resolution_failure=False)
        return None if folder is None else Path(str(folder))
    subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False).get("subdir")
    folder = OmegaConf.select(cfg, "hydra.sweep.dir", throw_on_resolution_failure=False)
    return Path(str(folder)) / str(number) if subdir == "${hydra.job.num}" and folder is not None else None


def not_occupied(cfg: DictConfig, folder: Path | None) -> None:
    """A ConfigError if ``folder`` holds the results of another configuration or seed (its
    summary.json's config_id and seed), unless overwrite=true: a run there would replace them.
    The same configuration may rerun there (resume=true skips it if it finished ok)."""
    if folder is None or cfg.get("overwrite"):
        return
    held = resume.held(folder / "summary.json")
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # the job's config: hydra's node does not resolve here
    if held is None or resume.same_job(held, job):
        return
    what = held.get("overrides") or "the defaults"
    raise ConfigError(
        f"{folder} already holds another configuration's results (config_id {held.get('config_id')}, seed "
        f"{held.get('seed')}: {what}); write elsewhere (hydra.run.dir / hydra.sweep.dir) or add overwrite=true to replace them"
    )


def preflight(args: list[str]) -> int:
    """Validate every job of the command line (that its output directory can be written and
    holds no other configuration's results); returns how many were checked."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        jobs = job_overrides(args)
        base = _compose([]) if jobs else None
        multirun = any(a in MULTIRUN_FLAGS for a in args)
        for number, overrides in enumerate(jobs or []):
            cfg = _compose(overrides, hydra_config=True)  # with hydra.searchpath, for probe.estimators names
            unknown_keys(cfg, base)
            validate(cfg)
            not_occupied(cfg, job_folder(cfg, multirun, number))
        if jobs:
            writable_output(cfg, multirun)
    return len(jobs or [])
