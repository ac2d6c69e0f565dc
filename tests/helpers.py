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

# the conformance kit's z-test pieces, one implementation for the kit and the tests
from discograd.conformance import ALPHA, mean_z, z_crit  # noqa: F401
from discograd.conformance import exact_gradient as exact  # noqa: F401
from discograd.probe import draw_estimates
from estimators import Estimator
from tasks import Task


def max_abs_z(estimates: np.ndarray, target: np.ndarray) -> float:
    return float(np.abs(mean_z(estimates, target)).max())


def draw(task: Task, estimator: Estimator, samples: int, vectorize: bool = True, seed: int = 0) -> np.ndarray:
    """[N, P] gradient estimates of the task's estimand through the real probe."""
    torch.manual_seed(seed)
    return draw_estimates(task, estimator, task.probe_batch(), samples, chunk=samples, vectorize=vectorize).estimates
