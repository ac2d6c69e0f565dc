"""The estimator registry: ``@register("name")`` on a class makes it findable by name.

Hydra instantiates estimators through ``_target_`` in ``conf/estimator/NAME.yaml``; the
registry is what lists the valid names in errors, in ``discograd`` checks and in tests that
run every estimator through the same contract.
"""
from discograd.registry import Registry

ESTIMATORS = Registry("estimator")
register = ESTIMATORS.register
