r"""MuProp: REINFORCE with a first-order Taylor control variate around the mean.

With the mean :math:`\mu = \sigma(\ell)` (bernoulli) or :math:`\mathrm{softmax}(\ell)` (categorical,
over K), held fixed (:math:`\bar\mu = \mathrm{sg}(\mu)`), and the control variate
:math:`h(z) = f(\bar\mu) + f'(\bar\mu)^\top (z - \bar\mu)`, whose expectation is linear in
:math:`\mu`:

.. math::
    \hat g = \big(f(z) - h(z)\big) \nabla_\phi \log p(z \mid \phi)
             + f'(\bar\mu)^\top \nabla_\phi \mu + \nabla_\phi f(z; \phi),
    \qquad z \sim p(z \mid \phi)

The second term is the analytic gradient of :math:`\mathbb{E}[h(z)] = f(\bar\mu) +
f'(\bar\mu)^\top(\mu - \bar\mu)`; the third is the pathwise part, for f that depends on
phi itself. Unbiased for any f, since E[h score] is exactly the analytic term.
f must accept the relaxed value mu (every task here defines f on relaxed samples), and each
batch element's value must depend on its own latents only (f'(mu) is taken as the
gradient of the sum over the batch). ``value`` is f at the hard sample z.

Cost: 2 evaluations of f: at z, and at mu, where f'(mu) is the backward pass of that same
evaluation (torch.func.grad_and_value, so it runs under the probe's vmap too).
Families: bernoulli and categorical.

References:
    [1] S. Gu, S. Levine, I. Sutskever, A. Mnih (2016). MuProp: unbiased backpropagation
        for stochastic neural networks.
"""
from __future__ import annotations

from torch import Tensor
from torch.func import grad_and_value

from estimators.base import Estimate, Estimator, Objective
from primitives.families import log_prob, sample, soft
from estimators.registry import register


@register("muprop")
class MuProp(Estimator):
    pathwise = True
    unbiased = True

    def taylor(self, f: Objective, mu: Tensor, logits: Tensor, family: str) -> tuple[Tensor, Tensor]:
        """f(mu) [1, *B] and f'(mu) [1, *B, D(, K)] at the fixed mean mu [1, *B, D(, K)], detached."""

        def total(m: Tensor) -> tuple[Tensor, Tensor]:
            values = self.evaluate(f, m, logits, family)  # [1, *B]
            return values.sum(), values

        slope, (_, at_mean) = grad_and_value(total, has_aux=True)(mu)
        return at_mean.detach(), slope.detach()

    def control_variate(self, f: Objective, z: Tensor, logits: Tensor, family: str) -> tuple[Tensor, Tensor]:
        """h(z) [1, *B], detached, and E[h] [1, *B] as a function of the logits (its gradient
        is the analytic term f'(mu)^T d mu / d phi; its value is f(mu))."""
        mu = soft(logits, family, 1.0).unsqueeze(0)  # [1, *B, D(, K)]
        fixed = mu.detach()
        at_mean, slope = self.taylor(f, fixed, logits, family)
        per_sample = at_mean.shape + (-1,)  # sums over the latents of one sample: [1, *B]
        h = at_mean + (slope * (z - fixed)).reshape(per_sample).sum(-1)
        return h, at_mean + (slope * (mu - fixed)).reshape(per_sample).sum(-1)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        z = sample(logits, family, 1)  # [1, *B, D(, K)]
        values = self.evaluate(f, z, logits, family)  # [1, *B]
        h, expected_h = self.control_variate(f, z, logits, family)
        surrogate = values + (values.detach() - h) * log_prob(z, logits, family) + expected_h
        return Estimate(surrogate.mean(), values.detach().mean(), 2)
