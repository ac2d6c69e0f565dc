"""Draws with known truth, in numpy, for the statistics' tests (thousands of repetitions in seconds).

``reinforce_toy`` is REINFORCE without a baseline on the bernoulli toy quadratic
f(z) = sum_j (z_j - t)^2 with every logit theta: the estimate f(z) (z - p) is two-valued per
coordinate and skewed, its coordinates coupled through f, so its covariance has a few
effective dimensions. Its exact mean and trace of covariance are closed forms below.
"""
from __future__ import annotations

import numpy as np


def reinforce_toy(rng: np.random.Generator, shape: tuple[int, ...], dims: int, theta: float, t: float = 0.45) -> np.ndarray:
    """[*shape, dims] estimates."""
    p = 1 / (1 + np.exp(-theta))
    z = (rng.random((*shape, dims)) < p).astype(np.float64)
    return ((z - t) ** 2).sum(-1, keepdims=True) * (z - p)


def reinforce_toy_truth(dims: int, theta: float, t: float = 0.45) -> tuple[np.ndarray, float]:
    """(the exact gradient [dims], the exact tr(Cov) of one estimate).

    E f (z_j - p) = (1 - 2t) p (1 - p) per coordinate. For the trace, with c = (z - t)^2 and
    S the sum of c over the other coordinates: E[f^2 (z_j - p)^2] = sum over z_j of
    P(z_j) (z_j - p)^2 E[(c(z_j) + S)^2], E S = (D-1) m1, E S^2 = (D-1)(m2 - m1^2) + ((D-1) m1)^2.
    """
    p = 1 / (1 + np.exp(-theta))
    g = (1 - 2 * t) * p * (1 - p)
    c0, c1 = t**2, (1 - t) ** 2
    m1, m2 = (1 - p) * c0 + p * c1, (1 - p) * c0**2 + p * c1**2
    es, es2 = (dims - 1) * m1, (dims - 1) * (m2 - m1**2) + ((dims - 1) * m1) ** 2
    second = sum(prob * (z - p) ** 2 * (c**2 + 2 * c * es + es2) for z, prob, c in ((0, 1 - p, c0), (1, p, c1)))
    return np.full(dims, g), dims * (second - g**2)
