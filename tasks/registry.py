"""The task registry: ``@register("name")`` on a class makes it findable by name (as
estimators/registry.py; tasks never import estimators except their sampling primitives)."""
from primitives.registry import Registry

TASKS = Registry("task")
register = TASKS.register
