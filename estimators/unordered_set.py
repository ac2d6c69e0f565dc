r"""The unordered set estimator: k samples without replacement, weighted as a set, with its
built-in baseline.

S = {s_1..s_k} drawn without replacement from p (Gumbel-top-k), taken as an unordered set:

.. math::
    \hat g = \sum_{s \in S} R(S, s) \nabla_\phi p(s) \big(f(s) - B_s\big)
             + \sum_{s \in S} p(s) R(S, s) \nabla_\phi f(s; \phi),
    \qquad R(S, s) = \frac{p^{D \setminus s}(S \setminus s)}{p(S)},

    B_s = \sum_{s' \in S} p(s') R^{D \setminus s}(S, s') f(s'), \qquad
    R^{D \setminus s}(S, s') = \frac{p^{D \setminus \{s, s'\}}(S \setminus \{s, s'\})}{p^{D \setminus s}(S \setminus s)}
    \ (s' \ne s), \quad R^{D \setminus s}(S, s) = 1,

p(S) the probability of drawing the set in any order and p^{D \ A} that probability in the
domain D (every outcome) without A, probabilities renormalized [1]. B_s = p(s) f(s) + (1 - p(s)) x (the set
estimate of E[f] over D \ s from S \ s), which keeps the estimator unbiased; for k = 1 it is
not a valid baseline and the estimator is plain REINFORCE. The weights p(s) R(S, s) sum to
1, and ``value`` is sum_s p(s) R(S, s) f(s), unbiased for E[f]. R and B are the ones of the
authors' code (github.com/wouterkool/estimating-gradients-without-replacement,
bernoulli/gumbel.py ``compute_log_R_O_nfac`` and baselines_lib.py ``reinforce_unordered``).

The set probabilities are exact: Q(A) = p^{D \ A}(S \ A) for every A within S by the
recursion Q(S) = 1, Q(A) = sum_{t in S \ A} p(t) / (1 - p(A)) Q(A + t) over the 2^k
subsets (p(S) = Q({}), then Q({s}) and Q({s, s'})), where 1 - p(A) is summed over the classes
outside A rather than subtracted from 1, so it never cancels.

A latent of D independent categoricals (knob ``latents``):
    joint  one categorical over its K^D joint states (the product space, at most
           ``MAX_STATES``; larger latents are rejected with an error): the estimator above
           applies as it is, and f sees k distinct joint samples. With k >= K^D the set is
           the whole space and the estimate is the exact gradient (k is capped at K^D).
           Cost: min(k, K^D) evaluations of f.
    each   one shared sample z ~ p, and for each latent d a set S_d of k of its K classes,
           f evaluated with latent d set to each member and the others held at z_{-d}. The
           estimator above on S_d is unbiased for grad_{theta_d} E[f | z_{-d}], hence, z_{-d}
           being a sample, for grad_{theta_d} E[f]; the score terms are summed over d and f's
           own pathwise term averaged over d. For any D (the categorical VAE's 20 x 10).
           With k = K it is the local expectation gradient. Cost: D min(k, K) evaluations.
Batch elements are independent, each with its own sets.

Sequences (family ``sequence``, ``logits`` a policy; ``latents`` does not apply): S is k
distinct sequences drawn by stochastic beam search [2] (primitives/beam_search.py), with their
exact log p(y) (the search carries them apart from the perturbed scores); the set
probabilities need p only on S and 1 - p(S), so no enumeration of the K^L sequences, and the
estimator above applies as it is, log p(y) differentiated by teacher forcing. 1 - p(S) is
computed as log1mexp(logsumexp log p(S)): it loses relative precision when S holds almost all
the mass (k near K^L on a peaked policy). Cost: min(k, K^L) evaluations of f.

Families: categorical, sequence.

References:
    [1] W. Kool, H. van Hoof, M. Welling (2020). Estimating gradients for discrete random
        variables by sampling without replacement.
    [2] W. Kool, H. van Hoof, M. Welling (2019). Stochastic beams and where to find them:
        the Gumbel-top-k trick for sampling sequences without replacement.
    [3] M. Titsias, M. Lazaro-Gredilla (2015). Local expectation gradients for black box
        variational inference.
"""
from __future__ import annotations

import itertools
from functools import cache

import torch
from torch import Tensor

from estimators.base import Estimate, Estimator, Objective, check_count
from primitives.beam_search import stochastic_beam_search
from primitives.families import log_prob
from estimators.registry import register
from primitives.sampling import gumbel_max, gumbel_top_k, log1mexp
from primitives.sequences import SEQUENCE

MAX_STATES = 2**16  # joint states of a latent (K^D) the product space may have
MAX_SAMPLES = 16  # the recursion visits 2^k subsets
LATENTS = ("joint", "each")


def joint_log_probs(logits: Tensor) -> Tensor:
    """[*B, K^D]: log p of every joint state of D independent categoricals [*B, D, K];
    state index sum_d s_d K^(D-1-d) (the first latent most significant)."""
    per_latent = torch.log_softmax(logits, -1)
    joint = per_latent[..., 0, :]
    for d in range(1, logits.shape[-2]):
        joint = (joint.unsqueeze(-1) + per_latent[..., d, :].unsqueeze(-2)).flatten(-2)
    return joint


def decode(index: Tensor, dims: int, classes: int) -> Tensor:
    """Joint-state indices [*B, k] as one-hot samples [k, *B, D, K]."""
    place = classes ** torch.arange(dims - 1, -1, -1, device=index.device)  # [D]
    digits = torch.div(index.unsqueeze(-1), place, rounding_mode="floor") % classes  # [*B, k, D]
    one_hot = torch.zeros(digits.shape + (classes,), device=index.device).scatter(-1, digits.unsqueeze(-1), 1.0)
    return one_hot.movedim(-3, 0)


@cache
def _subsets(k: int) -> tuple[list[list[int]], list[dict[int, int]]]:
    """Subsets of range(k) as bit masks, by size: (masks per size, position of each mask in its size)."""
    levels = [[sum(1 << t for t in c) for c in itertools.combinations(range(k), size)] for size in range(k + 1)]
    return levels, [{m: i for i, m in enumerate(level)} for level in levels]


def outside(joint: Tensor, index: Tensor) -> Tensor:
    """log(1 - p(S)) [*B, 1] of the states ``index`` [*B, k] of the normalized joint
    log-probabilities ``joint`` [*B, M], summed over the states outside S (no cancellation)."""
    drawn = torch.zeros_like(joint, dtype=torch.bool).scatter(-1, index, True)
    return torch.logsumexp(joint.masked_fill(drawn, float("-inf")), -1, keepdim=True)


def set_log_probs(log_p: Tensor, log_outside: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """log Q(A) = log p^{D \\ A}(S \\ A) for A = {}, {s}, {s, s'}: [*B], [*B, k], [*B, k, k]
    (the diagonal of the last is log Q({s})), for a set S of k distinct outcomes with
    log-probabilities ``log_p`` [*B, k] and log(1 - p(S)) ``log_outside`` [*B, 1]."""
    k = log_p.shape[-1]
    levels, position = _subsets(k)
    device = log_p.device
    log_q = [None] * (k + 1)
    log_q[k] = torch.zeros_like(log_p[..., :1])  # Q(S) = 1
    for size in range(k - 1, -1, -1):
        masks = levels[size]
        member = torch.tensor([[bool(m >> t & 1) for t in range(k)] for m in masks], device=device)  # [n, k]
        following = torch.tensor(
            [[position[size + 1][m | 1 << t] if not m >> t & 1 else 0 for t in range(k)] for m in masks],
            device=device,
        )  # [n, k]: where A + t sits in the next size
        # log(1 - p(A)): the classes outside S plus those of S \ A
        rest = torch.logaddexp(log_outside, log_p.unsqueeze(-2).masked_fill(member, float("-inf")).logsumexp(-1))
        terms = log_p.unsqueeze(-2) - rest.unsqueeze(-1) + log_q[size + 1][..., following]  # [*B, n, k]
        log_q[size] = terms.masked_fill(member, float("-inf")).logsumexp(-1)  # [*B, n]
    pairs = torch.tensor(
        [[position[2][1 << s | 1 << t] if s != t else 0 for t in range(k)] for s in range(k)], device=device
    ) if k >= 2 else None
    second = log_q[2][..., pairs] if k >= 2 else log_q[1].unsqueeze(-1)  # [*B, k, k]
    diagonal = torch.eye(k, dtype=torch.bool, device=device)
    second = torch.where(diagonal, log_q[1].unsqueeze(-1).expand_as(second), second)
    return log_q[0][..., 0], log_q[1], second


@register("unordered_set")
class UnorderedSet(Estimator):
    families = frozenset({"categorical", SEQUENCE})
    unbiased = True

    def __init__(self, num_samples: int = 4, latents: str = "joint") -> None:
        super().__init__()
        self.num_samples = check_count("unordered_set num_samples", num_samples, 1)
        if self.num_samples > MAX_SAMPLES:
            raise ValueError(f"unordered_set num_samples must be <= {MAX_SAMPLES} (2^k subsets), got {num_samples!r}")
        if latents not in LATENTS:
            raise ValueError(f"unknown unordered_set latents {latents!r}; valid: {', '.join(LATENTS)}")
        self.latents = latents

    def weights(self, log_p: Tensor, log_outside: Tensor) -> tuple[Tensor, Tensor | None]:
        """(p(s) R(S, s) [*B, k], p(s') R^{D\\s}(S, s') [*B, k, k] or None for k = 1) of a set
        with log-probabilities ``log_p`` [*B, k] and log(1 - p(S)) ``log_outside`` [*B, 1], detached."""
        log_set, log_without_s, log_without_ss = set_log_probs(log_p, log_outside)
        weight = (log_p + log_without_s - log_set.unsqueeze(-1)).exp()
        if log_p.shape[-1] == 1:
            return weight, None
        return weight, (log_p.unsqueeze(-2) + log_without_ss - log_without_s.unsqueeze(-1)).exp()

    def set_terms(self, values: Tensor, log_p: Tensor, set_log_p: Tensor, log_outside: Tensor) -> tuple[Tensor, Tensor]:
        """(score term, weighted f) [*B] of sets with detached log-probabilities ``set_log_p``
        [*B, k] and log(1 - p(S)) ``log_outside`` [*B, 1], from f at the members [k, *B] and
        their differentiable log p [k, *B]; the second is sum_s p(s) R(S, s) f(s)."""
        weight, baseline_weight = self.weights(set_log_p, log_outside)
        weight = weight.movedim(-1, 0)  # [k, *B]
        if baseline_weight is None:
            baseline = torch.zeros_like(values)
        else:  # B_s = sum_s' w_ss' f(s')
            baseline = (baseline_weight * values.detach().movedim(0, -1).unsqueeze(-2)).sum(-1).movedim(-1, 0)
        return (weight * (values - baseline).detach() * log_p).sum(0), (weight * values).sum(0)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        if family == SEQUENCE:
            return self.sequences(logits, f)
        if self.latents == "each":
            return self.each(logits, f, family)
        dims, classes = logits.shape[-2:]
        if classes**dims > MAX_STATES:
            raise ValueError(
                f"unordered_set latents=joint treats D categoricals as one over K^D joint states; D={dims}, "
                f"K={classes} gives {classes}**{dims} > {MAX_STATES}; latents=each samples a set per latent"
            )
        k = min(self.num_samples, classes**dims)
        joint = joint_log_probs(logits.detach())  # [*B, M]
        index = gumbel_top_k(joint, k)  # [*B, k], distinct states
        z = decode(index, dims, classes).to(logits.dtype)  # [k, *B, D, K]
        values = self.evaluate(f, z, logits, family)  # [k, *B]
        score, weighted = self.set_terms(values, log_prob(z, logits, family), joint.gather(-1, index), outside(joint, index))
        return Estimate((score + weighted).mean(), weighted.detach().mean(), k)

    def sequences(self, policy, f: Objective) -> Estimate:
        """Family sequence: a set of k distinct sequences by stochastic beam search."""
        count = policy.vocab**policy.length
        k = min(self.num_samples, count)
        beam = stochastic_beam_search(policy, k)
        values = self.evaluate(f, beam.sequences, policy, SEQUENCE)  # [k]
        mass = torch.logsumexp(beam.log_probs, -1, keepdim=True).clamp(max=0.0)  # log p(S), [1]
        log_outside = torch.full_like(mass, float("-inf")) if k == count else log1mexp(mass)
        score, weighted = self.set_terms(values, log_prob(beam.sequences, policy, SEQUENCE), beam.log_probs, log_outside)
        return Estimate(score + weighted, weighted.detach(), k)

    def each(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        """latents=each: one shared sample z, and for each latent d a set of k of its classes with
        the other latents held at z; f at D k configurations."""
        dims, classes = logits.shape[-2:]
        k = min(self.num_samples, classes)
        per_latent = torch.log_softmax(logits.detach(), -1)  # [*B, D, K]
        base = gumbel_max(per_latent)  # [*B, D, K]
        index = gumbel_top_k(per_latent, k)  # [*B, D, k]
        choice = torch.zeros(index.shape + (classes,), dtype=logits.dtype, device=logits.device)
        choice = choice.scatter(-1, index.unsqueeze(-1), 1.0).movedim(-2, 0).movedim(-2, 1)  # [k, D, *B, K]
        batch = logits.dim() - 2
        replaced = torch.eye(dims, dtype=torch.bool, device=logits.device).reshape((1, dims) + (1,) * batch + (dims, 1))
        z = torch.where(replaced, choice.unsqueeze(-2), base)  # [k, D (set), *B, D (latent), K]
        values = self.evaluate(f, z.flatten(0, 1), logits, family).unflatten(0, (k, dims)).movedim(1, -1)  # [k, *B, D]
        log_p = torch.log_softmax(logits, -1).gather(-1, index).movedim(-1, 0)  # [k, *B, D]
        set_log_p = per_latent.gather(-1, index)  # [*B, D, k]
        score, weighted = self.set_terms(values, log_p, set_log_p, outside(per_latent, index))  # [*B, D] each
        return Estimate((score.sum(-1) + weighted.mean(-1)).mean(), weighted.detach().mean(), dims * k)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, latents={self.latents}"
