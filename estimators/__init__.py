"""Gradient estimators for discrete latents, one module each, registered by name."""
from estimators import (  # noqa: F401  (fill the registry)
    arm, disarm, exact, gumbel_rao, gumbel_softmax, muprop, rebar, reinforce,
    reinmax, relax, sigmoid_st, st, st_gumbel_softmax, unordered_set,
)
from estimators.base import Estimate, Estimator
from estimators.registry import ESTIMATORS, register

__all__ = ["ESTIMATORS", "Estimate", "Estimator", "register"]
