"""Gradient estimators for discrete latents, one module each, registered by name."""
from estimators import gumbel_softmax, reinforce, sigmoid_st, st, st_gumbel_softmax  # noqa: F401  (fill the registry)
from estimators.base import Estimate, Estimator
from estimators.registry import ESTIMATORS, register

__all__ = ["ESTIMATORS", "Estimate", "Estimator", "register"]
