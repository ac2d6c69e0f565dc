r"""Temperature schedules (conf/schedule/): the one writer of an estimator's temperature.

The run loop builds the schedule with ``initial`` = the trained estimator's temperature (its
``temperature`` knob) and applies ``schedule(step)`` through ``Estimator.set_temperature``
to every probed and trained estimator that has a temperature and does not learn it, before
every probe and every training step, step 0 included. ``constant`` leaves tau_0 as it is.
"""
from __future__ import annotations

import math

from estimators.base import check_temperature


class Constant:
    """tau_t = tau_0."""

    constant = True

    def __init__(self, initial: float) -> None:
        self.initial = check_temperature(initial)

    def __call__(self, step: int) -> float:
        return self.initial


class Exponential:
    r"""tau_t = max(tau_min, tau_0 exp(-r t')), with t' = step rounded down to a multiple of
    ``interval`` (the temperature changes every ``interval`` steps).

    Jang et al. (2017), Categorical reparameterization with Gumbel-softmax: tau_0 = 1,
    tau_min = 0.5, r = 1e-5 or 1e-4, updated every 1000 steps.
    """

    constant = False

    def __init__(self, initial: float, minimum: float = 0.5, rate: float = 3e-5, interval: int = 1000) -> None:
        self.initial = check_temperature(initial)
        self.minimum = check_temperature(minimum)
        if rate < 0:
            raise ValueError(f"schedule rate must be >= 0, got {rate!r}")
        if int(interval) != interval or interval < 1:
            raise ValueError(f"schedule interval must be an integer >= 1, got {interval!r}")
        self.rate, self.interval = float(rate), int(interval)

    def __call__(self, step: int) -> float:
        t = step - step % self.interval
        return max(self.minimum, self.initial * math.exp(-self.rate * t))
