r"""The two families of discrete latents and the operations every estimator needs on them.

Shapes (the one convention of the package):
    bernoulli    logits [*B, D],    samples [S, *B, D] in {0, 1}
    categorical  logits [*B, D, K], samples [S, *B, D, K] one-hot over K
    sequence     a policy (primitives/sequences.py) in place of logits, samples [S, L, K]
                 one-hot tokens, no batch axes
f maps samples [S, *B, ...] to per-sample values [S, *B]; log-probabilities are summed over D
(over the L tokens for a sequence). ``sample`` and ``log_prob`` take a policy for the sequence
family, so that score-function estimators act on whole sequences unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from primitives import sequences
from primitives.sampling import gumbel_max, gumbel_noise, logistic_noise, one_hot_argmax
from primitives.sequences import SEQUENCE

FAMILIES = ("bernoulli", "categorical")  # independent latents: the families of logits tensors
ALL_FAMILIES = FAMILIES + (SEQUENCE,)


def check_family(family: str) -> None:
    if family not in ALL_FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(ALL_FAMILIES)}")


def event_shape(logits: Tensor, family: str) -> torch.Size:
    """(D,) or (D, K) of logits: the axes of one latent."""
    return logits.shape[-1:] if family == "bernoulli" else logits.shape[-2:]


def batch_shape(logits: Tensor, family: str) -> torch.Size:
    """*B of logits: all axes but D (bernoulli) or D, K (categorical); () for a sequence policy."""
    if family == SEQUENCE:
        return torch.Size(())
    event_dims = 1 if family == "bernoulli" else 2
    if logits.dim() < event_dims:
        raise ValueError(f"{family} logits need at least {event_dims} axes, got shape {tuple(logits.shape)}")
    return logits.shape[: logits.dim() - event_dims]


def sample(logits: Tensor, family: str, num_samples: int) -> Tensor:
    """Hard samples [S, *B, D(, K)], without gradient (bernoulli: the draws of
    torch.distributions.Bernoulli.sample, the same kernel and random stream); for a sequence,
    ``logits`` is the policy and the samples are ancestral, [S, L, K]."""
    if family == SEQUENCE:
        return sequences.sample(logits, num_samples)
    logits = logits.detach()
    if family == "bernoulli":
        return torch.bernoulli(torch.sigmoid(logits).expand((num_samples,) + logits.shape))
    return gumbel_max(logits, (num_samples,))


def log_prob(z: Tensor, logits: Tensor, family: str) -> Tensor:
    r"""log p(z | logits) summed over D: [S, *B], written on the one-hot (or binary) form of z:

    .. math:: \sum_d z_d \log\sigma(\ell_d) + (1 - z_d) \log\sigma(-\ell_d), \qquad
              \sum_d \sum_k z_{dk} \log\mathrm{softmax}(\ell_d)_k

    so it is linear in z and defined (with a gradient in z) on relaxed samples too, as the
    VAEs' f needs. On hard samples these are torch.distributions' Bernoulli and
    OneHotCategorical log_prob; OneHotCategorical itself takes the argmax of a relaxed z (no
    gradient in z), Bernoulli is already linear. Written out because building the
    distribution object took a third of the call on the binary VAE's batch (93 against 63 us,
    [1, 50, 200]), on every training step. tests/test_sampling.py checks both.
    A sequence's (``logits`` the policy) is the teacher-forced sum over its tokens.
    """
    if family == SEQUENCE:
        return sequences.log_prob(logits, z)
    if family == "bernoulli":
        return -F.binary_cross_entropy_with_logits(logits.expand_as(z), z, reduction="none").sum(-1)
    return (z * F.log_softmax(logits, dim=-1)).sum((-2, -1))


def relaxed_sample(logits: Tensor, family: str, temperature: float, num_samples: int) -> Tensor:
    """Reparameterized Concrete / Gumbel-softmax samples [S, *B, D(, K)] at ``temperature``.

    bernoulli: binary Concrete, sigmoid((logits + logistic noise) / tau) [Maddison et al. 2016];
    categorical: softmax((logits + Gumbel noise) / tau) [Jang et al. 2016].
    Written on the logits by hand: torch.distributions' RelaxedBernoulli goes through
    logit(clamp(sigmoid(logits))), so every draw's gradient passes four extra [S, *B, D]
    ops, which made the vectorized probe 3x slower (docs/performance.md). The distribution is
    the same (tests/test_biased.py integrates it numerically).
    """
    shape = (num_samples,) + logits.shape
    if family == "bernoulli":
        return torch.sigmoid((logits + logistic_noise(shape, logits)) / temperature)
    return F.softmax((logits + gumbel_noise(shape, logits)) / temperature, dim=-1)


def harden(relaxed: Tensor, family: str) -> Tensor:
    """The discrete sample a relaxed one rounds to: threshold 1/2 or argmax (no gradient)."""
    relaxed = relaxed.detach()
    if family == "bernoulli":
        return (relaxed > 0.5).to(relaxed.dtype)
    return one_hot_argmax(relaxed)


def soft(logits: Tensor, family: str, temperature: float) -> Tensor:
    """sigmoid(logits / tau) or softmax(logits / tau) over K: the mean of the hard sample at tau=1."""
    if family == "bernoulli":
        return torch.sigmoid(logits / temperature)
    return F.softmax(logits / temperature, dim=-1)
