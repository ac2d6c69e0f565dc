"""The estimator registry: ``@register("name")`` on a class makes it findable by name.

Hydra instantiates estimators through ``_target_`` in ``conf/estimator/NAME.yaml``; the
registry is what lists the valid names in errors, in ``discograd list`` and in tests that
run every estimator through the same contract. ``ESTIMATORS["foo"]`` raises
``primitives.registry.UnknownName`` with the valid names.
"""
from __future__ import annotations

import inspect
from typing import Any

from primitives.registry import Registry

ESTIMATORS = Registry("estimator")
register = ESTIMATORS.register


def needs_latent_shape(cls: type) -> bool:
    """Whether ``cls``'s constructor takes the task's ``latent_shape``."""
    return "latent_shape" in inspect.signature(cls).parameters


def construction(cls: type, latent_shape: tuple[int, ...] | None) -> dict[str, Any]:
    """What the builder adds to an estimator's knobs: ``latent_shape`` for an estimator whose
    constructor takes it (one with a network over the latent, e.g. RELAX), so that every part
    is built in the constructor, never lazily."""
    if not needs_latent_shape(cls):
        return {}
    if latent_shape is None:
        raise ValueError(f"estimator {cls.label()!r} needs the task's latent_shape to be built")
    return {"latent_shape": tuple(latent_shape)}


def create(name: str, temperature: float | None = None, latent_shape: tuple[int, ...] | None = None, **knobs: Any) -> Any:
    """The registered estimator ``name`` with ``knobs`` (else its defaults), at ``temperature``
    if it takes one, built for ``latent_shape`` where it needs it (what benchmarks and tests
    use to build every estimator the same way)."""
    cls = ESTIMATORS[name]
    if temperature is not None and "temperature" in inspect.signature(cls).parameters:
        knobs["temperature"] = temperature
    return cls(**knobs, **construction(cls, latent_shape))
