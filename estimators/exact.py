r"""The exact gradient by enumeration of every joint latent configuration (zero variance).

.. math::
    L = \sum_{z \in \mathcal{Z}} p(z \mid \ell) \, f(z; \phi), \qquad
    \hat g = \nabla_\phi L = \sum_z \big(f(z; \phi) \nabla_\phi p(z \mid \ell) + p(z \mid \ell) \nabla_\phi f(z; \phi)\big)

over :math:`\mathcal{Z} = \{0, 1\}^D` (bernoulli, 2^D configurations) or the one-hot
:math:`\{e_1..e_K\}^D` (categorical, K^D), the same configurations for every batch element
(batch axes kept: f sees [C, *B, D(, K)]). Only where C <= 4096 (``primitives.enumeration.MAX_CONFIGURATIONS``);
larger latent spaces are a ValueError naming the limit, raised on construction when the
builder passes the task's ``latent_shape`` (so preflight refuses ``estimator=exact
task=binary_vae`` before any work) and on every call otherwise. ``value`` is the exact expectation.
Cost: C evaluations of f (one per configuration). Families: bernoulli and categorical.
Deterministic, so the probe's draws all equal the exact gradient; the vmapped probe computes
it once per draw (memory: chunk x C x batch latents).

The reference every estimator here is measured against, where a task is small enough;
the survey [1] (section 4) frames the sum above as the quantity that the score-function
and the other estimators sample.

References:
    [1] S. Mohamed, M. Rosca, M. Figurnov, A. Mnih (2020). Monte Carlo gradient estimation
        in machine learning.
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import Estimate, Estimator, Objective
from estimators.registry import register
from primitives.enumeration import check_count, configurations
from primitives.families import batch_shape, event_shape, log_prob


@register("exact")
class Exact(Estimator):
    unbiased = True

    def __init__(self, latent_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if latent_shape is not None:  # (D,) is bernoulli, (D, K) categorical (tasks/base.py)
            check_count(tuple(latent_shape), "bernoulli" if len(latent_shape) == 1 else "categorical", "exact")

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        event = event_shape(logits, family)
        check_count(tuple(event), family, "exact")
        z = configurations(tuple(event), family, logits.dtype, logits.device)  # [C, D(, K)]
        batch = batch_shape(logits, family)
        z = z.reshape((z.shape[0],) + (1,) * len(batch) + event).expand((z.shape[0],) + batch + event)
        values = self.evaluate(f, z, logits, family)  # [C, *B]
        expectation = (log_prob(z, logits, family).exp() * values).sum(0)  # [*B]
        return Estimate(expectation.mean(), expectation.detach().mean(), z.shape[0])
