"""Stochastic beam search (primitives/beam_search.py) against the exact law of a sample without
replacement on a tiny policy whose K^L sequences are enumerated.

The unordered set of k sequences is one categorical over the C(K^L, k) sets, with exact
probabilities summed from the Plackett-Luce probabilities of its k! orderings; the R drawn
sets are tested with one chi-square goodness-of-fit (inclusion indicators are dependent across
sequences, so counting them separately would not give a valid test). The scores are tested
too: the best is Gumbel(0) (the root's score), the k-th is the k-th largest of independent
Gumbel(log p(y)), checked by Kolmogorov-Smirnov against its exact CDF.

False alarms: fixed seeds; each assertion is at level ALPHA_EACH = 1e-5, at most 3 per test,
so a correct search fails a test with probability below 1e-4 (tests/helpers.py's policy).
Power: searching without truncating the children's Gumbels at their parent's score is
rejected by the same chi-square at the same R, with a statistic hundreds of times past the
threshold. Searches are batched with torch.func.vmap (R = 2e5 in well under a second).
"""
import functools
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from primitives import beam_search
from primitives.beam_search import Beam, stochastic_beam_search
from primitives.sampling import plackett_luce_log_prob
from primitives.sequences import enumerate_sequences, log_prob

ALPHA_EACH = 1e-5
R = 200_000
SHAPES = [(2, 3, 2), (3, 2, 3)]  # (L, K, k): 36 and 56 possible sets


class Tabular:
    """A tiny policy whose state is a tuple (so that the search reorders every part of it):
    logits_t = theta[t, previous token (K for the start)] + counts of the tokens so far @ mix[t]."""

    def __init__(self, length: int, vocab: int, seed: int, scale: float = 1.0, dtype=torch.float64):
        generator = torch.Generator().manual_seed(seed)
        self.length, self.vocab = length, vocab
        self.theta = scale * torch.randn(length, vocab + 1, vocab, generator=generator, dtype=dtype)
        self.mix = scale * torch.randn(length, vocab, vocab, generator=generator, dtype=dtype) / 2

    def start(self, shape):
        previous = torch.full(shape, self.vocab, dtype=torch.long)
        return previous, torch.zeros(*shape, self.vocab, dtype=self.theta.dtype)

    def next_logits(self, state, t):
        previous, counts = state
        return self.theta[t, previous] + counts @ self.mix[t]  # [*shape, K]

    def advance(self, state, token, t):
        _, counts = state
        return token.argmax(-1), counts + token


def _index(sequences: torch.Tensor) -> np.ndarray:
    """Lexicographic index (enumerate_sequences' order) of one-hot sequences [*S, L, K] -> [*S]."""
    length, vocab = sequences.shape[-2:]
    place = vocab ** torch.arange(length - 1, -1, -1)
    return (sequences.argmax(-1) * place).sum(-1).numpy()


def _set_probabilities(policy: Tabular, k: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Every unordered set of k sequences and its exact probability, the sum over its k!
    orderings of their Plackett-Luce probability on p(y) of the K^L sequences."""
    everything = enumerate_sequences(policy.length, policy.vocab, like=policy.theta)
    log_p = log_prob(policy, everything)  # [K^L]
    sets = list(itertools.combinations(range(len(log_p)), k))
    orders = torch.tensor([order for s in sets for order in itertools.permutations(s)])
    probs = plackett_luce_log_prob(log_p, orders).exp().reshape(len(sets), math.factorial(k))
    return sets, probs.sum(-1).numpy()


def _draw(policy: Tabular, k: int, seed: int) -> Beam:
    torch.manual_seed(seed)
    search = torch.func.vmap(lambda _: stochastic_beam_search(policy, k), randomness="different")
    return search(torch.zeros(R))  # a Beam of [R, k, ...]


def _set_chi_square(beam: Beam, policy: Tabular, k: int) -> tuple[float, float]:
    """(statistic, threshold at ALPHA_EACH) of the drawn sets against their exact law."""
    sets, probs = _set_probabilities(policy, k)
    size = policy.vocab**policy.length
    place = size ** np.arange(k - 1, -1, -1)
    lookup = np.full(size**k, -1)
    lookup[np.array(sets) @ place] = np.arange(len(sets))
    drawn = lookup[np.sort(_index(beam.sequences), -1) @ place]  # [R] set ids
    assert (drawn >= 0).all()
    observed, expected = np.bincount(drawn, minlength=len(sets)), R * probs
    # every expected count >= 5: the rule under which the chi-square law of the statistic holds
    assert abs(probs.sum() - 1) < 1e-12 and expected.min() >= 5
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.isf(ALPHA_EACH, len(sets) - 1))


def _kth_largest_cdf(log_p: np.ndarray, k: int, x: np.ndarray) -> np.ndarray:
    """P(k-th largest of independent G_y ~ Gumbel(log p_y) <= x): at most k - 1 exceed x,
    a Poisson-binomial count summed over the sequences by dynamic programming."""
    x = np.atleast_1d(x)  # [X]
    exceed = -np.expm1(-np.exp(log_p[:, None] - x))  # [N, X] P(G_y > x)
    counts = np.zeros((k, len(x)))  # counts[j]: P(j of the sequences so far exceed x), j < k
    counts[0] = 1.0
    for q in exceed:
        counts[1:] = counts[1:] * (1 - q) + counts[:-1] * q
        counts[0] = counts[0] * (1 - q)
    return counts.sum(0)


@pytest.mark.parametrize("length, vocab, k", SHAPES)
def test_sets_and_scores_have_the_law_of_sampling_without_replacement(length, vocab, k):
    policy = Tabular(length, vocab, seed=length)
    beam = _draw(policy, k, seed=10 + length)
    assert beam.sequences.shape == (R, k, length, vocab) and beam.perturbed.shape == (R, k)
    statistic, threshold = _set_chi_square(beam, policy, k)
    assert statistic < threshold, (statistic, threshold)
    log_p = log_prob(policy, enumerate_sequences(length, vocab, like=policy.theta)).numpy()
    best, kth = beam.perturbed[:, 0].numpy(), beam.perturbed[:, -1].numpy()
    assert stats.kstest(best, stats.gumbel_r.cdf).pvalue > ALPHA_EACH
    assert stats.kstest(kth, functools.partial(_kth_largest_cdf, log_p, k)).pvalue > ALPHA_EACH


@pytest.mark.parametrize("length, vocab, k", SHAPES)
def test_untruncated_children_are_rejected(length, vocab, k, monkeypatch):
    """Power: children's Gumbels not conditioned on their parent's score (G~_c = G_c) give a
    different law of the set; the same test at the same R sees it far past the threshold."""
    monkeypatch.setattr(beam_search, "_truncate", lambda gumbels, bound: gumbels)
    policy = Tabular(length, vocab, seed=length)
    statistic, threshold = _set_chi_square(_draw(policy, k, seed=10 + length), policy, k)
    assert statistic > 100 * threshold, (statistic, threshold)


@pytest.mark.parametrize("scale, dtype", [(1.0, torch.float64), (300.0, torch.float32)])
def test_beam_is_distinct_scored_sorted_and_finite(scale, dtype):
    """Also with huge logits in float32 (300 x N(0, 1) tables: |logits| from 16 to 700, log p
    down to -1400; k = 9 keeps every sequence): everything stays finite and log_probs agree
    with teacher forcing."""
    policy = Tabular(2, 3, seed=0, scale=scale, dtype=dtype)
    for seed, k in enumerate([1, 2, 5, 9]):
        torch.manual_seed(seed)
        beam = stochastic_beam_search(policy, k)
        assert beam.sequences.shape == (k, 2, 3) and beam.sequences.dtype == dtype
        assert ((beam.sequences == 0) | (beam.sequences == 1)).all()
        assert (beam.sequences.sum(-1) == 1).all()
        assert len(set(_index(beam.sequences).tolist())) == k
        assert torch.isfinite(beam.log_probs).all() and torch.isfinite(beam.perturbed).all()
        assert (beam.perturbed[1:] <= beam.perturbed[:-1]).all()
        teacher_forced = log_prob(policy, beam.sequences)
        # the same sums in another order: rounding only
        rtol = 1e-6 if dtype == torch.float32 else 1e-12
        assert torch.allclose(beam.log_probs, teacher_forced, rtol=rtol)


def test_k_equal_to_every_sequence_returns_every_sequence():
    policy = Tabular(3, 2, seed=1)
    torch.manual_seed(0)
    beam = stochastic_beam_search(policy, 8)
    assert sorted(_index(beam.sequences).tolist()) == list(range(8))


@pytest.mark.parametrize("k", [0, 10])
def test_k_out_of_range_is_rejected_with_the_values(k):
    with pytest.raises(ValueError, match=rf"1 <= k <= K\^L = 3\^2 = 9 .*got k={k}"):
        stochastic_beam_search(Tabular(2, 3, seed=0), k)


def test_reproducible_under_manual_seed():
    policy = Tabular(3, 2, seed=2)
    beams = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        beams.append(stochastic_beam_search(policy, 3))
    fields = ("sequences", "log_probs", "perturbed")
    assert all(torch.equal(getattr(beams[0], f), getattr(beams[1], f)) for f in fields)
    assert not torch.equal(beams[0].perturbed, beams[2].perturbed)
