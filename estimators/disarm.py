r"""DisARM: the ARM pair with the augmentation (the uniform u) integrated out.

With the antithetic pair of ARM (estimators/arm.py), b = 1[u < sigma(l)] and
b~ = 1[1 - u < sigma(l)], per coordinate d of the logits:

.. math::
    \hat g_\ell = \tfrac{1}{2} \big(f(b) - f(\tilde b)\big) \, (-1)^{\tilde b} \,
    1[b \neq \tilde b] \, \sigma(|\ell|)
    + \tfrac{1}{2} \nabla_\ell \big(f(b; \phi) + f(\tilde b; \phi)\big)

This is E[ARM | b, b~] (Rao-Blackwellization over u), so it is unbiased and its variance is
never above ARM's. Formula as in [1] and the authors' code
(google-research/disarm, ``disarm_factor``). ``value`` is the mean of f over the pair.
Cost: 2 evaluations of f. Families: bernoulli only.

References:
    [1] Z. Dong, A. Mnih, G. Tucker (2020). DisARM: an antithetic gradient estimator for
        binary latent variables.
    [2] M. Yin, M. Zhou (2019). ARM: Augment-REINFORCE-merge gradient for stochastic binary
        networks.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.arm import ARM
from estimators.registry import register


@register("disarm")
class DisARM(ARM):
    def learning_signal(self, u: Tensor, z: Tensor, values: Tensor, logits: Tensor) -> Tensor:
        b, b_tilde = z  # [*B, D] each
        differ = (b != b_tilde).to(z.dtype)
        factor = (1 - 2 * b_tilde) * differ * torch.sigmoid(logits.abs())  # (-1)^b~ 1[b != b~] sigma(|l|)
        return 0.5 * (values[0] - values[1]).unsqueeze(-1) * factor
