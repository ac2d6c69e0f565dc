r"""The gradient probe: N independent gradient estimates of the task's estimand on a fixed batch.

The vectorized path maps ``torch.func.grad`` of the estimator's surrogate over a chunk of
draws with ``torch.func.vmap(..., randomness="different")``, so every draw has its own noise;
``functional_call`` swaps in the estimand's parameters. Estimators whose class says
``vmappable = False`` (or ``vectorize=False``) go through a plain loop of autograd calls.
Both paths draw from the same distribution (tests/test_probe.py checks it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

from estimators import Estimator
from tasks import Task


@dataclass(frozen=True)
class Draws:
    estimates: np.ndarray  # [N, P], the estimand's gradients flattened in estimand() order
    evaluations: int  # evaluations of f per estimate
    seconds_per_estimate: float  # warm: the draws after the untimed first part
    warmup_seconds: float  # wall time of that first part (torch.func's tracing, caches)


class Surrogate(nn.Module):
    """task + estimator as one module whose forward is the estimator's surrogate, so that
    functional_call can substitute the estimand (named ``task.<name>``)."""

    def __init__(self, task: Task, estimator: Estimator) -> None:
        super().__init__()
        self.task = task.parameters
        self.estimator = estimator
        self._task = task
        self.evaluations = 0

    def forward(self, batch: Any) -> Tensor:
        task = self._task
        logits = task.logits(batch)
        estimate = self.estimator(logits, task.bind(batch, logits), task.family)
        self.evaluations = estimate.evaluations  # a Python int cannot leave vmap as an output
        return estimate.surrogate


def flatten(grads: dict[str, Tensor], names: list[str]) -> np.ndarray:
    """[P]: the gradients of ``names`` flattened and concatenated, in that order."""
    return torch.cat([grads[n].reshape(-1) for n in names]).detach().cpu().numpy()


def _vectorized(module: Surrogate, params: dict[str, Tensor], batch: Any) -> Callable[[Tensor, int, tqdm], None]:
    """fill(out, chunk, bar): ``out`` [n, P] filled chunk by chunk by one vmapped function (written in
    place: no per-chunk copies to concatenate)."""
    draw = vmap(grad(lambda p, _: functional_call(module, p, (batch,))), in_dims=(None, 0), randomness="different")

    def fill(out: Tensor, chunk: int, bar: tqdm) -> None:
        with torch.no_grad():  # no outer graph: torch.func.grad differentiates regardless
            for start in range(0, out.shape[0], chunk):
                size = min(chunk, out.shape[0] - start)
                grads, column = draw(params, torch.arange(size)), 0
                for key, p in params.items():
                    out[start : start + size, column : column + p.numel()] = grads[key].reshape(size, -1)
                    column += p.numel()
                bar.update(size)

    return fill


def _loop(module: Surrogate, params: dict[str, Tensor], batch: Any) -> Callable[[Tensor, int, tqdm], None]:
    """fill(out, chunk, bar): ``out`` [n, P] filled one autograd call per row."""
    originals = dict(module.named_parameters())
    leaves = [originals[k] for k in params]

    def fill(out: Tensor, chunk: int, bar: tqdm) -> None:
        for row in range(out.shape[0]):
            grads = torch.autograd.grad(module(batch), leaves, allow_unused=True)
            out[row] = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(leaves, grads)])
            bar.update(1)

    return fill


def warmup_size(samples: int, chunk: int, vectorized: bool) -> int:
    """Draws of the untimed first part: one loop draw, or a first vmapped chunk of about a
    tenth of the draws (it pays torch.func's one-time tracing; at least 1, leaving >= 1)."""
    return 1 if not vectorized else max(1, min(chunk, samples // 10))


def draw_estimates(
    task: Task, estimator: Estimator, batch: Any, samples: int, chunk: int = 1000, vectorize: bool = True, desc: str = "probe"
) -> Draws:
    """``samples`` independent estimates of the gradient of the task's estimand.

    The estimator runs in eval mode (no baseline or other state is updated); the task's
    parameters are not changed. The first ``warmup_size`` draws are timed apart
    (``warmup_seconds``), so ``seconds_per_estimate`` is the warm rate.
    """
    module = Surrogate(task, estimator)
    params = {f"task.{name}": p.detach() for name, p in task.estimand().items()}
    chunk = min(chunk, task.probe_chunk)
    was_training = estimator.training
    estimator.eval()
    use_vmap = vectorize and estimator.vmappable
    first = next(iter(params.values()))
    out = torch.empty(samples, sum(p.numel() for p in params.values()), dtype=first.dtype, device=first.device)
    warm = min(warmup_size(samples, chunk, use_vmap), samples - 1) if samples > 1 else samples
    fill = (_vectorized if use_vmap else _loop)(module, params, batch)
    try:
        with tqdm(total=samples, desc=desc, leave=False, disable=None) as bar:
            start = time.perf_counter()
            fill(out[:warm], chunk, bar)
            warmed = time.perf_counter()
            fill(out[warm:], chunk, bar)
            stop = time.perf_counter()
    finally:
        estimator.train(was_training)
    rate = (stop - warmed) / (samples - warm) if samples > warm else (warmed - start) / samples
    return Draws(out.cpu().numpy(), module.evaluations, rate, warmed - start)
