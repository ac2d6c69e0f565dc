r"""Local estimators: the gradient of f at one differentiable sample.

An estimator of this kind draws one sample :math:`\tilde z` whose forward value is what f
sees (hard, relaxed, or hard with a surrogate gradient) and whose backward is the
estimator's stand-in for dz/dlogits, and returns

.. math:: \hat g = \nabla_\phi f(\tilde z; \phi)

(straight-through, relaxations, Gumbel-Rao, ReinMax, GST, ZGR). A subclass gives
``sample(logits, family)`` -> [1, *B, D(, K)]. Cost: 1 evaluation of f.

Sequences (family ``sequence``, ``logits`` a policy, primitives/sequences.py): the same
``sample`` acts per token inside the decoding loop, on the step's logits as one categorical
latent, and the token it emits feeds the next step, so the stand-in's gradient reaches the
policy through every later step too; f sees the decoded Y [1, L, K].
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import Estimate, Estimator, Objective
from primitives.families import FAMILIES
from primitives.sequences import SEQUENCE, decode


class Local(Estimator):
    """Base class: f at ``sample(logits, family)``, per token for a sequence."""

    families = frozenset(FAMILIES + (SEQUENCE,))
    pathwise = True

    def sample(self, logits: Tensor, family: str) -> Tensor:
        """One differentiable sample [1, *B, D(, K)]: what f is evaluated on."""
        raise NotImplementedError

    def token(self, logits: Tensor) -> Tensor:
        """One token [*S, K] of a sequence from its step's logits [*S, K]: ``sample`` on them as
        one categorical latent (batch *S, D = 1)."""
        return self.sample(logits.unsqueeze(-2), "categorical")[0, ..., 0, :]

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        z = decode(logits, self.token, (1,)) if family == SEQUENCE else self.sample(logits, family)
        values = self.evaluate(f, z, logits, family)  # [1, *B]
        return Estimate(values.mean(), values.detach().mean(), 1)
