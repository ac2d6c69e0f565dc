"""Shared pieces of the statistical tests.

False-alarm policy: every statistical assertion is a test at family-wise level ALPHA = 1e-4
(Bonferroni over the coordinates it looks at), with a fixed seed, so a correct
implementation fails about once in 10^4 seeds. Sample sizes are chosen so that the broken
variants the tests also run (sign flip, baseline not left out, wrong temperature) sit many
standard errors past the same threshold.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm

from discograd.probe import draw_estimates
from estimators import Estimator
from tasks import Task

ALPHA = 1e-4


def z_crit(tests: int, alpha: float = ALPHA) -> float:
    """Two-sided threshold for the max of ``tests`` |z| scores at family-wise level alpha."""
    return float(norm.isf(alpha / (2 * tests)))


def mean_z(estimates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-coordinate z-scores of the sample mean of estimates [N, P] against target [P]."""
    x = np.asarray(estimates, dtype=np.float64)
    se = x.std(0, ddof=1) / np.sqrt(x.shape[0])
    gap = x.mean(0) - np.asarray(target, dtype=np.float64).reshape(-1)
    # a coordinate every draw agrees on (a VAE weight on an always-blank pixel) has se 0: its
    # z is 0 if the draws equal the target to rounding, else infinite (a certain failure)
    exact = np.abs(gap) <= 1e-6 * (1 + np.abs(x).max(0))
    return np.divide(gap, se, out=np.where(exact, 0.0, np.inf), where=se > 0)


def max_abs_z(estimates: np.ndarray, target: np.ndarray) -> float:
    return float(np.abs(mean_z(estimates, target)).max())


def draw(task: Task, estimator: Estimator, samples: int, vectorize: bool = True, seed: int = 0) -> np.ndarray:
    """[N, P] gradient estimates of the task's estimand through the real probe."""
    torch.manual_seed(seed)
    return draw_estimates(task, estimator, task.probe_batch(), samples, chunk=samples, vectorize=vectorize).estimates


def exact(task: Task) -> np.ndarray:
    grads = task.exact_gradient(task.probe_batch())
    return torch.cat([grads[n].reshape(-1) for n in task.estimand()]).detach().numpy()
