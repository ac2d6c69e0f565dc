r"""ARMS: leave-one-out REINFORCE on n mutually antithetic Bernoulli samples (a Dirichlet copula).

Per coordinate d (independently over d and over batch elements), n uniforms that are each
U(0, 1) but negatively correlated, from a Dirichlet(1, ..., 1) draw [1]:

.. math::
    e_i \sim \mathrm{Exp}(1), \quad \delta_i = e_i / \textstyle\sum_{j=1}^{n} e_j, \quad
    \tilde u_i = (1 - \delta_i)^{n-1}, \qquad i = 1..n

(:math:`\delta_i \sim \mathrm{Beta}(1, n - 1)`, so :math:`\tilde u_i \sim U(0, 1)`). With
:math:`p = \sigma(\ell)` and :math:`q = \min(p, 1 - p) = \sigma(-|\ell|)`, the samples are
:math:`b_i = 1[\tilde u_i < p]` where p < 1/2 and :math:`b_i = 1[1 - \tilde u_i < p]` else,
each an exact draw of Bernoulli(p). The leave-one-out REINFORCE estimate (LOORF) on them,

.. math::
    \hat g_\ell = \frac{c(q)}{n - 1} \sum_{i=1}^{n} \big(f(b_i) - \bar f\big) (b_i - p)
    + \frac{1}{n} \sum_{i=1}^{n} \nabla_\ell f(b_i; \phi), \qquad
    c(q) = \frac{q (1 - q)}{q - C(q)}, \quad C(q) = \max\big(2 q^{1/(n-1)} - 1, 0\big)^{n-1},

is unbiased with the correction c: for i != j, E[f(b_j)(b_i - p)] is not 0 but
(f(1) - f(0)) (P(b_i = b_j = 1) - p^2) (f's other coordinates held), so the sum has mean
(n - 1)(q - C(q)) (f(1) - f(0)) instead of (n - 1) q (1 - q) (f(1) - f(0)), C(q) being the
copula's joint P(u~_i < q, u~_j < q); c(q) = 1 - q = sigma(|l|) wherever C(q) = 0. For
n = 2 the pair is u~, 1 - u~ and the estimate is DisARM's, exactly [1]. The second term is
the pathwise part, for f that depends on phi itself (each b_i is a draw of p).

Read in the authors' code (github.com/alekdimi/arms): networks.py, ``get_layer_grad_estimation``
branch ``grad_type == 'arms'`` (lines 239-268): the copula u = (1 - e / sum e)^(n-1), flipped to
1 - u where p >= 1/2, ``bivariate(p)``, the joint (``2 p - 1 + bivariate(1 - p)`` for p >= 1/2,
which is 1 - 2 q + C(q)), the correction ``p (1 - p) / (p - joint)`` and the estimate
``mean((f - fmean) (b - p) n / (n - 1) debias)``; toy_problem.py ``DirichletCopula`` (lines
6-24: the same copula and bivariate CDF); experiment_launcher.py (lines 18, 93-94: n = 2
``num_pairs``, default 1 pair). Written here on q for both signs of the logit, so that nothing
cancels near p = 1, and without the authors' 1e-6 in the denominator (q - C(q) > 0 for every
q > 0).

``value`` is the mean of f over the n samples. Cost: n evaluations of f. Families: bernoulli only.

References:
    [1] A. Dimitriev, M. Zhou (2021). ARMS: Antithetic-REINFORCE-Multi-Sample gradient for
        binary variables.
    [2] W. Kool, H. van Hoof, M. Welling (2019). Buy 4 REINFORCE samples, get a baseline for free!
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.base import Estimate, Estimator, Objective, check_count
from estimators.registry import register


def dirichlet_copula(like: Tensor, num_samples: int) -> Tensor:
    """[n, *like.shape] uniforms u~_i = (1 - e_i / sum_j e_j)^(n-1), mutually antithetic over
    the first axis; 1 - delta_i is summed from the other e_j (no cancellation)."""
    shape = (num_samples,) + like.shape
    e = -torch.log1p(-torch.rand(shape, dtype=like.dtype, device=like.device))  # Exp(1), finite
    others = 1 - torch.eye(num_samples, dtype=like.dtype, device=like.device)
    rest = torch.tensordot(others, e, dims=1)  # sum_{j != i} e_j: [n, *like.shape]
    return (rest / (rest + e)) ** (num_samples - 1)


def copula_joint(q: Tensor, num_samples: int) -> Tensor:
    """C(q) = P(u~_i < q, u~_j < q), i != j, of the Dirichlet copula of n samples."""
    return (2 * q ** (1 / (num_samples - 1)) - 1).clamp_min(0) ** (num_samples - 1)


def correction(logits: Tensor, num_samples: int) -> Tensor:
    """c(q) = q (1 - q) / (q - C(q)) = sigma(|l|) / (1 - C(q) / q), q = sigma(-|l|)."""
    q = torch.sigmoid(-logits.abs())
    ratio = copula_joint(q, num_samples) / q.clamp_min(torch.finfo(q.dtype).tiny)
    return torch.sigmoid(logits.abs()) / (1 - ratio)


def antithetic_samples(logits: Tensor, num_samples: int) -> Tensor:
    """[n, *B, D] Bernoulli(sigmoid(l)) samples on the copula (no gradient): b_i = 1[u~_i < q]
    where l < 0, else 1 - 1[u~_i < q] (= 1[1 - u~_i < p] up to ties)."""
    logits = logits.detach()
    minority = dirichlet_copula(logits, num_samples) < torch.sigmoid(-logits.abs())
    return torch.where(logits < 0, minority, ~minority).to(logits.dtype)


@register("arms")
class ARMS(Estimator):
    families = frozenset({"bernoulli"})
    unbiased = True

    def __init__(self, num_samples: int = 2) -> None:
        super().__init__()
        self.num_samples = check_count("arms num_samples", num_samples, 2)

    def draw(self, logits: Tensor) -> Tensor:
        """The n samples [n, *B, D] f is evaluated on: antithetic, on the Dirichlet copula."""
        return antithetic_samples(logits, self.num_samples)

    def learning_signal(self, z: Tensor, values: Tensor, logits: Tensor) -> Tensor:
        """The score part of the estimate of d E[f] / d logits [*B, D] from the samples z
        [n, *B, D] and f(z) [n, *B]: c(q) / (n - 1) sum_i (f_i - mean f) (b_i - p)."""
        centred = (values - values.mean(0)).unsqueeze(-1)  # [n, *B, 1]
        scores = (centred * (z - torch.sigmoid(logits))).sum(0)  # [*B, D]
        return correction(logits, self.num_samples) * scores / (self.num_samples - 1)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        z = self.draw(logits)  # [n, *B, D]
        values = self.evaluate(f, z, logits, family)  # [n, *B]
        signal = self.learning_signal(z, values.detach(), logits.detach())  # [*B, D]
        surrogate = (values.mean(0) + (signal * logits).sum(-1)).mean()
        return Estimate(surrogate, values.detach().mean(), self.num_samples)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}"
