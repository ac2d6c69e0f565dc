"""The run loop: train the task with the estimator, probe its gradients, write the run's files.

Files (in the run's output directory, each written atomically after every change):
    stats.csv     one row per probe: bias, variance, mse, snr, cosine, cost (STATS_COLUMNS)
    train.csv     one row per logged step: step, objective, temperature, eval metrics, seconds
    summary.json  status ok | failed | diverged, the error if any, final metrics
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from analysis.schema import STATS_COLUMNS, TRAIN_COLUMNS
from analysis.statistics import gradient_statistics
from discograd.config import build_basket, build_estimator, build_schedule, build_task, check_knobs
from discograd.devices import resolve_device
from discograd.errors import ConfigError, Diverged
from primitives.io import write_csv, write_json
from discograd.loggers import Logger, make_logger
from discograd.probe import draw_estimates, flatten
from estimators import Estimator
from estimators.budget import Budgeted
from estimators.reinforce import Reinforce
from tasks import Task

log = logging.getLogger(__name__)



def probe_steps(steps: int, every: int) -> list[int]:
    """Step 0, every ``every`` steps (0: never in between), and the last step."""
    between = range(every, steps, every) if every > 0 else []
    return sorted({0, steps, *between})


def reference_gradient(task: Task, batch: Any, cfg: DictConfig) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(reference [P], its standard errors or None, "exact" | "estimated").

    Exact where the task has it (unless probe.reference=estimated); otherwise the mean of
    probe.reference_samples draws of reinforce with the leave-one-out baseline (unbiased).
    """
    names = list(task.estimand())
    exact = None if cfg.probe.reference == "estimated" else task.exact_gradient(batch)
    if exact is not None:
        return flatten(exact, names), None, "exact"
    if cfg.probe.reference == "exact":
        raise ConfigError(f"probe.reference=exact, but task {task.label()!r} has no exact gradient here; valid: auto, estimated")
    device = next(task.parameters.parameters()).device
    rloo = Reinforce(baseline="loo", num_samples=2).to(device)
    draws = draw_estimates(task, rloo, batch, cfg.probe.reference_samples, cfg.probe.chunk, cfg.probe.vectorize, "reference")
    x = draws.estimates.astype(np.float64)
    return x.mean(0), x.std(0, ddof=1) / math.sqrt(x.shape[0]), "estimated"


class Recorder:
    """Holds the rows of a run, rewrites its files atomically as they grow, and hands each
    row to the run's logger."""

    def __init__(self, output_dir: Path, logger: Logger) -> None:
        self.output_dir, self.logger = Path(output_dir), logger
        self.stats: list[dict[str, Any]] = []
        self.train: list[dict[str, Any]] = []

    def add_stats(self, row: dict[str, Any]) -> None:
        self.stats.append(row)
        write_csv(self.output_dir / "stats.csv", self.stats, STATS_COLUMNS)
        self.logger.probe(row)

    def add_train(self, row: dict[str, Any]) -> None:
        self.train.append(row)
        write_csv(self.output_dir / "train.csv", self.train, TRAIN_COLUMNS)
        self.logger.train(row)


def probe(step: int, task: Task, estimators: list[Estimator], batch: Any, cfg: DictConfig, device: torch.device) -> list[dict[str, Any]]:
    """stats.csv rows, one per estimator: probe.samples estimates of each, on the same batch
    and parameters, compared with one reference."""
    reference, reference_se, kind = reference_gradient(task, batch, cfg)
    rows = []
    for estimator in estimators:
        draws = draw_estimates(
            task, estimator, batch, cfg.probe.samples, cfg.probe.chunk, cfg.probe.vectorize, f"probe step {step}"
        )
        if not np.isfinite(draws.estimates).all():
            raise Diverged(step, f"a probe estimate of {estimator.label()}")
        stats = gradient_statistics(draws.estimates, reference, reference_se, draws.evaluations, draws.seconds_per_estimate)
        rows.append({
            "step": step, "estimator": estimator.label(), "task": task.label(),
            "family": task.family, "temperature": estimator.temperature, "samples": cfg.probe.samples,
            **stats, "reference": kind, "settings": estimator.extra_repr(), "seed": cfg.seed, "device": str(device),
        })  # fmt: skip
        log.info(
            "probe step %d, %s: bias_norm %.4g [%.4g, %.4g], variance %.4g [%.4g, %.4g], mse %.4g",
            step, estimator.label(), stats["bias_norm"], stats["bias_norm_lo"], stats["bias_norm_hi"],
            stats["variance"], stats["variance_lo"], stats["variance_hi"], stats["mse"],
        )  # fmt: skip
    return rows


FUSED_CHECK_DEVICES = ("cpu", "cuda")


def not_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether any entry of ``tensors`` (all on one device) is nan or +-inf.

    On cpu and cuda in one fused pass, with the kernel torch.amp.GradScaler checks gradients
    with (at a scale of 1, so the tensors are unchanged); elsewhere an isfinite().all() per
    tensor. On the nonlinear VAE's 13 gradients (CPU) that per-tensor check and
    torch._foreach_norm(inf) both take 1.6 ms, a quarter of the training step, a sum per
    tensor (about 45 small ops) 0.15 ms, the fused pass 0.1 ms (docs/performance-vae.md)."""
    if tensors[0].device.type not in FUSED_CHECK_DEVICES:
        return not all(bool(torch.isfinite(t).all()) for t in tensors)
    found = torch.zeros(1, dtype=torch.float32, device=tensors[0].device)  # the kernel wants float32 whatever the default
    torch._amp_foreach_non_finite_check_and_unscale_(tensors, found, torch.ones_like(found))
    return bool(found)


def train_step(step: int, task: Task, estimator: Estimator, optimizers: list[torch.optim.Optimizer]) -> float:
    """One optimizer step on the estimator's surrogate; returns the objective estimate."""
    batch = task.train_batch()
    logits = task.logits(batch)
    estimate = estimator(logits, task.bind(batch, logits), task.family)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    estimate.surrogate.backward()
    value = estimate.value.item()
    if not math.isfinite(value):
        raise Diverged(step, "the objective")
    # the gradients the optimizers are about to apply (their lists: walking the module tree
    # for its parameters cost ~40 us per step, 1% of the VAE's step)
    grads = [p.grad for o in optimizers for group in o.param_groups for p in group["params"] if p.grad is not None]
    if grads and not_finite(grads):
        raise Diverged(step, "a parameter gradient")
    for optimizer in optimizers:
        optimizer.step()
    return value


def run(cfg: DictConfig, output_dir: Path, logger: Logger | None = None) -> dict[str, Any]:
    """Train and probe as cfg says, writing stats.csv and train.csv (and handing their rows to
    ``logger``, if given); returns the final metrics.

    Raises ConfigError for bad input, Diverged for NaN/inf; ``run_job`` records both.
    """
    check_knobs(cfg)
    estimator, schedule = build_estimator(cfg), build_schedule(cfg)
    basket = build_basket(cfg) or [estimator]  # probe.estimators, else the trained estimator
    if cfg.get("budget"):  # every estimator spends the same evaluations of f per estimate
        estimator = Budgeted(estimator, cfg.budget)
        basket = [Budgeted(other, cfg.budget) for other in basket]
    device = resolve_device(cfg.device.name)
    torch.manual_seed(cfg.seed)
    task = build_task(cfg).to(device)
    estimator.to(device)
    for other in basket:
        other.to(device)
    optimizers = task.optimizers()
    recorder, batch = Recorder(output_dir, logger or Logger()), task.probe_batch()
    probes, start = set(probe_steps(cfg.steps, cfg.probe.every)), time.perf_counter()
    window: list[float] = []
    desc = f"{task.label()}/{estimator.label()}"
    with tqdm(total=cfg.steps, desc=desc, disable=None) as bar:
        for step in range(cfg.steps + 1):
            if step in probes:
                for other in basket:  # the basket follows the trained estimator's temperature
                    if other.temperature is not None and estimator.temperature is not None:
                        other.set_temperature(estimator.temperature)
                for row in probe(step, task, basket, batch, cfg, device):
                    recorder.add_stats(row)
            if step % cfg.log_every == 0 or step == cfg.steps:
                metrics = task.evaluate()
                recorder.add_train({
                    "step": step, "objective": float(np.mean(window)) if window else float("nan"),
                    "temperature": estimator.temperature, **metrics, "seconds": time.perf_counter() - start,
                })  # fmt: skip
                if bar.disable:  # no terminal: plain log lines instead of the bar
                    log.info("step %d/%d: %s", step, cfg.steps, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                window = []
            if step == cfg.steps:
                break
            if estimator.temperature is not None:
                estimator.set_temperature(schedule(step))
            window.append(train_step(step, task, estimator, optimizers))
            bar.update(1)
    return {"temperature": estimator.temperature, "metrics": metrics, "final_probe": {k: recorder.stats[-1][k] for k in ("bias_norm", "variance", "mse")}}


def _name(cfg: DictConfig, group: str) -> str | None:
    """The label of cfg.<group>'s class, else its _target_ (never raises)."""
    target = OmegaConf.select(cfg, f"{group}._target_")
    try:
        return get_class(target).label()
    except Exception:
        return target


def config_hash(cfg: DictConfig) -> str:
    """sha256 of the resolved config, less the keys that do not change results (resume,
    report, logger, hydra): what resume=true compares, never a folder name."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain = {k: v for k, v in plain.items() if k not in ("resume", "report", "logger", "hydra")}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_job(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """``run`` that never raises for a failing job: it writes summary.json with status
    ok | failed | diverged (and the error), finishes the job's logger with it (a W&B run that
    cannot start fails the job), and returns that summary. An interrupted job writes no
    summary; wandb's exit hook finishes its W&B run as failed."""
    output_dir = Path(output_dir)
    summary: dict[str, Any] = {
        "status": "ok", "error": None, "error_type": None, "config_hash": config_hash(cfg),
        "task": _name(cfg, "task"), "estimator": _name(cfg, "estimator"),
        "temperature": OmegaConf.select(cfg, "estimator.temperature"), "seed": cfg.get("seed"), "device": OmegaConf.select(cfg, "device.name"),
    }  # fmt: skip
    start, logger = time.perf_counter(), Logger()
    try:
        logger = make_logger(cfg, output_dir)
        summary |= run(cfg, output_dir, logger)
    except Diverged as error:
        summary |= {"status": "diverged", "error": str(error), "error_type": "Diverged", "diverged_at": error.step}
        log.warning("run diverged: %s", error)
    except Exception as error:  # a failing job is recorded and the sweep goes on
        summary |= {"status": "failed", "error": str(error), "error_type": type(error).__name__}
        if not isinstance(error, ConfigError):
            log.error("run failed:\n%s", traceback.format_exc())
    summary["seconds"] = time.perf_counter() - start
    write_json(output_dir / "summary.json", summary)
    logger.finish(summary)
    return summary
