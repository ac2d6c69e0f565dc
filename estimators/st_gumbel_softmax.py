r"""Straight-through Gumbel-softmax (ST-GS): hard forward, Gumbel-softmax backward.

.. math::
    y = \text{relaxed sample at } \tau, \quad z = \mathrm{hard}(y), \quad
    \tilde z = z + y - \mathrm{sg}(y), \quad \hat g = \nabla_\phi f(\tilde z; \phi)

hard(y) is the argmax over K (categorical) or the threshold y > 1/2 (bernoulli), so z is an
exact sample of p(z | logits) and f only ever sees discrete values. Biased.
Cost: 1 evaluation of f.

References:
    [1] E. Jang, S. Gu, B. Poole (2017). Categorical reparameterization with Gumbel-softmax.
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import Estimate, Estimator, Objective, check_temperature
from estimators.families import harden, relaxed_sample
from estimators.registry import register


@register("st_gumbel_softmax")
class StraightThroughGumbelSoftmax(Estimator):
    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        y = relaxed_sample(logits, family, self.temperature, 1)  # [1, *B, D(, K)]
        z = harden(y, family) + (y - y.detach())  # exactly the hard values forward
        values = self.evaluate(f, z, logits, family)  # [1, *B]
        return Estimate(values.mean(), values.detach().mean(), 1)
