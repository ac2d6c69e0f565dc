r"""ARM, the augment-REINFORCE-merge estimator: an antithetic pair of Bernoulli samples.

One uniform u per coordinate gives two samples of p(z | logits), both exact draws:

.. math::
    b = 1[u < \sigma(\ell)], \qquad \tilde b = 1[u > \sigma(-\ell)] = 1[1 - u < \sigma(\ell)],
    \qquad u \sim U(0, 1)^D

    \hat g_\ell = \big(f(\tilde b) - f(b)\big) \big(u - \tfrac{1}{2}\big)
    + \tfrac{1}{2} \nabla_\ell \big(f(b; \phi) + f(\tilde b; \phi)\big)

per coordinate d of the logits (the second term is the pathwise part, for f that depends on
phi itself; both samples are draws of p, so it is unbiased too). Unbiased. ``value`` is the
mean of f over the pair. Cost: 2 evaluations of f. Families: bernoulli only.

References:
    [1] M. Yin, M. Zhou (2019). ARM: Augment-REINFORCE-merge gradient for stochastic binary
        networks.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.base import Estimate, Estimator, Objective
from estimators.registry import register


def antithetic_pair(logits: Tensor) -> tuple[Tensor, Tensor]:
    """u ~ U(0, 1) [*B, D] and the pair z [2, *B, D]: z[0] = b = 1[u < sigma(l)],
    z[1] = b~ = 1[1 - u < sigma(l)] (no gradient)."""
    logits = logits.detach()
    u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device)
    p = torch.sigmoid(logits)
    return u, torch.stack([u < p, 1 - u < p]).to(logits.dtype)  # [*B, D], [2, *B, D]


@register("arm")
class ARM(Estimator):
    families = frozenset({"bernoulli"})
    unbiased = True

    def learning_signal(self, u: Tensor, z: Tensor, values: Tensor, logits: Tensor) -> Tensor:
        """The estimate of d E[f] / d logits [*B, D] from the pair z [2, *B, D] and f(z) [2, *B]."""
        return (values[1] - values[0]).unsqueeze(-1) * (u - 0.5)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        u, z = antithetic_pair(logits)
        values = self.evaluate(f, z, logits, family)  # [2, *B]
        signal = self.learning_signal(u, z, values.detach(), logits.detach())  # [*B, D]
        surrogate = (values.mean(0) + (signal * logits).sum(-1)).mean()
        return Estimate(surrogate, values.detach().mean(), 2)
