r"""Stochastic beam search: k sequences drawn without replacement from an autoregressive policy
(primitives/sequences.py) with k policy evaluations per step, without enumerating the K^L
sequences [1].

Gumbel-top-k on the sequence space: give every sequence y an independent
:math:`G_y \sim \mathrm{Gumbel}(\log p(y))`; the k largest, in decreasing order, are an ordered
sample without replacement from p (Plackett-Luce) [1, 3]. The prefix y_{1:t} gets the maximum
of its descendants' scores, :math:`G_{y_{1:t}} = \max_{y' \succ y_{1:t}} G_{y'}`, which by
max-stability is :math:`\mathrm{Gumbel}(\phi)`, :math:`\phi = \log p(y_{1:t})`. Top down [2]:
given a prefix's score T, its K children (:math:`\phi_c = \phi + \log\mathrm{softmax}(h)_c`) have
the law of independent :math:`G_c \sim \mathrm{Gumbel}(\phi_c)` conditioned on their maximum
being T; with :math:`Z = \max_c G_c` that is

.. math::
    \tilde G_c = -\log\big(e^{-T} - e^{-Z} + e^{-G_c}\big)
               = T - \max(0, v) - \log(1 + e^{-|v|}), \qquad
    v = T - G_c + \log\big(1 - e^{G_c - Z}\big),

(appendix B of [1]: nothing overflows, and the child that attains Z gets T exactly).

Beam search of width k on these scores is exact: a prefix outside the top k of its level has
k prefixes above it, each holding a sequence scored as high as the prefix, so no sequence
below it can be among the top k. The beam after step L is therefore the Gumbel-top-k of all
K^L sequences, each score drawn only where the search looks.

The root (the empty prefix, log p = 0) gets :math:`G \sim \mathrm{Gumbel}(0)`. Fixing it at 0
would give the same ordered sample (the order of Gumbels is independent of their maximum), but
scores conditioned on that maximum; drawn, ``perturbed`` is exactly the k largest of
independent :math:`\mathrm{Gumbel}(\log p(y))`, as thresholds built on them (priority
sampling, the (k+1)-th score of a beam of k + 1) assume.

References:
    [1] W. Kool, H. van Hoof, M. Welling (2019). Stochastic beams and where to find them:
        the Gumbel-top-k trick for sampling sequences without replacement.
    [2] C. Maddison, D. Tarlow, T. Minka (2014). A* Sampling.
    [3] J. I. Yellott (1977). The relationship between Luce's choice axiom, Thurstone's theory
        of comparative judgment, and the double exponential distribution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils._pytree import register_dataclass, tree_map

from primitives.sampling import gumbel_noise, log1mexp
from primitives.sequences import Policy


@dataclass(frozen=True)
class Beam:
    """k sequences without replacement, in decreasing order of ``perturbed``; all detached.

    Attributes:
        sequences: [k, L, K] one-hot, in the policy's dtype.
        log_probs: [k] log p(y) of each sequence (no length normalization).
        perturbed: [k] their Gumbel scores G_y ~ Gumbel(log p(y)), decreasing.
    """

    sequences: Tensor
    log_probs: Tensor
    perturbed: Tensor


register_dataclass(Beam)  # a pytree, so that torch.func.vmap can return it


def _truncate(gumbels: Tensor, bound: Tensor) -> Tensor:
    r"""Children's Gumbels [n, K] conditioned on their maximum being the parent's score
    ``bound`` [n, 1]: :math:`T - \mathrm{softplus}(v)`, v as in the module docstring."""
    top = gumbels.max(-1, keepdim=True).values  # [n, 1]
    v = bound - gumbels + log1mexp(gumbels - top)  # [n, K]
    return bound - v.clamp(min=0) - torch.log1p(torch.exp(-v.abs()))


def _one_hot(index: Tensor, vocab: int, like: Tensor) -> Tensor:
    """[*I, K] one-hot of ``index`` [*I] in ``like``'s dtype (vmap-able, unlike ``F.one_hot``)."""
    return (index.unsqueeze(-1) == torch.arange(vocab, device=index.device)).to(like.dtype)


def stochastic_beam_search(policy: Policy, k: int) -> Beam:
    r"""The top k of Gumbel-perturbed log-probabilities over all K^L sequences of ``policy``,
    found by beam search on the prefixes' scores (module docstring) [1].

    Args:
        policy: an autoregressive policy (primitives.sequences.Policy), searched with sample
            shapes (n,), n <= k the number of prefixes kept.
        k: the number of sequences, 1 <= k <= K^L.

    Returns:
        a Beam: sequences [k, L, K], log_probs [k], perturbed [k], without gradient
        (estimators differentiate ``primitives.sequences.log_prob`` of the sequences).

    Shapes are static and no value goes to the host, so ``torch.func.vmap`` (randomness
    "different") runs a batch of independent searches in one call and returns a Beam of
    [B, k, ...], if the policy's methods can be vmapped.
    """
    length, vocab = policy.length, policy.vocab
    if not 1 <= k <= vocab**length:
        raise ValueError(
            f"stochastic_beam_search needs 1 <= k <= K^L = {vocab}^{length} = {vocab**length} "
            f"(K = vocab, L = length), got k={k}"
        )
    with torch.no_grad():
        state = policy.start((1,))
        logits = policy.next_logits(state, 0)  # [1, K]
        log_p = logits.new_zeros(1)  # [n], the root's log p
        score = gumbel_noise((1,), logits)  # [n], the root's G ~ Gumbel(0)
        tokens = torch.zeros(1, 0, dtype=torch.long, device=logits.device)  # [n, t]
        for t in range(length):
            child_log_p = log_p.unsqueeze(-1) + torch.log_softmax(logits, -1)  # [n, K]
            gumbels = child_log_p + gumbel_noise(child_log_p.shape, logits)  # [n, K], Gumbel(phi_c)
            child_score = _truncate(gumbels, score.unsqueeze(-1))  # [n, K]
            kept = torch.topk(child_score.flatten(), min(k, child_score.numel()))  # decreasing
            parent, token = kept.indices // vocab, kept.indices % vocab  # [n']
            log_p, score = child_log_p.flatten()[kept.indices], kept.values
            tokens = torch.cat([tokens[parent], token.unsqueeze(-1)], -1)  # [n', t + 1]
            if t + 1 < length:
                state = tree_map(lambda x: x[parent], state)
                state = policy.advance(state, _one_hot(token, vocab, logits), t)
                logits = policy.next_logits(state, t + 1)  # [n', K]
        return Beam(_one_hot(tokens, vocab, logits), log_p, score)
