r"""Straight-through estimators whose backward stand-in depends on the hard sample (GST, ZGR).

Forward the hard sample z ~ p(z | logits); backward the Jacobian of a stand-in
:math:`\psi(\ell, z)` built from the logits and z itself:

.. math:: \tilde z = z + \psi(\ell, z) - \mathrm{sg}(\psi(\ell, z)), \qquad
          \hat g = \frac{\partial f}{\partial z}\Big|_{z}
                   \frac{\partial \psi(\ell, z)}{\partial \phi}

(estimators/st.py is the case psi = logits, which does not look at z). A subclass gives
``proxy(logits, z, family)``. Biased. Cost: 1 evaluation of f.

References:
    [1] Y. Bengio, N. Leonard, A. Courville (2013). Estimating or propagating gradients
        through stochastic neurons for conditional computation.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.local import Local
from primitives.families import sample


def as_two_classes(logits: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """A bernoulli variable as a categorical one with K = 2: logits [*B, D] -> [*B, D, 2]
    with class 1 at logit l and class 0 at 0 (so p(class 1) = sigmoid(l)), and binary z
    [S, *B, D] -> one-hot [S, *B, D, 2]. Class 1 of a stand-in built on these is the
    bernoulli one."""
    return torch.stack([torch.zeros_like(logits), logits], -1), torch.stack([1 - z, z], -1)


class SampleStraightThrough(Local):
    """Base class: forward the hard sample z, backward the Jacobian of ``proxy(logits, z)``."""

    def proxy(self, logits: Tensor, z: Tensor, family: str) -> Tensor:
        """The stand-in [1, *B, D(, K)] whose Jacobian in the logits replaces dz/dlogits."""
        raise NotImplementedError

    def sample(self, logits: Tensor, family: str) -> Tensor:
        z = sample(logits, family, 1)  # [1, *B, D(, K)]
        proxy = self.proxy(logits, z, family)
        return z + (proxy - proxy.detach())  # f sees exactly z
