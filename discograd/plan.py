"""The probe's memory, estimated before any work, and the chunk that fits in it.

A probe holds, whatever N (analysis/moments.py): per accumulator a few float64 vectors of P
(mean, squared deviations, the reference), its first differences (direction_rows of them)
and, for an estimated reference, a bank of the reference's differences; per chunk, the chunk
of estimates in the task's dtype, its float64 working copies and the task's activations per
draw (``Task.draw_bytes``). The chunk is the
largest that keeps the peak within probe.max_memory (default: half the memory free on the
device when the run starts), counting the activations of every evaluation of f one estimate
spends (the most any probed estimator spends: indecater's D K per sample hold D K times a
single draw's), at most probe.chunk, the task's own ``probe_chunk`` and
WORKING_SET coordinates (but MIN_CHUNK draws at least: fewer would starve the within-chunk
statistics; a probe that cannot hold them is refused).
docs/scale.md (benchmarks/probe_memory.py) compares this estimate with the measured peak.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from analysis.moments import direction_rows, gram_rows
from discograd.errors import ConfigError
from discograd.probe import dims
from estimators import Estimator
from tasks import Task

FLOAT64 = 8
VECTORS = 6  # float64 vectors of P per accumulator: mean, squared deviations (all, within blocks), fourth powers, the reference, a temporary
WORK_COPIES = 6  # float64 copies of a chunk alive at once in Moments.update: x, x - mean, its square, differences, two products
GIB = 2**30
MIN_CHUNK = 8  # the fewest draws per chunk: the within-chunk statistics (differences, centering) need a few
WORKING_SET = 2**24  # coordinates per chunk beyond which a larger chunk only costs memory (the probe is bandwidth-bound)


@dataclass(frozen=True)
class ProbePlan:
    dims: int  # P
    chunk: int  # draws per chunk
    bank_rows: int  # reference differences kept for the cross term
    direction_rows: int  # each probed estimator's own differences kept, for its top noise direction
    peak_bytes: int  # the estimate of the probe's peak (excluding the model and the data)
    limit_bytes: int

    def describe(self) -> str:
        return (
            f"probe plan: P={self.dims}, chunk={self.chunk}, estimated peak {self.peak_bytes / GIB:.3g} GiB "
            f"of {self.limit_bytes / GIB:.3g} GiB allowed (probe.max_memory)"
        )


def free_bytes(device: torch.device) -> int:
    """Memory free on ``device`` now: cuda's free memory, else the kernel's MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def fixed_bytes(p: int, estimated: bool, bank_rows: int, own_rows: int) -> int:
    """The accumulators: one per probed estimator at a time (with its kept differences), plus
    the reference's when estimated (with its bank, and the summary's copy of it)."""
    return FLOAT64 * p * (VECTORS * (2 if estimated else 1) + own_rows + (2 * bank_rows if estimated else 0))


def per_draw_bytes(p: int, itemsize: int, activation_bytes: int) -> int:
    """One draw in a chunk: its estimate (and torch.cat's copy), the float64 copies, its activations."""
    return p * (2 * itemsize + FLOAT64 * WORK_COPIES) + activation_bytes


def evaluations_per_estimate(task: Task, batch: object, estimators: list[Estimator]) -> int:
    """The most evaluations of f one estimate of any of ``estimators`` spends on ``batch``,
    counted by one estimate of each (eval mode, so nothing learns; the random streams restored,
    so the run draws what it would have without the count)."""
    counts = []
    devices = [p.device for p in task.estimand().values() if p.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices):
        logits = task.logits(batch)
        for estimator in estimators:
            was_training = estimator.training
            estimator.eval()
            try:
                counts.append(estimator(logits, task.bind(batch, logits), task.family).evaluations)
            finally:
                estimator.train(was_training)
    return max(counts, default=1)


def plan_probe(task: Task, cfg: DictConfig, device: torch.device, estimated: bool, evaluations: int = 1) -> ProbePlan:
    """The chunk and peak of this run's probes, each draw holding ``evaluations`` evaluations of
    f's activations; a ConfigError naming the knobs when it cannot fit."""
    p = dims(task)
    itemsize = next(iter(task.estimand().values())).element_size()
    limit_gib = cfg.probe.get("max_memory")
    limit = int(limit_gib * GIB) if limit_gib is not None else free_bytes(device) // 2
    bank, own = (gram_rows(p) if estimated else 0), direction_rows(p)
    fixed, per_draw = fixed_bytes(p, estimated, bank, own), per_draw_bytes(p, itemsize, evaluations * task.draw_bytes)
    fits = (limit - fixed) // per_draw
    fewest = min(MIN_CHUNK, cfg.probe.samples)
    chunk = int(min(cfg.probe.chunk, task.probe_chunk, cfg.probe.samples, max(fewest, WORKING_SET // p), max(fits, 0)))
    if chunk < fewest:
        need = (fixed + fewest * per_draw) / GIB
        raise ConfigError(
            f"a probe of P={p} coordinates needs at least {need:.3g} GiB ({fixed / GIB:.3g} GiB of accumulators "
            f"+ {per_draw / GIB:.3g} GiB per draw, {fewest} draws per chunk at least) but {limit / GIB:.3g} GiB is allowed; "
            f"change probe.max_memory (GiB), device, probe.reference=exact where the task has one, or the task's size"
        )
    return ProbePlan(p, chunk, bank, own, fixed + chunk * per_draw, limit)

