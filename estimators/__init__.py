"""Gradient estimators for discrete latents, one module each, registered by name."""
from estimators import (  # noqa: F401  (fill the registry)
    arm, arms, decoupled_st, disarm, double_cv, exact, gst, gumbel_rao, gumbel_softmax, indecater,
    grpo, muprop, rebar, reinforce, reinmax, relax, rodeo, sigmoid_st, st, st_gumbel_softmax,
    unordered_set, zgr,
)
from estimators.base import Estimate, Estimator
from estimators.registry import ESTIMATORS, register

__all__ = ["ESTIMATORS", "Estimate", "Estimator", "register"]
