r"""Gumbel-Rao (GR-MCK): straight-through Gumbel-softmax, Rao-Blackwellized over the noise.

Forward the hard sample z; backward the Gumbel-softmax Jacobian averaged over K draws of
the noise conditioned on z:

.. math::
    z \sim p(z \mid \ell), \qquad g^{(1..K)} \overset{iid}{\sim} p(g \mid z), \qquad
    \bar y = \frac{1}{K} \sum_{k=1}^{K} \mathrm{softmax}\big((\ell + \mathrm{sg}(g^{(k)})) / \tau\big),

    \tilde z = z + \bar y - \mathrm{sg}(\bar y), \qquad \hat g = \nabla_\phi f(\tilde z; \phi)

(bernoulli: sigmoid and logistic noise conditioned on the threshold). Its mean is ST-GS's
mean, E[ST-GS | z] estimated by K draws, so its variance is at most ST-GS's [1]. The noise
is held fixed inside the Jacobian (sg above): with the derivative taken through the
reparameterization of g given z too, K = 1 would not reduce to ST-GS in expectation; the
reference implementation's conditional Gumbel also runs without gradient.

The first of the K draws is the noise that produced z (given z it is distributed as the
others), and it comes from the very call ST-GS makes; the other K - 1 come from
``primitives.sampling.conditional_gumbel`` / ``conditional_logistic``. So with
``num_samples=1`` this estimator consumes the same random numbers as st_gumbel_softmax and
returns the same estimate, draw for draw. Biased. Cost: 1 evaluation of f (the K draws only
enter the backward).

References:
    [1] M. B. Paulus, C. J. Maddison, A. Krause (2021). Rao-Blackwellizing the
        straight-through Gumbel-softmax gradient estimator.
    [2] E. Jang, S. Gu, B. Poole (2017). Categorical reparameterization with Gumbel-softmax.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.base import check_count, check_temperature
from estimators.local import Local
from primitives.families import harden, relaxed_sample, soft
from estimators.registry import register
from primitives.sampling import conditional_gumbel, conditional_logistic


@register("gumbel_rao")
class GumbelRao(Local):
    def __init__(self, temperature: float = 1.0, num_samples: int = 10) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.num_samples = check_count("gumbel_rao num_samples", num_samples, 1)

    def conditional_relaxed(self, logits: Tensor, z: Tensor, family: str) -> Tensor:
        """K - 1 relaxed samples [K - 1, *B, D(, K)] from noise drawn given z [1, *B, D(, K)],
        the noise held fixed (only the logits carry gradient)."""
        fixed = logits.detach()
        given = z.expand((self.num_samples - 1,) + z.shape[1:])
        conditional = conditional_logistic if family == "bernoulli" else conditional_gumbel
        perturbed = conditional(fixed, given) - fixed + logits
        return soft(perturbed, family, self.temperature)

    def sample(self, logits: Tensor, family: str) -> Tensor:
        y = relaxed_sample(logits, family, self.temperature, 1)  # [1, *B, D(, K)], as ST-GS draws it
        z = harden(y, family)
        if self.num_samples > 1:
            y = torch.cat([y, self.conditional_relaxed(logits, z, family)]).mean(0, keepdim=True)
        return z + (y - y.detach())  # exactly z forward

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, num_samples={self.num_samples}"
