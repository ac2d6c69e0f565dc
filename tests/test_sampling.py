"""Gumbel primitives: inverse-CDF noise and Gumbel-max sampling (estimators/sampling.py).

Seeds are fixed; each test's p-value threshold is ALPHA = 1e-4 (tests/helpers.py). The
sample sizes make the wrong samplers in the power checks fail with p-values below 1e-20.
"""
import numpy as np
import pytest
import torch
from scipy import stats

from estimators.sampling import gumbel_from_uniform, gumbel_max, gumbel_noise
from helpers import ALPHA

N = 200_000


def test_gumbel_noise_is_gumbel():
    torch.manual_seed(0)
    g = gumbel_noise((N,), torch.zeros((), dtype=torch.float64)).numpy()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > ALPHA
    # power: the same test rejects a standard logistic (a plausible mix-up) at this N
    assert stats.kstest(g, stats.logistic.cdf).pvalue < 1e-20


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gumbel_noise_is_finite_at_the_ends(dtype):
    info = torch.finfo(dtype)
    u = torch.tensor([0.0, info.tiny / 2, info.tiny, 0.5, 1.0 - info.eps, 1.0 - info.eps / 4, 1.0], dtype=dtype)
    g = gumbel_from_uniform(u)
    assert torch.isfinite(g).all()
    assert (g[1:] >= g[:-1]).all()  # monotone: the inverse CDF keeps the order of u


def _chi_square_p(samples: torch.Tensor, probs: torch.Tensor) -> float:
    counts = samples.reshape(-1, probs.shape[-1]).sum(0).numpy()
    return stats.chisquare(counts, probs.numpy() * counts.sum()).pvalue


def test_gumbel_max_samples_the_softmax():
    torch.manual_seed(1)
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5, -2.0], dtype=torch.float64)
    samples = gumbel_max(logits, (N,))
    assert samples.shape == (N, 5)
    assert ((samples == 0) | (samples == 1)).all() and (samples.sum(-1) == 1).all()
    assert _chi_square_p(samples, torch.softmax(logits, -1)) > ALPHA
    # power: softmax at temperature 2 (a wrong temperature) is rejected by the same test
    assert _chi_square_p(samples, torch.softmax(logits / 2, -1)) < 1e-20


def test_gumbel_max_batches_independently():
    torch.manual_seed(2)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    samples = gumbel_max(logits, (N // 4,))  # [S, 2, 3]
    for row in range(2):
        assert _chi_square_p(samples[:, row], torch.softmax(logits[row].double(), -1)) > ALPHA
