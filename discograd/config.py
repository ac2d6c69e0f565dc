"""Checks of a composed config and construction of its pieces, with one clear error each.

Every check raises :class:`ConfigError` naming the bad value and the valid ones; the CLI
runs them on every job of a sweep before the first job starts (see discograd/preflight.py),
and the run loop runs them again so that ``run(cfg)`` called from Python is as safe.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException, MissingConfigException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from discograd.errors import ConfigError
from estimators import ESTIMATORS, Estimator
from estimators.base import check_temperature
from estimators.registry import construction, needs_latent_shape
from primitives.families import ALL_FAMILIES

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
LOGGER_MODES = ("online", "offline", "disabled")


def _instantiate(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """instantiate(node, **kwargs), with the constructor's own ValueError/TypeError as a ConfigError."""
    try:
        return instantiate(node, **kwargs)
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


def non_finite(node: Any, path: str = "") -> list[str]:
    """The keys (dotted) of ``node`` whose value is a float NaN or +-inf."""
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in non_finite(value, f"{path}{key}.")]
    if isinstance(node, list):
        return [k for i, value in enumerate(node) for k in non_finite(value, f"{path}{i}.")]
    return [path[:-1]] if isinstance(node, float) and not math.isfinite(node) else []


def check_knobs(cfg: DictConfig) -> None:
    """The top-level knobs every run has (conf/config.yaml); no knob anywhere may be NaN or inf."""
    values = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in cfg if k != "hydra"}
    bad = non_finite(values)
    if bad:
        raise ConfigError(f"{', '.join(bad)} must be a finite number, got {OmegaConf.select(cfg, bad[0])}")
    if cfg.temperature is not None:
        try:
            check_temperature(cfg.temperature)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    _count(cfg, "seed", 0)
    _count(cfg, "steps", 0)
    _count(cfg, "log_every", 1)
    every = cfg.progress_every
    if isinstance(every, bool) or not isinstance(every, (int, float)) or not 0 < every <= 1:
        raise ConfigError(f"progress_every must be a fraction of the steps in (0, 1], got {every!r}")
    _count(cfg, "probe.samples", 2)
    _count(cfg, "probe.chunk", 1)
    _count(cfg, "probe.every", 0)
    _count(cfg, "probe.reference_samples", 2)
    if cfg.get("budget") is not None:
        _count(cfg, "budget", 1)
    limit = cfg.probe.get("max_memory")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or limit <= 0):
        raise ConfigError(f"probe.max_memory must be a positive number of GiB or null (half the free memory), got {limit!r}")
    if not isinstance(cfg.probe.get("save_draws", False), bool):
        raise ConfigError(f"probe.save_draws must be true or false, got {cfg.probe.save_draws!r}")
    if cfg.probe.reference not in ("auto", "exact", "estimated"):
        raise ConfigError(f"unknown probe.reference {cfg.probe.reference!r}; valid: auto, exact, estimated")
    if task_family(cfg) not in ALL_FAMILIES:
        raise ConfigError(f"task.family must be one of {', '.join(ALL_FAMILIES)}, got {task_family(cfg)!r}")
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


def estimator_class(node: DictConfig, what: str, cfg: DictConfig) -> type:
    """The Estimator subclass of ``node._target_``, checked to support the task's family."""
    target = node.get("_target_") if OmegaConf.is_dict(node) else None
    try:
        cls = get_class(target)
    except Exception as error:
        raise ConfigError(f"{what} _target_ {target!r} cannot be imported: {error}") from None
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise ConfigError(f"{what} _target_ {target!r} is not a subclass of estimators.Estimator")
    family = task_family(cfg)
    if family not in cls.families:
        fitting = sorted(n for n, c in ESTIMATORS.items() if family in c.families)
        raise ConfigError(
            f"{what} {cls.label()!r} supports {', '.join(sorted(cls.families))}, "
            f"but task {task_name(cfg)!r} is {family}; estimators for {family}: {', '.join(fitting)}"
        )
    if cls.pathwise and not build_task(cfg).relaxable:
        fitting = sorted(n for n, c in ESTIMATORS.items() if family in c.families and not c.pathwise)
        raise ConfigError(
            f"{what} {cls.label()!r} differentiates f in z, but task {task_name(cfg)!r}'s objective is "
            f"defined on hard samples only; estimators for it: {', '.join(fitting)}"
        )
    return cls


def build_estimator(
    cfg: DictConfig, node: DictConfig | None = None, latent_shape: tuple[int, ...] | None = None, what: str = "estimator"
) -> Estimator:
    """The estimator of ``node`` (default cfg.estimator), checked to be an Estimator that
    supports the task's family, built for the task's ``latent_shape`` where it needs one."""
    node = cfg.estimator if node is None else node
    cls = estimator_class(node, what, cfg)
    if latent_shape is None and needs_latent_shape(cls):
        latent_shape = tuple(build_task(cfg).latent_shape)
    return _instantiate(node, f"{what} {cls.label()!r}", **construction(cls, latent_shape))


def _searchpath(cfg: DictConfig) -> list[str]:
    """The run's extra Hydra search path (hydra.searchpath), so a user's estimator yaml on it
    resolves in probe.estimators as it does in estimator=NAME."""
    if OmegaConf.select(cfg, "hydra.searchpath") is not None:
        return list(cfg.hydra.searchpath)
    return list(HydraConfig.get().searchpath) if HydraConfig.initialized() else []


def option_node(group: str, name: str, cfg: DictConfig) -> dict[str, Any]:
    """The config group option ``group=name`` composed by Hydra (conf/ and the run's search
    path), unresolved: the one way from a name to an estimator's node."""
    overrides = [f"{group}={name}"]
    if path := _searchpath(cfg):
        overrides.append(f"hydra.searchpath=[{','.join(path)}]")
    try:
        if GlobalHydra.instance().is_initialized():
            composed = compose("config", overrides=overrides)
        else:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                composed = compose("config", overrides=overrides)
    except MissingConfigException as error:
        valid = ", ".join(sorted(error.options or []))
        raise ConfigError(f"unknown {group} {name!r} in probe.estimators; valid: {valid}") from None
    except HydraException as error:
        raise ConfigError(f"probe.estimators entry {name!r}: {error}") from None
    return OmegaConf.to_container(composed[group], resolve=False)


def basket_nodes(cfg: DictConfig) -> list[DictConfig]:
    """probe.estimators as resolved estimator nodes: each entry a name (conf/estimator/NAME.yaml
    or a user's on the search path) or a node with _target_, its ``${temperature}`` resolved
    to the trained estimator's temperature where it has one (the schedule writes both alike),
    else to the run's ``temperature``; other interpolations (a preset's ``${budget}``) against
    the run's config."""
    entries = cfg.probe.get("estimators") or []
    trained = OmegaConf.select(cfg, "estimator.temperature")
    temperature = cfg.temperature if trained is None else trained
    context = {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k not in ("hydra", "probe")}
    nodes = []
    for entry in entries:
        if isinstance(entry, str):
            plain = option_node("estimator", entry, cfg)
        elif OmegaConf.is_dict(entry) and "_target_" in entry:
            plain = OmegaConf.to_container(entry, resolve=False)
        else:
            raise ConfigError(f"probe.estimators entries are estimator names or nodes with _target_, got {entry!r}")
        try:
            scope = OmegaConf.create(context | {"temperature": temperature, "node": plain})
            resolved = {"node": OmegaConf.to_container(scope.node, resolve=True)}
        except Exception as error:
            raise ConfigError(f"probe.estimators entry {entry!r} cannot be resolved: {error}") from None
        nodes.append(OmegaConf.create(resolved["node"]))
    return nodes


def build_basket(cfg: DictConfig, latent_shape: tuple[int, ...] | None = None) -> list[tuple[DictConfig, Estimator]]:
    """(node, estimator) for each entry of ``probe.estimators``, probed beside the trained one."""
    return [(node, build_estimator(cfg, node, latent_shape, "probe.estimators entry")) for node in basket_nodes(cfg)]


def build_reference_estimator(cfg: DictConfig, latent_shape: tuple[int, ...] | None = None) -> Estimator:
    """probe.reference_estimator: the unbiased estimator behind an estimated reference."""
    node = cfg.probe.reference_estimator
    cls = estimator_class(node, "probe.reference_estimator", cfg)
    if not cls.unbiased:
        unbiased = ", ".join(sorted(n for n, c in ESTIMATORS.items() if c.unbiased))
        raise ConfigError(f"probe.reference_estimator {cls.label()!r} is biased; unbiased estimators: {unbiased}")
    return build_estimator(cfg, node, latent_shape, "probe.reference_estimator")


def build_schedule(cfg: DictConfig, estimator: Estimator) -> Any:
    """The temperature schedule, starting from the trained estimator's temperature; None for
    an estimator without one. A schedule that is not constant is refused for an estimator that
    learns its temperature."""
    if estimator.temperature is None:
        return None
    schedule = _instantiate(cfg.schedule, "schedule", initial=estimator.temperature)
    if estimator.learns_temperature and not schedule.constant:
        raise ConfigError(
            f"estimator {estimator.label()!r} learns its temperature; a schedule would overwrite it: "
            "use schedule=constant (or the estimator's learn=false)"
        )
    return schedule


def build_task(cfg: DictConfig) -> Any:
    return _instantiate(cfg.task, f"task {task_name(cfg)!r}")


def validate(cfg: DictConfig) -> None:
    """All checks that need no data and no device: knobs, estimator, schedule, task knobs."""
    check_knobs(cfg)
    latent_shape = tuple(build_task(cfg).latent_shape)
    build_schedule(cfg, build_estimator(cfg, latent_shape=latent_shape))
    build_basket(cfg, latent_shape)
    build_reference_estimator(cfg, latent_shape)
