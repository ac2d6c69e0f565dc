"""The estimator registry: ``@register("name")`` on a class makes it findable by name.

Hydra instantiates estimators through ``_target_`` in ``conf/estimator/NAME.yaml``; the
registry is what lists the valid names in errors, in ``discograd`` checks and in tests that
run every estimator through the same contract.
"""
import inspect
from typing import Any

from discograd.registry import Registry

ESTIMATORS = Registry("estimator")
register = ESTIMATORS.register


def create(name: str, temperature: float) -> Any:
    """The registered estimator ``name`` with its defaults, at ``temperature`` if it takes one
    (what benchmarks use to build every estimator the same way)."""
    cls = ESTIMATORS[name]
    return cls(temperature=temperature) if "temperature" in inspect.signature(cls).parameters else cls()
