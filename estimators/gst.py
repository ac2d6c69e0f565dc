r"""Gapped straight-through (GST): straight-through with a deterministic, sample-given perturbation.

Forward the hard sample D ~ Categorical(softmax(l)); backward the softmax at temperature tau
of the logits moved, given D, so that D's logit is the largest and every other logit at
least a gap below it (no Gumbel noise, hence no noise variance in the backward) [1]:

.. math::
    m_k = \begin{cases} \max_j \ell_j - \ell_k & D_k = 1 \\
                        -\max(0,\; \ell_k - \max_j \ell_j + \gamma) & D_k = 0 \end{cases}
    \qquad \tilde D = D + \pi - \mathrm{sg}(\pi), \quad
    \pi = \mathrm{softmax}\big((\ell + \mathrm{sg}(m)) / \tau\big)

i.e. the sampled logit lifted to the maximum, each other logit to min(l_k, max l - gamma).
``gap`` is gamma >= 0 (GST-1.0 at the default 1.0) or ``"p"`` for GST-p, the gap that
depends on D's probability: :math:`\gamma = -\log(1 - \pi_D) / \pi_D` (pi_D = softmax(l)_D,
scaled by 1 - 1e-5 first so that gamma stays finite at pi_D = 1, as the authors do).

Read in the authors' code (github.com/chijames/GST): model/basic.py, ``gst_mover`` (lines
43-64): m as above (``move`` and ``move2``), held fixed (``detach=True`` in their VAE), the
p-gap with the 1 - 1e-5 factor, and the hard output ``action - prob.detach() + prob``; the
mean they subtract from the moved logits leaves the softmax unchanged and is left out here.
gumbel_softmax_vae.py lines 67-73: the modes gst-1.0 and gst-p. The same m in
google-deepmind/synjax, synjax/_src/utils/special.py, ``gapped_straight_through``.

bernoulli: the categorical estimator on K = 2 classes with logits (0, l) (class 1 is the
bernoulli variable), which reduces to
:math:`\tilde b = b + \sigma(l' / \tau) - \mathrm{sg}(\cdot)`,
:math:`l' = l + \mathrm{sg}(s \max(s l, \gamma) - l)`, s = 2 b - 1. Not in [1], which is
categorical; written through the K = 2 form so that the two cannot drift apart.

Biased. Cost: 1 evaluation of f.

References:
    [1] T.-H. Fan, T.-C. Chi, A. I. Rudnicky, P. J. Ramadge (2022). Training discrete deep
        generative models via gapped straight-through estimator. ICML.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from estimators.base import check_temperature
from estimators.registry import register
from estimators.sample_st import SampleStraightThrough, as_two_classes
from primitives.families import soft

ADAPTIVE = "p"  # the gap knob's value for GST-p
SCALE_P = 1.0 - 1e-5  # pi_D is scaled by this before the p-gap (the authors' numerical guard)


def check_gap(value: float | str) -> float | str:
    """``value`` as a float >= 0, or ``"p"``; a ValueError otherwise."""
    if value == ADAPTIVE:
        return ADAPTIVE
    try:
        gap = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"gst gap must be a number >= 0 or {ADAPTIVE!r}, got {value!r}") from None
    if not (gap >= 0 and math.isfinite(gap)):
        raise ValueError(f"gst gap must be a finite number >= 0 or {ADAPTIVE!r}, got {value!r}")
    return gap


def adaptive_gap(logits: Tensor, z: Tensor) -> Tensor:
    r""":math:`-\log(1 - \pi_D) / \pi_D` [S, *B, D, 1] for one-hot z over the last axis."""
    pi = (torch.softmax(logits, -1) * z).sum(-1, keepdim=True) * SCALE_P
    pi = pi.clamp(min=torch.finfo(pi.dtype).tiny)  # -> gap 1, the limit at pi_D -> 0
    return -torch.log1p(-pi) / pi


def gapped_logits(logits: Tensor, z: Tensor, gap: float | str) -> Tensor:
    """The moved logits l + sg(m) [S, *B, D, K] for one-hot z: z's logit at the maximum, the
    others at min(l_k, max l - gap); gradient through l only."""
    fixed = logits.detach()
    top = fixed.max(-1, keepdim=True).values  # [*B, D, 1]
    gamma = adaptive_gap(fixed, z) if gap == ADAPTIVE else gap
    moved = torch.where(z > 0.5, top, torch.minimum(fixed, top - gamma))
    return logits + (moved - fixed)


@register("gst")
class GappedStraightThrough(SampleStraightThrough):
    def __init__(self, temperature: float = 1.0, gap: float | str = 1.0) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.gap = check_gap(gap)

    def proxy(self, logits: Tensor, z: Tensor, family: str) -> Tensor:
        if family == "bernoulli":
            two, z2 = as_two_classes(logits, z)  # [*B, D, 2], [1, *B, D, 2]
            return self.proxy(two, z2, "categorical")[..., 1]
        return soft(gapped_logits(logits, z, self.gap), family, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gap={self.gap}"
