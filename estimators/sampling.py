r"""Gumbel primitives that torch.distributions does not offer in a vmap-able form.

``torch.distributions.OneHotCategorical.sample`` goes through ``torch.multinomial`` and a
data-dependent reshape that ``torch.func.vmap`` cannot batch, and ``F.one_hot`` checks its
input's maximum on the host; so categorical sampling is written here with the Gumbel-max
trick and a scatter, which vmap batches with different randomness per draw.

References:
    [1] E. J. Gumbel (1954). Statistical theory of extreme values and some practical
        applications.
    [2] C. Maddison, D. Tarlow, T. Minka (2014). A* Sampling.
"""
from __future__ import annotations

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
