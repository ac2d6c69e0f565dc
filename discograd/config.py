"""Checks of a composed config and construction of its pieces, with one clear error each.

Every check raises :class:`ConfigError` naming the bad value and the valid ones; the CLI
runs them on every job of a sweep before the first job starts (see discograd/preflight.py),
and the run loop runs them again so that ``run(cfg)`` called from Python is as safe.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from discograd.errors import ConfigError
from estimators import ESTIMATORS, Estimator
from estimators.base import check_temperature
from primitives.families import FAMILIES

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
LOGGER_MODES = ("online", "offline", "disabled")


def _instantiate(node: DictConfig, what: str) -> Any:
    """instantiate(node), with the constructor's own ValueError/TypeError as a ConfigError."""
    try:
        return instantiate(node)
    except InstantiationException as error:
        cause = error.__cause__ or error
        if isinstance(cause, (ValueError, TypeError, ImportError, AttributeError)):
            raise ConfigError(f"{what}: {cause}") from cause
        raise


def _count(cfg: DictConfig, key: str, minimum: int) -> None:
    value = cfg
    for part in key.split("."):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")


def check_knobs(cfg: DictConfig) -> None:
    """The top-level knobs every run has (conf/config.yaml)."""
    if cfg.temperature is not None:
        try:
            check_temperature(cfg.temperature)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    _count(cfg, "seed", 0)
    _count(cfg, "steps", 0)
    _count(cfg, "log_every", 1)
    _count(cfg, "probe.samples", 2)
    _count(cfg, "probe.chunk", 1)
    _count(cfg, "probe.every", 0)
    _count(cfg, "probe.reference_samples", 2)
    if cfg.get("budget") is not None:
        _count(cfg, "budget", 1)
    if cfg.probe.reference not in ("auto", "exact", "estimated"):
        raise ConfigError(f"unknown probe.reference {cfg.probe.reference!r}; valid: auto, exact, estimated")
    if task_family(cfg) not in FAMILIES:
        raise ConfigError(f"task.family must be one of {', '.join(FAMILIES)}, got {task_family(cfg)!r}")
    check_logger(cfg)


def check_logger(cfg: DictConfig) -> None:
    """logger=none | wandb (conf/logger/); for wandb, its mode and tags."""
    logger = cfg.get("logger")
    if logger is None or logger.get("name") == "none":
        return
    if logger.get("name") != "wandb":
        raise ConfigError(f"unknown logger.name {logger.get('name')!r}; valid: none, wandb")
    if logger.mode not in LOGGER_MODES:
        raise ConfigError(f"unknown logger.mode {logger.mode!r}; valid: {', '.join(LOGGER_MODES)}")
    if not OmegaConf.is_list(logger.tags):
        raise ConfigError(f"logger.tags must be a list, e.g. logger.tags=[a,b], got {logger.tags!r}")


def _class(cfg: DictConfig, group: str) -> type:
    target = cfg[group]._target_
    try:
        return get_class(target)
    except Exception as error:
        raise ConfigError(f"{group} _target_ {target!r} cannot be imported: {error}") from None


def task_name(cfg: DictConfig) -> str:
    cls = _class(cfg, "task")
    return cls.label()


def task_family(cfg: DictConfig) -> str | None:
    """The family a task class fixes (a class attribute), else its ``family`` knob."""
    return getattr(_class(cfg, "task"), "family", None) or cfg.task.get("family")


def build_estimator(cfg: DictConfig) -> Estimator:
    """The estimator of cfg.estimator, checked to be an Estimator supporting the task's family."""
    cls = _class(cfg, "estimator")
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise ConfigError(f"estimator _target_ {cfg.estimator._target_!r} is not a subclass of estimators.Estimator")
    family = task_family(cfg)
    if family not in cls.families:
        fitting = sorted(n for n, c in ESTIMATORS.items() if family in c.families)
        raise ConfigError(
            f"estimator {cls.label()!r} supports {', '.join(sorted(cls.families))}, "
            f"but task {task_name(cfg)!r} is {family}; estimators for {family}: {', '.join(fitting)}"
        )
    return _instantiate(cfg.estimator, f"estimator {cls.label()!r}")


def build_basket(cfg: DictConfig) -> list[Estimator]:
    """The estimators of ``probe.estimators`` (names of conf/estimator/*.yaml, each with its
    defaults and the run's temperature), probed beside the one that trains; [] if none."""
    names = list(cfg.probe.get("estimators") or [])
    valid = sorted(p.stem for p in (CONF_DIR / "estimator").glob("*.yaml"))
    basket = []
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown estimator {name!r} in probe.estimators; valid: {', '.join(valid)}")
        plain = OmegaConf.to_container(cfg, resolve=False)
        plain["estimator"] = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "estimator" / f"{name}.yaml"))
        basket.append(build_estimator(OmegaConf.create(plain)))
    return basket


def build_schedule(cfg: DictConfig) -> Any:
    return _instantiate(cfg.schedule, "schedule")


def build_task(cfg: DictConfig) -> Any:
    return _instantiate(cfg.task, f"task {task_name(cfg)!r}")


def validate(cfg: DictConfig) -> None:
    """All checks that need no data and no device: knobs, estimator, schedule, task knobs."""
    check_knobs(cfg)
    build_estimator(cfg)
    build_basket(cfg)
    build_schedule(cfg)
    build_task(cfg)
