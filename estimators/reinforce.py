r"""REINFORCE, the score-function estimator, with optional baselines.

.. math::
    \hat g = \frac{1}{S} \sum_{s=1}^{S} \big(f(z_s) - b_s\big) \nabla_\phi \log p(z_s \mid \phi)
             + \nabla_\phi f(z_s; \phi), \qquad z_s \sim p(z \mid \phi)

Baselines b_s (each keeps the estimator unbiased, since b_s does not depend on z_s):
    none            b_s = 0
    moving_average  b = exponential moving average of the batch's mean f, updated in
                    training mode only, after the estimate: b <- decay b + (1 - decay) mean f
    loo             b_s = mean of f over the other S - 1 samples (RLOO) [3]

Cost: S evaluations of f. Families: bernoulli, categorical, and sequences (scored whole:
log p(z) is the teacher-forced sum over the tokens).

References:
    [1] R. J. Williams (1992). Simple statistical gradient-following algorithms for
        connectionist reinforcement learning.
    [2] A. Mnih, K. Gregor (2014). Neural variational inference and learning in belief networks.
    [3] W. Kool, H. van Hoof, M. Welling (2019). Buy 4 REINFORCE samples, get a baseline for free!
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.base import Estimate, Estimator, Objective, check_count
from primitives.families import ALL_FAMILIES, log_prob, sample
from estimators.registry import register

BASELINES = ("none", "moving_average", "loo")


@register("reinforce")
class Reinforce(Estimator):
    families = frozenset(ALL_FAMILIES)  # a sequence is sampled and scored whole
    unbiased = True

    def __init__(self, baseline: str = "none", num_samples: int = 1, decay: float = 0.9) -> None:
        super().__init__()
        if baseline not in BASELINES:
            raise ValueError(f"unknown reinforce baseline {baseline!r}; valid: {', '.join(BASELINES)}")
        minimum = 2 if baseline == "loo" else 1
        self.num_samples = check_count(f"reinforce num_samples (baseline={baseline})", num_samples, minimum)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"reinforce decay must be in [0, 1), got {decay!r}")
        self.baseline = baseline
        self.decay = float(decay)
        self.register_buffer("running_mean", torch.zeros(()))

    def baseline_values(self, values: Tensor) -> Tensor:
        """b_s for values [S, *B] (detached)."""
        values = values.detach()
        if self.baseline == "loo":
            return (values.sum(0, keepdim=True) - values) / (values.shape[0] - 1)
        if self.baseline == "moving_average":
            return self.running_mean.expand_as(values)
        return torch.zeros_like(values)

    def advantage(self, values: Tensor) -> Tensor:
        """The weights of the score terms [S, *B] (detached): f - b."""
        return values.detach() - self.baseline_values(values)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        z = sample(logits, family, self.num_samples)  # [S, *B, D(, K)] or [S, L, K]
        values = self.evaluate(f, z, logits, family)  # [S, *B]
        advantage = self.advantage(values)
        surrogate = (values + advantage * log_prob(z, logits, family)).mean()
        if self.baseline == "moving_average" and self.training:
            self.running_mean.mul_(self.decay).add_((1.0 - self.decay) * values.detach().mean())
        return Estimate(surrogate, values.detach().mean(), self.num_samples)

    def extra_repr(self) -> str:
        return f"baseline={self.baseline}, num_samples={self.num_samples}, decay={self.decay}"
