r"""Mean-field variational inference in a grid MRF (Ising for K = 2, Potts for K > 2).

The target is p(x) = exp(-E(x)) / Z on an H x W grid (tasks/grid.py); the variational
family is q(x) = prod_i Categorical(x_i; softmax(logits_i)) (or Bernoulli(sigmoid(logit_i))
with ``family=bernoulli`` and K = 2, site x_i = (1 - b_i, b_i)). The logits are the
parameters and the estimand. Per sample,

.. math::
    f(x) = E(x) + \log q(x) = -\sum_i h_i^\top x_i - \sum_{(i,j)} x_i^\top J_{ij} x_j
           + \sum_i x_i^\top \log \mathrm{softmax}(\mathrm{logits}_i)

written on one-hot sites, so it is defined on relaxed samples too, and
E_q[f] = KL(q || p) - log Z.

Exact gradient at any grid size: f is multilinear in the sites (no site meets itself, every
edge joins two different independent sites), so E_q[f] = f(mu) at the marginals
mu_i = E_q[x_i] (the logits inside log q held as parameters, not sampled); autograd through
f(mu) gives the exact gradient. evaluate() reports E_q[f], and, from the exact log Z and
marginals of p (enumeration or transfer matrix, tasks/grid.py), KL(q || p), log Z and the
mean absolute error of q's marginals against p's.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from tasks.base import Logits, Task, adam, initial_logits
from tasks.grid import Grid
from tasks.registry import register

FAMILIES = ("categorical", "bernoulli")


@register("mrf")
class MRF(Task):
    def __init__(
        self,
        height: int = 3,
        width: int = 3,
        classes: int = 2,
        family: str = "categorical",
        field_scale: float = 0.5,
        coupling_scale: float = 1.0,
        coupling: str = "ferromagnetic",
        model_seed: int = 0,
        exact_log_z: bool = True,
        init_logit: float | Sequence[Any] = 0.0,
        lr: float = 0.01,
    ) -> None:
        for knob, value in (("height", height), ("width", width)):
            if int(value) != value or value < 1:
                raise ValueError(f"mrf {knob} must be an integer >= 1 (a grid has at least one site), got {value!r}")
        if int(classes) != classes or classes < 2:
            raise ValueError(f"mrf classes must be an integer >= 2, got {classes!r}")
        if family not in FAMILIES:
            raise ValueError(f"mrf family must be one of {', '.join(FAMILIES)}, got {family!r}")
        if family == "bernoulli" and classes != 2:
            raise ValueError(f"mrf family=bernoulli needs classes=2, got classes={classes}")
        if field_scale < 0 or coupling_scale < 0:
            raise ValueError(f"mrf field_scale and coupling_scale must be >= 0, got {field_scale!r}, {coupling_scale!r}")
        if not lr > 0:
            raise ValueError(f"mrf lr must be > 0, got {lr!r}")
        self.grid = Grid.potts(height, width, classes, field_scale, coupling_scale, coupling, model_seed)
        if exact_log_z and not self.grid.exact_feasible():
            raise ValueError(f"mrf: {self.grid.limits()}; set task.exact_log_z=false to train without KL(q || p)")
        self.family = family
        self.exact_log_z = exact_log_z
        sites = height * width
        self.latent_shape = (sites,) if family == "bernoulli" else (sites, classes)
        self.parameters = Logits(initial_logits(init_logit, self.latent_shape, "mrf"))
        self.lr = float(lr)
        self._exact: tuple[float, Tensor] | None = None  # (log Z, marginals of p), computed once

    def logits(self, batch: Any = None) -> Tensor:
        return self.parameters.logits  # [H W] or [H W, K]

    def site_log_q(self) -> Tensor:
        """[H W, K]: log q of each state of each site (bernoulli: states (0, 1))."""
        logits = self.parameters.logits
        if self.family == "bernoulli":
            return torch.stack([F.logsigmoid(-logits), F.logsigmoid(logits)], -1)
        return F.log_softmax(logits, -1)

    def one_hot(self, z: Tensor) -> Tensor:
        """Samples [*S, H W(, K)] as one-hot (or relaxed) sites [*S, H, W, K]."""
        if self.family == "bernoulli":
            z = torch.stack([1 - z, z], -1)
        height, width, classes = self.grid.shape
        return z.reshape(z.shape[:-2] + (height, width, classes))

    def objective(self, z: Tensor, batch: Any = None) -> Tensor:
        x = self.one_hot(z)
        log_q = (x * self.site_log_q().reshape(x.shape[-3:])).sum((-3, -2, -1))
        return self.grid.energy(x) + log_q  # [S]

    def marginals(self) -> Tensor:
        """[H W, K]: q's marginals mu_i = E_q[x_i]."""
        return self.site_log_q().exp()

    def expected_objective(self) -> Tensor:
        """E_q[f] = f(mu), exact because f is multilinear in the sites (module docstring)."""
        mu = self.marginals()
        mu = mu[:, 1] if self.family == "bernoulli" else mu
        return self.objective(mu.unsqueeze(0))[0]

    def exact_gradient(self, batch: Any = None) -> dict[str, Tensor]:
        (grad,) = torch.autograd.grad(self.expected_objective(), [self.parameters.logits])
        return {"logits": grad}

    def exact_p(self) -> tuple[float, Tensor]:
        """(log Z, p's marginals [H W, K]), computed on first use and kept (the model is fixed)."""
        if self._exact is None:
            log_z, marginals = self.grid.exact()
            self._exact = log_z, marginals.reshape(-1, marginals.shape[-1])
        return self._exact

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            objective = self.expected_objective().item()
            if not self.exact_log_z:
                return {"exact_objective": objective}
            log_z, p_marginals = self.exact_p()
            error = (self.marginals().double() - p_marginals.to(self.marginals().device)).abs().mean().item()
        return {"exact_objective": objective, "kl": objective + log_z, "log_z": log_z, "marginal_mae": error}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters.parameters(), self.lr)]

    def to(self, device: torch.device) -> "MRF":
        super().to(device)
        self.grid = self.grid.to(device)
        return self
