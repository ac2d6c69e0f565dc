r"""Gumbel primitives that torch.distributions does not offer in a vmap-able form.

``torch.distributions.OneHotCategorical.sample`` goes through ``torch.multinomial`` and a
data-dependent reshape that ``torch.func.vmap`` cannot batch, and ``F.one_hot`` checks its
input's maximum on the host; so categorical sampling is written here with the Gumbel-max
trick and a scatter, which vmap batches with different randomness per draw.

Beyond single draws: Gumbel-top-k (ordered samples without replacement [3]) and
Perturb-and-MAP (a MAP solver on Gumbel-perturbed unary potentials [4]), which no library
offers.

References:
    [1] E. J. Gumbel (1954). Statistical theory of extreme values and some practical
        applications.
    [2] C. Maddison, D. Tarlow, T. Minka (2014). A* Sampling.
    [3] W. Kool, H. van Hoof, M. Welling (2019). Stochastic beams and where to find them:
        the Gumbel-top-k trick for sampling sequences without replacement.
    [4] G. Papandreou, A. Yuille (2011). Perturb-and-MAP random fields: using discrete
        optimization to learn and sample from energy models.
"""
from __future__ import annotations

from typing import Callable

import torch
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
