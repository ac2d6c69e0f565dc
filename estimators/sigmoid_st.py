r"""Straight-through with the sigmoid (bernoulli) or softmax (categorical) backward.

Forward the hard sample z ~ p(z | logits); backward the Jacobian of the mean at temperature tau:

.. math:: \tilde z = z + \sigma(\ell / \tau) - \mathrm{sg}(\sigma(\ell / \tau))

with sigma the sigmoid or the softmax over K. tau < 1 is the slope annealing of [2].
For bernoulli, D = 1, f(b) = (b - t)^2 and tau = 1 its mean is sigma'(l) 2 (p - t), not the
true gradient sigma'(l) (1 - 2 t). Biased. Cost: 1 evaluation of f.

References:
    [1] Y. Bengio, N. Leonard, A. Courville (2013). Estimating or propagating gradients
        through stochastic neurons for conditional computation.
    [2] J. Chung, S. Ahn, Y. Bengio (2016). Hierarchical multiscale recurrent neural networks.
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import check_temperature
from primitives.families import soft
from estimators.registry import register
from estimators.st import StraightThrough


@register("sigmoid_st")
class SigmoidStraightThrough(StraightThrough):
    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def proxy(self, logits: Tensor, family: str) -> Tensor:
        return soft(logits, family, self.temperature)
