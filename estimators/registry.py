"""The estimator registry: ``@register("name")`` on a class makes it findable by name.

Hydra instantiates estimators through ``_target_`` in ``conf/estimator/NAME.yaml``; the
registry is what lists the valid names in errors, in ``discograd`` checks and in tests that
run every estimator through the same contract.
"""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T", bound=type)

ESTIMATORS: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: record ``cls`` under ``name`` and set ``cls.name``."""

    def add(cls: T) -> T:
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} is registered twice")
        cls.name = name
        ESTIMATORS[name] = cls
        return cls

    return add


def get(name: str) -> type:
    """The estimator class registered as ``name``; a KeyError lists the valid names."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise KeyError(f"unknown estimator {name!r}; valid: {', '.join(sorted(ESTIMATORS))}") from None
