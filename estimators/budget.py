r"""Equal-budget comparison: any estimator, averaged to spend a fixed number of evaluations of f.

With ``budget=E`` the run loop wraps its estimator(s) in :class:`Budgeted`: one estimate is
the mean of k independent estimates of the inner estimator, k = max(1, floor(E / e)) where e
is the inner estimator's evaluations per estimate, so a 1-evaluation estimator averages E
draws and a 2-evaluation one (arm, disarm, reinforce with 2 samples) averages E / 2:

.. math:: \hat g_E = \frac{1}{k} \sum_{i=1}^{k} \hat g^{(i)}, \qquad \mathrm{Var}[\hat g_E] = \mathrm{Var}[\hat g] / k

Bias is unchanged; the variance falls by k, and stats.csv's ``evaluations`` is k e. The
inner estimator keeps its name, temperature and settings (the budget is added to them).
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import Estimate, Estimator, Objective, check_count


class Budgeted(Estimator):
    """``inner`` averaged over as many independent draws as ``budget`` evaluations of f allow."""

    def __init__(self, inner: Estimator, budget: int) -> None:
        super().__init__()
        self.inner = inner
        self.budget = check_count("budget", budget, 1)
        self.families, self.unbiased, self.vmappable = inner.families, inner.unbiased, type(inner).vmappable
        self.learns_temperature, self.control_lr = inner.learns_temperature, inner.control_lr

    def label(self) -> str:  # type: ignore[override]  # the inner estimator's name, per instance
        return self.inner.label()

    @property
    def temperature(self) -> float | None:  # type: ignore[override]
        return self.inner.temperature

    def set_temperature(self, value: float) -> None:
        self.inner.set_temperature(value)

    def learned_values(self) -> dict[str, float]:
        return self.inner.learned_values()

    def objective_note(self) -> str | None:
        return self.inner.objective_note()

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        first = self.inner(logits, f, family)
        draws = [first] + [self.inner(logits, f, family) for _ in range(max(1, self.budget // first.evaluations) - 1)]
        k = len(draws)
        losses = [d.control_loss for d in draws if d.control_loss is not None]
        return Estimate(
            sum(d.surrogate for d in draws) / k, sum(d.value for d in draws) / k, sum(d.evaluations for d in draws),
            sum(losses) / len(losses) if losses else None,
        )

    def extra_repr(self) -> str:
        inner = self.inner.extra_repr()
        return f"{inner}, budget={self.budget}" if inner else f"budget={self.budget}"
