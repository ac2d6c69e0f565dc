r"""The task contract.

A task supplies the parameters phi, the logits of the discrete latents and the objective f
of :math:`L(\phi) = \mathrm{mean}_b\, \mathbb{E}_{z \sim p(z \mid \mathrm{logits}_b)}[f(z; \phi)_b]`:

- ``family`` ("bernoulli", "categorical" or "sequence") and ``latent_shape`` ((D,), (D, K)
  or (L, K));
- ``relaxable`` (default True): f is defined and differentiable on relaxed samples, as the
  estimators that differentiate f in z (``Estimator.pathwise``) need; False refuses them;
- ``parameters``: an nn.Module holding every trained parameter;
- ``estimand()``: the named parameters whose gradient the probe studies (names as in
  ``parameters.named_parameters()``);
- ``logits(batch)`` -> [*B, D(, K)] (a sequence task: its policy, primitives/sequences.py) and ``objective(z, batch)``: samples [S, *B, D(, K)]
  -> values [S, *B];
- ``exact_gradient(batch)``: the gradient of L for the estimand, or None where no
  enumeration or closed form exists;
- ``evaluate()``: the metrics a paper would report;
- ``optimizers()``, ``train_batch()`` and ``probe_batch()`` (the fixed batch the probe uses).

Construction must be cheap (check the knobs, build the modules; load data lazily): the CLI
constructs every job's task before the first job starts, to reject bad knobs up front.
"""
from __future__ import annotations

import math

from abc import ABC, abstractmethod
from functools import partial
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from primitives.registry import Named


class Task(Named, ABC):
    family: str
    latent_shape: tuple[int, ...]
    relaxable: bool = True  # f defined and differentiable on relaxed samples (pathwise estimators need it)
    parameters: nn.Module
    # the most probe draws one vmapped chunk may hold on this task (the probe takes the smaller
    # of this and probe.chunk): tasks with large activations per draw lower it to bound memory
    probe_chunk: int = 2**30

    @property
    def draw_bytes(self) -> int:
        """Bytes one probe draw holds besides its estimate, for the probe's memory plan
        (discograd/plan.py): by default 8 latent-sized float32 temporaries (the sample, its
        log-probability terms, f's terms and their gradients); tasks with a network override it."""
        return 8 * math.prod(self.latent_shape) * 4

    def estimand(self) -> dict[str, nn.Parameter]:
        """The parameters whose gradient is studied; by default all of them."""
        return dict(self.parameters.named_parameters())

    @abstractmethod
    def logits(self, batch: Any) -> Tensor: ...

    @abstractmethod
    def objective(self, z: Tensor, batch: Any) -> Tensor: ...

    def bind(self, batch: Any, logits: Tensor) -> Callable[[Tensor], Tensor]:
        """f for one batch, given the logits the estimator was handed: what the run loop and
        the probe pass to estimators. A task whose f needs the logits (a VAE's log q(z|x))
        overrides this to reuse them instead of running its encoder a second time."""
        return partial(self.objective, batch=batch)

    def exact_gradient(self, batch: Any) -> dict[str, Tensor] | None:
        return None

    @abstractmethod
    def evaluate(self) -> dict[str, float]: ...

    @abstractmethod
    def optimizers(self) -> list[torch.optim.Optimizer]: ...

    def train_batch(self) -> Any:
        return None

    def probe_batch(self) -> Any:
        return None

    def to(self, device: torch.device) -> "Task":
        self.parameters.to(device)
        return self


FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """torch.optim.Adam at ``lr``, with PyTorch's fused kernel where it has one (cpu, cuda):
    the same update rule as the default per-tensor loop (equal up to float rounding, not bit
    for bit), in one pass over all tensors. On the
    nonlinear binary VAE (12 tensors, CPU) a step takes 0.44 ms instead of 2.1 ms, a quarter
    of the training step (docs/performance-vae.md)."""
    params = list(params)
    fused = all(p.device.type in FUSED_ADAM_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=True if fused else None)


class Logits(nn.Module):
    """Free logits of a latent shape: the parameters (and estimand) of the toy and MRF tasks."""

    def __init__(self, init: Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(init)


def initial_logits(init: float | Sequence[Any], shape: tuple[int, ...], task: str) -> Tensor:
    """``init`` (a number, or a list that broadcasts) as float32 logits of ``shape``."""
    value = torch.as_tensor(init, dtype=torch.float32)
    try:
        return value.expand(shape).clone()
    except RuntimeError:
        raise ValueError(
            f"{task} init_logit of shape {tuple(value.shape)} does not broadcast to the latent shape {shape}"
        ) from None
