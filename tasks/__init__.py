"""Tasks: the parameters, logits and objective an estimator is measured on; registered by name."""
from tasks import binary_vae, categorical_vae, mrf, polynomial, sequence, toy_quadratic  # noqa: F401  (fill the registry)
from tasks.base import Task
from tasks.registry import TASKS, register

__all__ = ["TASKS", "Task", "register"]
