r"""Gumbel-softmax / Concrete relaxation: f evaluated on a relaxed sample.

.. math::
    y = \mathrm{softmax}\big((\ell + g) / \tau\big), \; g_k \sim \mathrm{Gumbel}(0, 1)
    \quad\text{(categorical)}, \qquad
    y = \sigma\big((\ell + \log u - \log(1 - u)) / \tau\big), \; u \sim U(0, 1)
    \quad\text{(bernoulli, binary Concrete)}

    \hat g = \nabla_\phi f(y; \phi)

An unbiased estimate of the gradient of the relaxed objective E[f(y)], a biased one of the
discrete objective; the bias shrinks and the variance grows as tau falls. ``value`` is f at
the relaxed sample. Cost: 1 evaluation of f.

References:
    [1] E. Jang, S. Gu, B. Poole (2017). Categorical reparameterization with Gumbel-softmax.
    [2] C. Maddison, A. Mnih, Y. W. Teh (2017). The Concrete distribution: a continuous
        relaxation of discrete random variables.
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import check_temperature
from estimators.local import Local
from primitives.families import relaxed_sample
from estimators.registry import register


@register("gumbel_softmax")
class GumbelSoftmax(Local):
    relaxed_value = True
    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def sample(self, logits: Tensor, family: str) -> Tensor:
        """What f is evaluated on: one relaxed sample [1, *B, D(, K)]."""
        return relaxed_sample(logits, family, self.temperature, 1)
