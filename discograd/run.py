"""The run loop: train the task with the estimator, probe its gradients, write the run's files.

Files (in the run's output directory, each written atomically after every change, every row
checked against analysis/schema.py as it is written):
    stats.csv     one row per probe and probed estimator: bias, variance, mse, snr, cosine, cost
    train.csv     one row per logged step: step, objective, temperature, eval metrics, seconds
    summary.json  status ok | failed | diverged | interrupted, the error if any, final metrics,
                  the final probe of each probed estimator by label, the learned values, and a
                  warning where an ok run still looks diverged (``growth_warning``)

State (estimators/base.py): the run loop is the one writer of estimator state. The schedule
sets the temperature of every probed estimator that has one and does not learn it, before
every probe and every training step, step 0 included; learned parameters are stepped, in
training only, by an optimizer built here from ``Estimate.control_loss``.
"""
from __future__ import annotations

import logging
import math
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from analysis.schema import LEARNED, STATS, TRAIN, SchemaError, summary_fields
from analysis.moments import Moments, Summary
from analysis.statistics import summary_statistics
from discograd.config import (
    build_basket, build_estimator, build_reference_estimator, build_schedule, build_task, check_knobs,
)  # fmt: skip
from discograd.identity import config_id, estimator_label, knobs_text, readable_overrides
from discograd.devices import resolve_device
from discograd.errors import ConfigError, Diverged, Interrupted
from discograd.loggers import Logger, make_logger
from discograd.draw_file import DrawFile
from discograd.plan import ProbePlan, evaluations_per_estimate, plan_probe
from discograd.probe import flatten, own_stream, stream_estimates
from estimators import Estimator
from estimators.budget import Budgeted
from primitives.io import write_csv, write_json
from tasks import Task

log = logging.getLogger(__name__)
LEARNED_COLUMNS = [c.name for c in LEARNED]



def probe_steps(steps: int, every: int) -> list[int]:
    """Step 0, every ``every`` steps (0: never in between), and the last step."""
    between = range(every, steps, every) if every > 0 else []
    return sorted({0, steps, *between})


@dataclass(frozen=True)
class Reference:
    """What the probe compares against: the exact gradient [P], or the streamed moments of an
    unbiased estimator's draws (their mean, their noise, a bank of their differences)."""

    target: np.ndarray | Summary
    bank: Any  # [K, P] differences of the reference's draws (None for an exact reference)
    kind: str  # exact | estimated

    @property
    def mean(self) -> np.ndarray:
        return self.target.mean if isinstance(self.target, Summary) else self.target


def task_device(task: Task) -> torch.device:
    """The device of the task's estimand (where the probe draws)."""
    return next(iter(task.estimand().values())).device


def reference_kind(task: Task, batch: Any, cfg: DictConfig) -> dict[str, torch.Tensor] | None:
    """The task's exact gradient where the run uses it (probe.reference auto or exact), else None."""
    exact = None if cfg.probe.reference == "estimated" else task.exact_gradient(batch)
    if exact is None and cfg.probe.reference == "exact":
        raise ConfigError(f"probe.reference=exact, but task {task.label()!r} has no exact gradient here; valid: auto, estimated")
    return exact


def reference_gradient(task: Task, batch: Any, cfg: DictConfig, reference: Estimator, plan: ProbePlan, step: int,
                       output_dir: Path) -> Reference:  # fmt: skip
    """The exact gradient where the task has it (unless probe.reference=estimated); otherwise
    probe.reference_samples draws of ``reference`` (probe.reference_estimator, unbiased),
    streamed into moments whose full noise enters the bias test."""
    exact = reference_kind(task, batch, cfg)
    if exact is not None:
        return Reference(flatten(exact, list(task.estimand())), None, "exact")
    acc = Moments(keep_bank=plan.bank_rows, block=plan.chunk)
    with own_stream(cfg.seed, step, "reference", task_device(task)), \
            saving(cfg, output_dir, step, "reference", (cfg.probe.reference_samples, plan.dims), acc.update) as consume:
        stream_estimates(task, reference, batch, cfg.probe.reference_samples, finite(consume, "the reference estimator", step),
                         plan.chunk, cfg.probe.vectorize, "reference")  # fmt: skip
    return Reference(acc.summary(), acc.bank, "estimated")


@contextmanager
def saving(cfg: DictConfig, output_dir: Path, step: int, label: str, shape: tuple[int, int],
           consume: Callable[[torch.Tensor], None]) -> Iterator[Callable[[torch.Tensor], None]]:  # fmt: skip
    """``consume``, which with probe.save_draws=true also streams the rows to their .npy."""
    if not cfg.probe.save_draws:
        yield consume
        return
    with DrawFile(output_dir, step, label, shape) as saved:

        def both(rows: torch.Tensor) -> None:
            consume(rows)
            saved.write(rows)

        yield both


def finite(consume: Callable[[torch.Tensor], None], what: str, step: int) -> Callable[[torch.Tensor], None]:
    """``consume`` that first refuses a chunk with a NaN or inf (Diverged)."""

    def checked(rows: torch.Tensor) -> None:
        if not torch.isfinite(rows).all():
            raise Diverged(step, f"a probe estimate of {what}")
        consume(rows)

    return checked


@dataclass(frozen=True)
class Probed:
    """One estimator a run probes: its label (unique in the run), its knobs, the module."""

    label: str
    knobs: str
    estimator: Estimator


class Recorder:
    """Holds the rows of a run, rewrites its files atomically as they grow (each row checked
    against its table's schema first), and hands each row to the run's logger."""

    def __init__(self, output_dir: Path, logger: Logger, identity: dict[str, Any]) -> None:
        self.output_dir, self.logger, self.identity = Path(output_dir), logger, identity
        self.stats: list[dict[str, Any]] = []
        self.train: list[dict[str, Any]] = []
        self.step: int | None = None  # the step the run loop is in (None before the first)

    def add_stats(self, row: dict[str, Any]) -> None:
        self.stats.append(STATS.row(self.identity | row))
        write_csv(self.output_dir / "stats.csv", self.stats, STATS.names)
        self.logger.probe(self.stats[-1])

    def add_train(self, row: dict[str, Any]) -> None:
        self.train.append(TRAIN.row(self.identity | row))
        write_csv(self.output_dir / "train.csv", self.train, TRAIN.names)
        self.logger.train(self.train[-1])


def task_metrics(task: Task) -> dict[str, float]:
    """``task.evaluate()``, refused if a metric takes the name of one of train.csv's own columns
    (it would overwrite that column in the row: mrf's ``objective`` once did)."""
    metrics = task.evaluate()
    if taken := [k for k in metrics if k in TRAIN.names]:
        raise SchemaError(f"task {task.label()!r}'s evaluate() returns {', '.join(taken)}, a train.csv column; rename the metric")
    return metrics


def learned_columns(estimator: Estimator) -> dict[str, float | None]:
    """The schema's learned-value columns for ``estimator`` (None where it learns nothing)."""
    values = estimator.learned_values()
    unknown = [k for k in values if k not in LEARNED_COLUMNS]
    if unknown:
        raise SchemaError(f"estimator {estimator.label()!r} learns {', '.join(unknown)}; columns: {', '.join(LEARNED_COLUMNS)}")
    return {k: values.get(k) for k in LEARNED_COLUMNS}


def probe(step: int, task: Task, probed: list[Probed], batch: Any, cfg: DictConfig, reference: Estimator,
          plan: ProbePlan, output_dir: Path) -> list[dict[str, Any]]:  # fmt: skip
    """stats.csv rows, one per probed estimator: probe.samples estimates of each, on the same
    batch and parameters, streamed into moments and compared with one reference."""
    ref = reference_gradient(task, batch, cfg, reference, plan, step, output_dir)
    rows = []
    for item in probed:
        acc = Moments(reference=ref.mean, bank=ref.bank, keep_bank=plan.direction_rows, block=plan.chunk)
        with own_stream(cfg.seed, step, item.label, task_device(task)), \
                saving(cfg, output_dir, step, item.label, (cfg.probe.samples, plan.dims), acc.update) as consume:
            cost = stream_estimates(task, item.estimator, batch, cfg.probe.samples, finite(consume, item.label, step),
                                    plan.chunk, cfg.probe.vectorize, f"probe step {step}")  # fmt: skip
        stats = summary_statistics(acc.summary(), ref.target, cost.evaluations, cost.seconds_per_estimate)
        rows.append({
            "step": step, "estimator": item.label, "knobs": item.knobs, "task": task.label(), "family": task.family,
            "temperature": item.estimator.temperature, **learned_columns(item.estimator), "samples": cfg.probe.samples,
            **stats, "warmup_seconds": cost.warmup_seconds, "reference": ref.kind,
            "reference_samples": cfg.probe.reference_samples if ref.kind == "estimated" else None,
        })  # fmt: skip
        log.info(
            "probe step %d, %s: bias_norm %.4g [%.4g, %.4g], variance %.4g [%.4g, %.4g], mse %.4g%s",
            step, item.label, stats["bias_norm"], stats["bias_norm_lo"], stats["bias_norm_hi"],
            stats["variance"], stats["variance_lo"], stats["variance_hi"], stats["mse"],
            f" (warning: {stats['warning']})" if stats["warning"] else "",
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


def train_step(
    step: int, task: Task, estimator: Estimator, optimizers: list[torch.optim.Optimizer],
    control: torch.optim.Optimizer | None = None,
) -> float:
    """One optimizer step on the estimator's surrogate (and, with ``control``, one step of the
    estimator's learned parameters down its ``control_loss``); returns the objective estimate."""
    batch = task.train_batch()
    logits = task.logits(batch)
    estimate = estimator(logits, task.bind(batch, logits), task.family)
    control_grads = None
    if control is not None and estimate.control_loss is not None:  # before backward frees the shared graph
        leaves = [p for group in control.param_groups for p in group["params"]]
        control_grads = torch.autograd.grad(estimate.control_loss, leaves, retain_graph=True, allow_unused=True)
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
    if control_grads is not None:
        for leaf, grad in zip(leaves, control_grads):
            leaf.grad = torch.zeros_like(leaf) if grad is None else grad
        if not_finite([leaf.grad for leaf in leaves]):
            raise Diverged(step, "the gradient of the estimator's control loss")
        control.step()
    return value


def control_optimizer(estimator: Estimator) -> torch.optim.Optimizer | None:
    """Adam over the estimator's learned parameters at its ``control_lr``; None if it learns nothing."""
    params = [p for p in estimator.parameters() if p.requires_grad]
    if estimator.control_lr is None or not params:
        return None
    return torch.optim.Adam(params, lr=estimator.control_lr)


def build_probed(cfg: DictConfig, estimator: Estimator, latent_shape: tuple[int, ...]) -> list[Probed]:
    """The trained estimator first, with its exact config, then probe.estimators (an entry
    with the trained estimator's label is that estimator, probed once)."""
    probed = [Probed(estimator_label(cfg.estimator), knobs_text(cfg.estimator), estimator)]
    for node, other in build_basket(cfg, latent_shape):
        label = estimator_label(node)
        if label not in {p.label for p in probed}:
            probed.append(Probed(label, knobs_text(node), other))
    return probed


GROWTH = 1e3  # an objective or metric whose magnitude grows this much over a run has most likely diverged


def growth_warning(rows: list[dict[str, Any]], names: Sequence[str]) -> str | None:
    """Why a run that ended without a NaN or inf in its objective or gradients still looks
    diverged, or None: a logged metric that is not finite at the end, or one (the training
    objective included) whose magnitude grew more than GROWTH times from its first logged value
    (1 at least: a metric starting near 0 may grow a little)."""
    for name in names:
        values = [row[name] for row in rows if isinstance(row.get(name), (int, float)) and not math.isnan(row[name])]
        if not values:
            continue
        first, last = values[0], values[-1]
        if not math.isfinite(last):
            return f"{name} is {last} at the end (first logged {first:.4g}): the run most likely diverged"
        if abs(last) > GROWTH * max(abs(first), 1.0):
            return f"{name} grew from {first:.4g} to {last:.4g} without becoming NaN or inf: the run most likely diverged"
    return None


def run(cfg: DictConfig, output_dir: Path, logger: Logger | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train and probe as cfg says, writing stats.csv and train.csv (and handing their rows to
    ``logger``, if given); returns the final metrics.

    Raises ConfigError for bad input, Diverged for NaN/inf, Interrupted for Ctrl-C or SIGTERM
    during the steps; ``run_job`` records each.
    """
    check_knobs(cfg)
    device = resolve_device(cfg.device.name)
    torch.manual_seed(cfg.seed)
    task = build_task(cfg).to(device)
    shape = tuple(task.latent_shape)
    estimator = build_estimator(cfg, latent_shape=shape)
    schedule = build_schedule(cfg, estimator)
    probed = build_probed(cfg, estimator, shape)
    reference = build_reference_estimator(cfg, shape)
    if cfg.get("budget"):  # every estimator spends the same evaluations of f per estimate
        probed = [Probed(p.label, p.knobs, Budgeted(p.estimator, cfg.budget)) for p in probed]
    estimator = probed[0].estimator
    for module in [p.estimator for p in probed] + [reference]:
        module.to(device)
    optimizers, control = task.optimizers(), control_optimizer(estimator)
    identity = {"config_id": config_id(cfg), "overrides": readable_overrides(overrides)}
    recorder, batch = Recorder(output_dir, logger or Logger(), identity), task.probe_batch()
    estimated = reference_kind(task, batch, cfg) is None
    spent = evaluations_per_estimate(task, batch, [p.estimator for p in probed] + ([reference] if estimated else []))
    plan = plan_probe(task, cfg, device, estimated, spent)  # before any work
    log.info(plan.describe())
    probes, start = set(probe_steps(cfg.steps, cfg.probe.every)), time.perf_counter()
    scheduled = [p.estimator for p in probed if p.estimator.temperature is not None and not p.estimator.learns_temperature]
    window: list[float] = []
    probe_seconds = 0.0
    desc = f"{task.label()}/{probed[0].label}"
    # off a terminal, a step line at the first logged step at or past each multiple of line_every
    # (progress_every of the steps; round() first: 0.1 * 30 is 3.0000000000000004, whose ceil is 4)
    line_every, next_line = max(1, math.ceil(round(cfg.progress_every * cfg.steps, 6))), 0
    try:
        with tqdm(total=cfg.steps, desc=desc, disable=None) as bar:
            for step in range(cfg.steps + 1):
                recorder.step = step
                if schedule is not None:  # the one writer of the temperature, before probe and step alike
                    for module in scheduled:
                        module.set_temperature(schedule(step))
                if step in probes:
                    probe_start = time.perf_counter()
                    for row in probe(step, task, probed, batch, cfg, reference, plan, output_dir):
                        recorder.add_stats(row | {"seed": cfg.seed, "device": str(device)})
                    probe_seconds += time.perf_counter() - probe_start
                if step % cfg.log_every == 0 or step == cfg.steps:
                    metrics = task_metrics(task)
                    recorder.add_train({
                        "step": step, "seed": cfg.seed, "objective": float(np.mean(window)) if window else float("nan"),
                        "temperature": estimator.temperature, **learned_columns(estimator), **metrics,
                        "train_seconds": time.perf_counter() - start - probe_seconds, "probe_seconds": probe_seconds,
                    })  # fmt: skip
                    if bar.disable and (step >= next_line or step == cfg.steps):  # no terminal: lines, not a bar
                        log.info("step %d/%d: %s", step, cfg.steps, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                        next_line = (step // line_every + 1) * line_every
                    window = []
                if step == cfg.steps:
                    break
                window.append(train_step(step, task, estimator, optimizers, control))
                bar.update(1)
    except (KeyboardInterrupt, SystemExit) as stop:  # SIGTERM arrives as SystemExit (discograd/cli.py)
        raise Interrupted(recorder.step, stop) from stop
    last = [row for row in recorder.stats if row["step"] == recorder.stats[-1]["step"]]
    warning = "; ".join(filter(None, [growth_warning(recorder.train, ["objective", *metrics]), estimator.objective_note()])) or None
    if warning:
        log.warning("run ended ok, but %s", warning)
    return {
        "warning": warning, "temperature": estimator.temperature, "metrics": metrics, "learned": estimator.learned_values(),
        "final_probe": {row["estimator"]: {k: row[k] for k in ("bias_norm", "variance", "mse")} for row in last},
    }  # fmt: skip


def _name(cfg: DictConfig, group: str) -> str | None:
    """The label of cfg.<group>'s class, else its _target_ (never raises)."""
    target = OmegaConf.select(cfg, f"{group}._target_")
    try:
        return get_class(target).label()
    except Exception:
        return target


def _identity(cfg: DictConfig, overrides: Sequence[str]) -> dict[str, Any]:
    """config_id and overrides, or (for a config too broken to resolve) config_id "" ."""
    try:
        return {"config_id": config_id(cfg), "overrides": readable_overrides(overrides)}
    except Exception:  # the run itself reports why; the summary must still be written
        return {"config_id": "", "overrides": readable_overrides(overrides)}


def run_job(cfg: DictConfig, output_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``run`` that never raises for a failing job: it writes summary.json with status
    ok | failed | diverged (and the error), finishes the job's logger with it (a W&B run that
    cannot start fails the job), and returns that summary. A job stopped by Ctrl-C or SIGTERM
    writes status interrupted (with ``interrupted_at``, the step it was in) the same way, then
    raises the KeyboardInterrupt or SystemExit again: the process stops, and resume=true reruns it."""
    output_dir = Path(output_dir)
    summary: dict[str, Any] = {
        "status": "ok", "error": None, "error_type": None, **_identity(cfg, overrides),
        "task": _name(cfg, "task"), "estimator": _name(cfg, "estimator"),
        "temperature": OmegaConf.select(cfg, "estimator.temperature"), "seed": cfg.get("seed"), "device": OmegaConf.select(cfg, "device.name"),
    }  # fmt: skip
    start, logger, stop = time.perf_counter(), Logger(), None
    try:
        logger = make_logger(cfg, output_dir)
        summary |= run(cfg, output_dir, logger, overrides)
    except Diverged as error:
        summary |= {"status": "diverged", "error": str(error), "error_type": "Diverged", "diverged_at": error.step}
        log.warning("run diverged: %s", error)
    except (Interrupted, KeyboardInterrupt, SystemExit) as error:
        interrupted = error if isinstance(error, Interrupted) else Interrupted(None, error)
        summary |= {"status": "interrupted", "error": str(interrupted), "error_type": "Interrupted", "interrupted_at": interrupted.step}
        log.warning("run %s; resume=true reruns it", interrupted)
        stop = interrupted.stop
    except Exception as error:  # a failing job is recorded and the sweep goes on
        summary |= {"status": "failed", "error": str(error), "error_type": type(error).__name__}
        if not isinstance(error, ConfigError):
            log.error("run failed:\n%s", traceback.format_exc())
    summary["seconds"] = time.perf_counter() - start
    write_json(output_dir / "summary.json", summary_fields(summary))
    logger.finish(summary)
    if stop is not None:
        raise stop
    return summary
