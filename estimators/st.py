r"""Straight-through (ST) with the identity backward.

Forward the hard sample z ~ p(z | logits); backward treat dz/dlogits as the identity:

.. math:: \tilde z = z + \ell - \mathrm{sg}(\ell), \qquad
          \hat g = \nabla_\phi f(\tilde z; \phi) = \frac{\partial f}{\partial z}\Big|_{z} \frac{\partial \ell}{\partial \phi}

Biased. Cost: 1 evaluation of f. Families: bernoulli and categorical (per class, one-hot).

References:
    [1] Y. Bengio, N. Leonard, A. Courville (2013). Estimating or propagating gradients
        through stochastic neurons for conditional computation.
"""
from __future__ import annotations

from torch import Tensor

from estimators.local import Local
from primitives.families import sample
from estimators.registry import register


@register("st")
class StraightThrough(Local):
    def proxy(self, logits: Tensor, family: str) -> Tensor:
        """The differentiable stand-in whose Jacobian replaces dz/dlogits: the logits themselves."""
        return logits

    def sample(self, logits: Tensor, family: str) -> Tensor:
        z = sample(logits, family, 1)  # [1, *B, D(, K)]
        proxy = self.proxy(logits, family)
        return z + (proxy - proxy.detach())  # exactly z forward
