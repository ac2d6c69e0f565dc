"""Registries by name, shared by estimators/ and tasks/ (which never import each other).

``@ESTIMATORS.register("name")`` records a class and names it; ``Named`` gives the class
its ``name`` ("" until registered, never inherited) and the ``label()`` that runs, tables
and errors use.
"""
from __future__ import annotations

from typing import Callable, ClassVar, TypeVar

T = TypeVar("T", bound=type)


class UnknownName(KeyError):
    """A registry lookup of a name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError's own str() quotes the message
        return str(self.args[0])


class Registry(dict):
    """name -> class, for one kind of plugin ("estimator", "task"); an unknown name raises
    UnknownName listing the valid names."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: record ``cls`` under ``name`` and set ``cls.name``."""

        def add(cls: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.name = name
            self[name] = cls
            return cls

        return add

    def __getitem__(self, name: str) -> T:
        if name not in self:
            raise UnknownName(f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self))}")
        return super().__getitem__(name)


class Named:
    """A registrable class: ``name`` is its registry name, "" for an unregistered class."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__dict__.get("name", "")  # a subclass is not its parent: register names it, or nobody does

    @classmethod
    def label(cls) -> str:
        """How runs, tables and errors name this class: its registry name, else its class name."""
        return cls.name or cls.__name__
