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

from primitives.families import harden
from estimators.gumbel_softmax import GumbelSoftmax
from estimators.registry import register


@register("st_gumbel_softmax")
class StraightThroughGumbelSoftmax(GumbelSoftmax):
    """gumbel_softmax with the relaxed sample hardened in the forward pass."""

    relaxed_value = False  # f sees the hard sample only

    def sample(self, logits: Tensor, family: str) -> Tensor:
        y = super().sample(logits, family)  # [1, *B, D(, K)]
        return harden(y, family) + (y - y.detach())  # exactly the hard values forward
