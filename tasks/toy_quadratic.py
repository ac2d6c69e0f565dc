r"""The toy quadratic of REBAR and RELAX, for both families, with its exact gradient.

z holds D independent variables with logits theta (the parameters, and the estimand):

.. math::
    f(z) = \frac{1}{D} \sum_d \lVert z_d - t \rVert^2, \qquad
    \mathbb{E}[f] = \frac{1}{D} \sum_d \Big(\lVert t \rVert^2 + \sum_k p_{dk} (1 - 2 t_k)\Big)

using z_k^2 = z_k for binary and one-hot z. bernoulli: z_d in {0, 1}, p_d = sigmoid(theta_d),
t a scalar (default 0.45 as in [1, 2]). categorical: z_d one-hot over K, p_d = softmax(theta_d),
t a probability vector over K, or a scalar t standing for (t, (1-t)/(K-1), ..., (1-t)/(K-1)).

It is the polynomial task (tasks/polynomial.py) at power p = 2, where |1 - t|^2 - |t|^2 = 1 - 2t,
with two differences: a categorical latent's K squared differences are summed (the squared
distance; the polynomial task averages them), and there is no batch of copies (logits [D(, K)]).
Objective, closed forms, exact gradient and knob checks are the polynomial task's.

References:
    [1] G. Tucker et al. (2017). REBAR: low-variance, unbiased gradient estimates for discrete
        latent variable models.
    [2] W. Grathwohl et al. (2018). Backpropagation through the void: optimizing control
        variates for black-box gradient estimation.
"""
from __future__ import annotations

from typing import Any, Sequence

from tasks.polynomial import Polynomial
from tasks.registry import register


@register("toy_quadratic")
class ToyQuadratic(Polynomial):
    sum_over_classes = True

    def __init__(
        self,
        family: str = "bernoulli",
        dims: int = 1,
        classes: int = 2,
        target: float | Sequence[float] = 0.45,
        init_logit: float | Sequence[Any] = 0.0,
        lr: float = 0.01,
    ) -> None:
        super().__init__(family, dims, classes, 2.0, target, init_logit, lr, batch_size=None)
