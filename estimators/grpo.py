r"""REINFORCE with a group-normalized advantage, as in GRPO.

S samples form a group; each sample's score term is weighted by its standardized value:

.. math::
    \hat g = \frac{1}{S} \sum_{s=1}^{S} A_s \nabla_\phi \log p(z_s \mid \phi) + \nabla_\phi f(z_s; \phi),
    \qquad A_s = \frac{f(z_s) - \bar f}{\hat\sigma_f + \epsilon}

with :math:`\bar f` and :math:`\hat\sigma_f` (Bessel-corrected) the group's mean and standard
deviation, detached. Subtracting the mean (which includes f(z_s) itself) scales the
unbiased RLOO estimate by (S - 1) / S; dividing by the group's standard deviation rescales
each group by a random factor that depends on the samples, so the estimator is biased (its
bias is what the probe measures), and it is the direction of the gradient in units of f's
spread rather than its size. epsilon 1e-4 as in TRL's GRPOTrainer. Cost: S evaluations of
f. Families: bernoulli, categorical, sequences (scored whole).

References:
    [1] Z. Shao, P. Wang, Q. Zhu, et al. (2024). DeepSeekMath: pushing the limits of
        mathematical reasoning in open language models (GRPO, section 4.1).
    [2] W. Kool, H. van Hoof, M. Welling (2019). Buy 4 REINFORCE samples, get a baseline for free!
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import check_count
from estimators.registry import register
from estimators.reinforce import Reinforce


@register("grpo")
class GRPO(Reinforce):
    unbiased = False

    def __init__(self, num_samples: int = 4, eps: float = 1e-4) -> None:
        super().__init__(baseline="none", num_samples=check_count("grpo num_samples", num_samples, 2))
        if not eps >= 0:
            raise ValueError(f"grpo eps must be >= 0, got {eps!r}")
        self.eps = float(eps)

    def advantage(self, values: Tensor) -> Tensor:
        values = values.detach()
        return (values - values.mean(0, keepdim=True)) / (values.std(0, keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, eps={self.eps}"
