r"""The toy quadratic of REBAR and RELAX, for both families, with its exact gradient.

z holds D independent variables with logits theta (the parameters, and the estimand):

.. math::
    f(z) = \frac{1}{D} \sum_d \lVert z_d - t \rVert^2, \qquad
    \mathbb{E}[f] = \frac{1}{D} \sum_d \Big(\lVert t \rVert^2 + \sum_k p_{dk} (1 - 2 t_k)\Big)

using z_k^2 = z_k for binary and one-hot z. bernoulli: z_d in {0, 1}, p_d = sigmoid(theta_d),
t a scalar (default 0.45 as in [1, 2]). categorical: z_d one-hot over K, p_d = softmax(theta_d),
t a probability vector over K, or a scalar t standing for (t, (1-t)/(K-1), ..., (1-t)/(K-1)).
The exact gradient is autograd through the closed form.

References:
    [1] G. Tucker et al. (2017). REBAR: low-variance, unbiased gradient estimates for discrete
        latent variable models.
    [2] W. Grathwohl et al. (2018). Backpropagation through the void: optimizing control
        variates for black-box gradient estimation.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from tasks.base import Logits, Task, adam, initial_logits
from tasks.registry import register

FAMILIES = ("bernoulli", "categorical")


def _target_vector(target: float | Sequence[float], classes: int) -> Tensor:
    if isinstance(target, (int, float)):
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"toy_quadratic target must be in [0, 1], got {target!r}")
        rest = (1.0 - target) / (classes - 1)
        return torch.tensor([float(target)] + [rest] * (classes - 1))
    vector = torch.tensor([float(v) for v in target])
    if vector.shape != (classes,) or (vector < 0).any() or abs(vector.sum().item() - 1.0) > 1e-6:
        raise ValueError(
            f"toy_quadratic categorical target must be a probability vector of {classes} entries, got {list(target)}"
        )
    return vector


@register("toy_quadratic")
class ToyQuadratic(Task):
    def __init__(
        self,
        family: str = "bernoulli",
        dims: int = 1,
        classes: int = 2,
        target: float | Sequence[float] = 0.45,
        init_logit: float | Sequence[Any] = 0.0,
        lr: float = 0.01,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"toy_quadratic family must be one of {', '.join(FAMILIES)}, got {family!r}")
        if int(dims) != dims or dims < 1:
            raise ValueError(f"toy_quadratic dims must be an integer >= 1, got {dims!r}")
        if family == "categorical" and (int(classes) != classes or classes < 2):
            raise ValueError(f"toy_quadratic classes must be an integer >= 2, got {classes!r}")
        if not lr > 0:
            raise ValueError(f"toy_quadratic lr must be > 0, got {lr!r}")
        self.family = family
        self.latent_shape = (dims,) if family == "bernoulli" else (dims, classes)
        if family == "bernoulli":
            if not isinstance(target, (int, float)):
                raise ValueError(f"toy_quadratic bernoulli target must be a number, got {target!r}")
            self.target = torch.tensor(float(target))
        else:
            self.target = _target_vector(target, classes)
        self.parameters = Logits(initial_logits(init_logit, self.latent_shape, "toy_quadratic"))
        self.lr = float(lr)

    def logits(self, batch: Any = None) -> Tensor:
        return self.parameters.logits  # [D] or [D, K]

    def objective(self, z: Tensor, batch: Any = None) -> Tensor:
        sq = (z - self.target) ** 2  # [S, D] or [S, D, K]
        if self.family == "categorical":
            sq = sq.sum(-1)
        return sq.mean(-1)  # [S]

    def expected_objective(self) -> Tensor:
        """The closed form of E[f], differentiable in the logits."""
        theta, t = self.parameters.logits, self.target
        if self.family == "bernoulli":
            return (t**2 + torch.sigmoid(theta) * (1 - 2 * t)).mean()
        p = torch.softmax(theta, dim=-1)
        return ((t**2).sum() + (p * (1 - 2 * t)).sum(-1)).mean()

    def exact_gradient(self, batch: Any = None) -> dict[str, Tensor]:
        (grad,) = torch.autograd.grad(self.expected_objective(), [self.parameters.logits])
        return {"logits": grad}

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            return {"exact_objective": self.expected_objective().item()}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters.parameters(), self.lr)]

    def to(self, device: torch.device) -> "ToyQuadratic":
        super().to(device)
        self.target = self.target.to(device)
        return self
