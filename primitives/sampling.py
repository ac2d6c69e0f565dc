r"""Gumbel primitives that torch.distributions does not offer in a vmap-able form.

``torch.distributions.OneHotCategorical.sample`` goes through ``torch.multinomial`` and a
data-dependent reshape that ``torch.func.vmap`` cannot batch, and ``F.one_hot`` checks its
input's maximum on the host; so categorical sampling is written here with the Gumbel-max
trick and a scatter, which vmap batches with different randomness per draw.

Beyond single draws: Gumbel-top-k (ordered samples without replacement [3]) and
Perturb-and-MAP (a MAP solver on Gumbel-perturbed unary potentials [4]), and Gumbel or
logistic noise conditioned on the hard sample it produces (REBAR, RELAX, Gumbel-Rao [5, 6]),
which no library offers.

References:
    [1] E. J. Gumbel (1954). Statistical theory of extreme values and some practical
        applications.
    [2] C. Maddison, D. Tarlow, T. Minka (2014). A* Sampling.
    [3] W. Kool, H. van Hoof, M. Welling (2019). Stochastic beams and where to find them:
        the Gumbel-top-k trick for sampling sequences without replacement.
    [4] G. Papandreou, A. Yuille (2011). Perturb-and-MAP random fields: using discrete
        optimization to learn and sample from energy models.
    [5] G. Tucker, A. Mnih, C. J. Maddison, D. Lawson, J. Sohl-Dickstein (2017). REBAR:
        low-variance, unbiased gradient estimates for discrete latent variable models.
    [6] M. B. Paulus, C. J. Maddison, A. Krause (2021). Rao-Blackwellizing the
        straight-through Gumbel-softmax gradient estimator.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def gumbel_from_uniform(u: Tensor) -> Tensor:
    r"""The inverse CDF of Gumbel(0, 1), :math:`g = -\log(-\log u)`.

    u is first clamped into [tiny, 1 - eps] of its dtype, so that g is finite for every
    float u in [0, 1], the end points included.
    """
    info = torch.finfo(u.dtype)
    return -torch.log(-torch.log(u.clamp(info.tiny, 1.0 - info.eps)))


def gumbel_noise(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    """Gumbel(0, 1) noise of ``shape``, with the dtype and device of ``like``."""
    return gumbel_from_uniform(torch.rand(shape, dtype=like.dtype, device=like.device))


def logistic_noise(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    r"""Logistic(0, 1) noise :math:`\log u - \log(1 - u)` (the difference of two Gumbels), finite for every u."""
    info = torch.finfo(like.dtype)
    u = torch.rand(shape, dtype=like.dtype, device=like.device).clamp(info.tiny, 1.0 - info.eps)
    return torch.log(u) - torch.log1p(-u)


def log1mexp(x: Tensor) -> Tensor:
    """log(1 - e^x) for x <= 0, accurate at both ends (-inf at x = 0; Maechler 2012's switch at
    -log 2 between log(-expm1(x)) and log1p(-exp(x)))."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def one_hot_argmax(scores: Tensor) -> Tensor:
    """One-hot vector of the argmax over the last axis (vmap-able, unlike ``F.one_hot``)."""
    index = scores.argmax(dim=-1, keepdim=True)
    return torch.zeros_like(scores).scatter(-1, index, 1.0)


def gumbel_max(logits: Tensor, sample_shape: tuple[int, ...] = ()) -> Tensor:
    r"""One-hot samples of Categorical(softmax(logits)): :math:`\mathrm{onehot}(\arg\max_k l_k + g_k)`.

    Args:
        logits: [*B, K] unnormalized log-probabilities.
        sample_shape: leading sample axes S.

    Returns:
        [*S, *B, K] one-hot samples, exact draws from the softmax [1, 2].
    """
    shape = torch.Size(sample_shape) + logits.shape
    return one_hot_argmax(logits + gumbel_noise(shape, logits))


def gumbel_top_k(logits: Tensor, k: int, sample_shape: tuple[int, ...] = ()) -> Tensor:
    r"""Indices [*S, *B, k] of the k largest :math:`l_i + g_i`, in decreasing order.

    That ordered k-tuple is a draw without replacement from softmax(logits), i.e. from the
    Plackett-Luce distribution (``plackett_luce_log_prob``) [3]; k = 1 is Gumbel-max.
    """
    if not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"gumbel_top_k needs 1 <= k <= {logits.shape[-1]} (the number of classes), got k={k}")
    shape = torch.Size(sample_shape) + logits.shape
    return torch.topk(logits + gumbel_noise(shape, logits), k, dim=-1).indices


def plackett_luce_log_prob(logits: Tensor, indices: Tensor) -> Tensor:
    r"""log-probability of the ordered tuple ``indices`` [*B, k] drawn without replacement:

    .. math:: \log P(i_1, \dots, i_k) = \sum_{j=1}^{k} \Big(l_{i_j} - \log \sum_{m \notin \{i_1..i_{j-1}\}} e^{l_m}\Big)

    The normalizers are logsumexp over the classes not yet drawn (masked with -inf), so
    the result is exact even when the drawn classes hold almost all the mass.
    """
    logits = logits.expand(indices.shape[:-1] + logits.shape[-1:])
    k = indices.shape[-1]
    drawn = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, indices, True)  # [*B, K]
    # before[..., j, m]: class m was drawn before step j
    order = torch.full_like(logits, k, dtype=torch.long).scatter(-1, indices, torch.arange(k, device=indices.device).expand_as(indices))
    before = order.unsqueeze(-2) < torch.arange(k, device=logits.device).unsqueeze(-1)  # [*B, k, K]
    remaining = logits.unsqueeze(-2).masked_fill(before & drawn.unsqueeze(-2), float("-inf"))
    return (logits.gather(-1, indices) - torch.logsumexp(remaining, -1)).sum(-1)


def perturb_and_map(unary: Tensor, solve_map: Callable[[Tensor], Tensor], sample_shape: tuple[int, ...] = ()) -> Tensor:
    r"""Perturb-and-MAP [4]: ``solve_map(unary + g)`` with i.i.d. Gumbel(0, 1) noise g on every
    unary potential (log-potential, higher is likelier) [*U, K].

    ``solve_map`` maps perturbed unaries [*S, *U, K] to their MAP states. Without pairwise
    terms this is Gumbel-max per site, an exact sampler; with couplings (loopy or not) it
    is only an approximation (docs/perturb_and_map.md measures how far it is).
    """
    shape = torch.Size(sample_shape) + unary.shape
    return solve_map(unary + gumbel_noise(shape, unary))


def _conditioning_uniforms(sample: Tensor, like: Tensor, u: Tensor | None) -> Tensor:
    """``u`` (fresh U(0, 1) draws of ``sample``'s shape if None), clamped into [tiny, 1 - eps]."""
    info = torch.finfo(like.dtype)
    if u is None:
        u = torch.rand(sample.shape, dtype=like.dtype, device=like.device)
    return u.clamp(info.tiny, 1.0 - info.eps)


def conditional_gumbel(logits: Tensor, sample: Tensor, u: Tensor | None = None) -> Tensor:
    r"""Gumbel-perturbed logits :math:`\tilde z = \ell + g`, g i.i.d. Gumbel(0, 1), conditioned
    on :math:`\arg\max_k \tilde z_k` being the one-hot ``sample`` b:

    .. math::
        \tilde z_b = -\log(-\log u_b) + \log \textstyle\sum_k e^{\ell_k}, \qquad
        \tilde z_k = -\log\big(e^{-\tilde z_b} - e^{-\ell_k} \log u_k\big) \quad (k \ne b),

    u i.i.d. U(0, 1): the maximum of the race is Gumbel(logsumexp l), independent of which
    class wins [5, 6], and each loser is Gumbel(l_k) truncated below the maximum (its inverse
    CDF). If b is itself a Gumbel-max sample of the same logits, z~ is distributed as the
    unconditional l + g (tests/test_estimators_relaxation.py checks it).

    Differentiable in the logits, as REBAR and RELAX need (the reparameterization of z~ given
    b); pass detached logits for noise held fixed (Gumbel-Rao).

    Args:
        logits: [*B, K] unnormalized log-probabilities.
        sample: [*S, *B, K] one-hot samples to condition on.
        u: optional uniforms of ``sample``'s shape (injected noise); fresh draws if None.

    Returns:
        [*S, *B, K] perturbed logits whose argmax is ``sample``.
    """
    u = _conditioning_uniforms(sample, logits, u)
    top = gumbel_from_uniform(u) + torch.logsumexp(logits, -1, keepdim=True)  # [*S, *B, K]
    top = (top * sample).sum(-1, keepdim=True)  # the winner's value, [*S, *B, 1]
    # -log(e^{-top} + e^{-l_k} (-log u_k)), written as a logaddexp so that nothing overflows
    losers = -torch.logaddexp(-top, torch.log(-torch.log(u)) - logits)
    return torch.where(sample > 0.5, top, losers)


def conditional_logistic(logits: Tensor, sample: Tensor, u: Tensor | None = None) -> Tensor:
    r"""Logistic-perturbed logits :math:`\tilde z = \theta + \log\frac{u'}{1-u'}`, conditioned on
    :math:`1[\tilde z > 0]` being the binary ``sample`` b, i.e. Logistic(theta, 1) truncated to
    the side of 0 that b says; with p = sigmoid(theta), u' = (1 - p) + v p for b = 1 and
    u' = v (1 - p) for b = 0 [5], which simplifies to

    .. math::
        \tilde z = \mathrm{softplus}(\theta + \log v) - \log(1 - v) \quad (b = 1), \qquad
        \tilde z = \log v - \mathrm{softplus}(\log(1 - v) - \theta) \quad (b = 0),

    v ~ U(0, 1); finite for every v and every theta. If b is itself a sample of
    Bernoulli(sigmoid(theta)), z~ is distributed as the unconditional theta + logistic noise.
    Differentiable in the logits (REBAR, RELAX); pass detached logits for fixed noise.

    Args:
        logits: [*B, D] log-odds.
        sample: [*S, *B, D] values in {0, 1} to condition on.
        u: optional uniforms v of ``sample``'s shape (injected noise); fresh draws if None.

    Returns:
        [*S, *B, D] perturbed logits, > 0 where b = 1 and < 0 where b = 0.
    """
    v = _conditioning_uniforms(sample, logits, u)
    log_v, log_1mv = torch.log(v), torch.log1p(-v)
    one = F.softplus(logits + log_v) - log_1mv
    zero = log_v - F.softplus(log_1mv - logits)
    return torch.where(sample > 0.5, one, zero)
