r"""Autoregressive sequence latents: the policy contract and the operations every estimator
needs on it (decode, teacher-forced log-probability, enumeration).

A sequence y = (y_1..y_L) of tokens from a vocabulary of K has

.. math:: p_\theta(y) = \prod_{t=1}^{L} \mathrm{softmax}(h_\theta(y_{<t}))[y_t]

and is written one-hot, Y [*S, L, K]. A policy is any object with ``length`` (L), ``vocab``
(K) and three methods over a decoding state (a Tensor or a tuple of Tensors whose leading
axes are the sample shape, so that stochastic beam search can reorder it along them):

    start(shape)              -> state before the first token, for samples of ``shape``
    next_logits(state, t)     -> [*shape, K] logits of token t (0-based) given the prefix
    advance(state, token, t)  -> state after token t, ``token`` [*shape, K] one-hot, relaxed,
                                 or hard with a surrogate gradient

so that an estimator can choose each token itself and feed it to the next step: local
estimators (straight-through, relaxations) act per token inside ``decode``; score-function
estimators draw hard sequences with ``sample`` and differentiate ``log_prob``.

References:
    [1] W. Kool, H. van Hoof, M. Welling (2019). Stochastic beams and where to find them:
        the Gumbel-top-k trick for sampling sequences without replacement.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Protocol

import torch
from torch import Tensor

from primitives.sampling import gumbel_max

SEQUENCE = "sequence"
MAX_SEQUENCES = 2**16  # K^L a sequence may have for enumeration (exact gradients, tests)

State = Any  # a Tensor or tuple of Tensors with the sample shape as leading axes


class Policy(Protocol):
    length: int
    vocab: int

    def start(self, shape: tuple[int, ...]) -> State: ...

    def next_logits(self, state: State, t: int) -> Tensor: ...

    def advance(self, state: State, token: Tensor, t: int) -> State: ...


def decode(policy: Policy, choose: Callable[[Tensor], Tensor], shape: tuple[int, ...]) -> Tensor:
    """Y [*shape, L, K]: token t is ``choose(logits_t)`` ([*shape, K] -> [*shape, K]), and it is
    what the policy is advanced with, so the gradient (or relaxation) it carries reaches every
    later step."""
    state = policy.start(shape)
    tokens = []
    for t in range(policy.length):
        token = choose(policy.next_logits(state, t))
        tokens.append(token)
        if t + 1 < policy.length:
            state = policy.advance(state, token, t)
    return torch.stack(tokens, -2)


def sample(policy: Policy, num_samples: int) -> Tensor:
    """Hard sequences [S, L, K] (ancestral sampling, Gumbel-max per token), without gradient."""
    with torch.no_grad():
        return decode(policy, gumbel_max, (num_samples,))


def log_prob(policy: Policy, y: Tensor) -> Tensor:
    r"""log p(y) [*S] of one-hot (or relaxed) sequences y [*S, L, K] by teacher forcing:
    :math:`\sum_t \sum_k y_{tk} \log\mathrm{softmax}(h(y_{<t}))_k`, differentiable in the policy."""
    shape = tuple(y.shape[:-2])
    state = policy.start(shape)
    total = torch.zeros(shape, dtype=y.dtype, device=y.device)
    for t in range(policy.length):
        total = total + (y[..., t, :] * torch.log_softmax(policy.next_logits(state, t), -1)).sum(-1)
        if t + 1 < policy.length:
            state = policy.advance(state, y[..., t, :], t)
    return total


def check_enumerable(length: int, vocab: int, what: str = "enumeration") -> None:
    """A ValueError naming the knobs if K^L exceeds MAX_SEQUENCES."""
    if vocab**length > MAX_SEQUENCES:
        raise ValueError(
            f"{what} needs all K^L sequences: vocab={vocab}, length={length} gives {vocab}**{length} = "
            f"{vocab**length:,} > {MAX_SEQUENCES:,}; lower vocab or length"
        )


def enumerate_sequences(length: int, vocab: int, like: Tensor | None = None) -> Tensor:
    """All K^L sequences one-hot [K^L, L, K], in lexicographic order (the first token most
    significant), as float32 or ``like``'s dtype and device."""
    check_enumerable(length, vocab)
    index = torch.tensor(list(itertools.product(range(vocab), repeat=length)), dtype=torch.long).reshape(-1, length)
    one_hot = torch.nn.functional.one_hot(index, vocab)
    return one_hot.float() if like is None else one_hot.to(dtype=like.dtype, device=like.device)
