r"""ReinMax: straight-through with a second-order (Heun's method) backward.

Forward the hard sample D ~ Categorical(softmax(l)) (temperature 1); backward

.. math::
    \pi_0 = \mathrm{softmax}(\ell), \qquad
    \pi_1 = \tfrac{1}{2}\big(\mathrm{softmax}(\ell / \tau) + D\big), \qquad
    J(\pi) = \mathrm{diag}(\pi) - \pi \pi^\top,

    \hat g = \Big(2 J(\pi_1) - \tfrac{1}{2} J(\pi_0)\Big) \frac{\partial f}{\partial D}\Big|_D

i.e. the paper's Algorithm 2: pi_1 <- softmax(sg(log pi_1 - l) + l), pi_2 = 2 pi_1 - pi_0 / 2,
D~ = pi_2 - sg(pi_2) + D. Straight-through is the forward Euler step between D and pi_0
(first-order accurate); ReinMax the Heun step (second-order) [1]. Checked against the
authors' ``ReinMaxCore.backward`` (github.com/microsoft/ReinMax, reinmax/reinmax.py): the same
two Jacobians, J(pi_1) (2 g) + J(pi_0) (-g / 2). Written here with a stand-in whose
Jacobian is J(pi) exactly, :math:`\pi \odot (\ell - \langle \pi, \ell \rangle)` with pi
held fixed, so no log of a probability is taken. The authors' function refuses tau < 1
("ReinMax prefers tau >= 1"); here any tau > 0 runs, so one temperature sweep covers it.

Biased. Cost: 1 evaluation of f. Families: categorical only (as in [1]).

References:
    [1] L. Liu, C. Dong, X. Liu, B. Yu, J. Gao (2023). Bridging discrete and backpropagation:
        straight-through and beyond.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.base import check_temperature
from estimators.local import Local
from primitives.families import sample, soft
from estimators.registry import register
from primitives.sequences import SEQUENCE


def softmax_jacobian_proxy(logits: Tensor, probs: Tensor) -> Tensor:
    r"""A function of the logits whose Jacobian is :math:`\mathrm{diag}(\pi) - \pi\pi^\top` at
    the given (detached) probabilities pi over the last axis."""
    probs = probs.detach()
    return probs * (logits - (probs * logits).sum(-1, keepdim=True))


@register("reinmax")
class ReinMax(Local):
    families = frozenset({"categorical", SEQUENCE})

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def sample(self, logits: Tensor, family: str) -> Tensor:
        z = sample(logits, family, 1)  # [1, *B, D, K] one-hot, from softmax(logits)
        pi0 = torch.softmax(logits.detach(), -1)  # [*B, D, K]
        pi1 = 0.5 * (soft(logits.detach(), family, self.temperature) + z)  # [1, *B, D, K]
        proxy = 2.0 * softmax_jacobian_proxy(logits, pi1) - 0.5 * softmax_jacobian_proxy(logits, pi0)
        return z + (proxy - proxy.detach())  # exactly z forward
