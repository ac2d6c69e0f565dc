r"""ZGR: Gumbel-Rao at temperature zero, straight-through and DARN averaged.

Forward the hard sample x ~ Categorical(p), p = softmax(l); backward the Jacobian of

.. math::
    d_x = \tfrac{1}{2}\big(p + \mathrm{sg}(x - p) \log p_x\big), \qquad
    \tilde x = x + d_x - \mathrm{sg}(d_x), \qquad \log p_x = \langle x, \log p \rangle

the mean of the softmax straight-through Jacobian and of DARN's [3]: the limit of
Gumbel-Rao [2] as its temperature goes to 0 [1]. No temperature. bernoulli (b ~
Bernoulli(p), p = sigmoid(l)): the Jacobian on the logit is
:math:`\tfrac{1}{2}\big(b (1 - p) + (1 - b) p\big)`, which is the categorical formula on
K = 2 classes (tests/test_estimators_straight_through.py checks it).

Unbiased for f quadratic in x [1] (and so on the toy quadratic and on the multilinear MRF
f; the tests z-test that), biased in general, so ``unbiased`` is False.

Read in google-deepmind/synjax, synjax/_src/utils/special.py: ``zgr`` (the categorical
formula above, dx = (dx_st + dx_re) / 2 with dx_re = sg(x - p) log p_x) and ``zgr_binary``
(the bernoulli Jacobian, applied as b + sg(J) (l - sg(l))), which cite Shekhovtsov's own
code (github.com/shekhovt/ZGR, zgr.py).

Cost: 1 evaluation of f.

References:
    [1] A. Shekhovtsov (2023). Cold analysis of Rao-Blackwellized straight-through
        Gumbel-softmax gradient estimator. ICML.
    [2] M. B. Paulus, C. J. Maddison, A. Krause (2021). Rao-Blackwellizing the
        straight-through Gumbel-softmax gradient estimator.
    [3] K. Gregor, I. Danihelka, A. Mnih, C. Blundell, D. Wierstra (2014). Deep
        autoregressive networks.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.registry import register
from estimators.sample_st import SampleStraightThrough


@register("zgr")
class ZGR(SampleStraightThrough):
    def proxy(self, logits: Tensor, z: Tensor, family: str) -> Tensor:
        if family == "bernoulli":
            p = torch.sigmoid(logits.detach())
            jacobian = 0.5 * (z * (1 - p) + (1 - z) * p)  # [1, *B, D]
            return jacobian * logits
        log_p = torch.log_softmax(logits, -1)  # [*B, D, K]
        log_px = (z * log_p).sum(-1, keepdim=True)  # [1, *B, D, 1]
        p = log_p.exp()
        return 0.5 * (p + (z - p.detach()) * log_px)
