"""The task registry: ``@register("name")`` on a class makes it findable by name.

It mirrors estimators/registry.py on purpose: tasks never import estimators (only their
sampling primitives, estimators/sampling.py), and estimators never import tasks.
"""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T", bound=type)

TASKS: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: record ``cls`` under ``name`` and set ``cls.name``."""

    def add(cls: T) -> T:
        if name in TASKS:
            raise ValueError(f"task {name!r} is registered twice")
        cls.name = name
        TASKS[name] = cls
        return cls

    return add
