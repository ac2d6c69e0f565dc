r"""Double control variates: RLOO plus a global linear control variate built from f's gradient
at the samples, its analytic expectation added back.

K samples b_k ~ q(b | theta), theta = sigmoid(l), with f_k = f(b_k), g_k = \nabla_b f(b_k)
(the backward pass of the same K evaluations: f must accept relaxed values, as for MuProp),
the score s_k = b_k - theta (in the logits), the leave-one-out mean
\bar x_{-k} = \frac{1}{K-1} \sum_{j \ne k} x_j and \bar g = \frac{1}{K} \sum_k g_k. The
global control variate of sample k is the linear term of a Taylor expansion of f,
f(b) \approx f(\theta) + \nabla f^\top (b - \theta), with the slope \nabla f estimated from the
other samples, scaled by alpha [1]:

.. math::
    c_k = \alpha\, \bar g_{-k}^\top (b_k - \theta), \qquad
    \hat g_\ell = \frac{1}{K} \sum_{k=1}^{K} \Big(f_k - \overline{(f + c)}_{-k} + c_k\Big) s_k
                  - \alpha\, \theta (1 - \theta) \odot \bar g
                  + \frac{1}{K} \sum_k \nabla_\phi f(b_k; \phi)

Unbiased for every alpha: E[c_j s_k] = 0 for j != k (b_j - theta has mean 0 given the rest),
and E[c_k s_k] = alpha theta (1 - theta) E[g] (\bar g_{-k} is independent of b_k), which the
second term takes back out; the last term is f's own dependence on phi (pathwise). With
alpha = 0 this is REINFORCE with the leave-one-out baseline (RLOO). As in [1]'s code, alpha
starts at 0 and is learned (``learn``): in training mode the estimate carries ``control_loss``
= ||g||^2, g the estimate w.r.t. the logits as a function of alpha, and the run loop steps
alpha down its gradient with an Adam it builds (``lr``); nothing is learned in eval mode.
(The authors' loss is the mean square of the score part alone, without f's own pathwise
term, which has mean zero for an ELBO: nearly the same alpha, and both keep g unbiased.)

The authors' code read: github:thjashin/double-cv, src/networks.py lines 346-378 (the K = 2
and K = 4 estimators: c_k with the leave-one-out mean of grad_b, ``global_corr`` =
alpha grad_avg theta (1 - theta) subtracted, alpha a scalar initialized at 0, lines 134-139)
and src/experiment_launcher_singlelayer.py lines 122-142 (grad_b = d f / d b at the samples,
the variance loss mean(eta_grads^2), an Adam at hyper_lr = 1e-3, K = 2 by default, line 60);
the general-K form is github:thjashin/rodeo, networks.py lines 397-407. Ours is that formula
for any K >= 2, per batch element, and the logits' estimate reaches every parameter upstream
through the surrogate (the pathwise term through f's own graph).

Each batch element's value must depend on its own latents only (g is the gradient of the sum
over the batch). ``value`` is the mean of f over the K hard samples.
Cost: K evaluations of f (with one backward pass through them for g). Families: bernoulli.

References:
    [1] M. K. Titsias, J. Shi (2022). Double control variates for gradient estimation in
        discrete latent variable models. AISTATS.
    [2] W. Kool, H. van Hoof, M. Welling (2019). Buy 4 REINFORCE samples, get a baseline for free!
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import grad_and_value

from estimators.base import Estimate, Estimator, Objective, check_count
from estimators.registry import register
from primitives.families import sample


def leave_one_out(x: Tensor) -> Tensor:
    """[K, ...] -> [K, ...]: entry k is the mean of x over the other K - 1 samples."""
    return (x.sum(0, keepdim=True) - x) / (x.shape[0] - 1)


def values_and_slopes(
    f: Objective, z: Tensor, logits: Tensor, family: str
) -> tuple[Tensor, Tensor]:
    """f(z) [S, *B], still attached to phi (its gradient is the pathwise term), and
    d f / d z [S, *B, D] (detached), from one evaluation of f on z [S, *B, D]."""

    def total(x: Tensor) -> tuple[Tensor, Tensor]:
        values = Estimator.evaluate(f, x, logits, family)  # [S, *B]
        return values.sum(), values

    slopes, (_, values) = grad_and_value(total, has_aux=True)(z)
    return values, slopes.detach()


def check_scalar(name: str, value: float) -> float:
    """``value`` as a finite float, or a ValueError naming the knob."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@register("double_cv")
class DoubleCV(Estimator):
    """RLOO with control variates: :meth:`corrections` gives, per sample, a shift of the value
    the other samples' baseline uses and a term added to the estimate directly (RODEO,
    estimators/rodeo.py, overrides it with its Stein control variates)."""

    pathwise = True

    families = frozenset({"bernoulli"})
    unbiased = True

    def __init__(
        self, num_samples: int = 2, alpha: float = 0.0, learn: bool = True, lr: float = 1e-3
    ) -> None:
        super().__init__()
        label = self.label()
        self.num_samples = check_count(f"{label} num_samples", num_samples, 2)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"{label} lr must be > 0, got {lr!r}")
        self.alpha = nn.Parameter(torch.tensor(check_scalar(f"{label} alpha", alpha)))
        self.learn = bool(learn)
        self.control_lr = float(lr) if self.learn else None

    def learned_values(self) -> dict[str, float]:
        return {"alpha": float(self.alpha.detach())} if self.learn else {}

    def controls(self, learning: bool) -> dict[str, Tensor]:
        """The control variates' parameters by name: the parameters themselves when learning
        (control_loss differentiates through them), else detached."""
        return {n: p if learning else p.detach() for n, p in self.named_parameters()}

    def corrections(
        self, z: Tensor, values: Tensor, slopes: Tensor, theta: Tensor, controls: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """(c [K, *B], the baseline shift, and c_k s_k - alpha theta (1 - theta) g-bar
        [K, *B, D], the direct term) from samples z [K, *B, D], f values [K, *B], slopes
        [K, *B, D] and theta [*B, D]."""
        alpha = controls["alpha"]
        c = alpha * (leave_one_out(slopes) * (z - theta)).sum(-1)  # [K, *B]
        return c, c.unsqueeze(-1) * (z - theta) - alpha * theta * (1 - theta) * slopes.mean(0)

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        learning = self.learn and self.training and torch.is_grad_enabled() and logits.requires_grad
        z = sample(logits, family, self.num_samples)  # [K, *B, D]
        values, slopes = values_and_slopes(f, z, logits, family)  # [K, *B], [K, *B, D]
        theta = torch.sigmoid(logits.detach())  # [*B, D]
        f_k = values.detach()
        shift, direct = self.corrections(z, f_k, slopes, theta, self.controls(learning))
        signal = f_k - leave_one_out(f_k + shift)  # [K, *B]
        # [*B, D]: the estimate of d L / d logits (L the mean over the batch)
        g = (signal.unsqueeze(-1) * (z - theta) + direct).mean(0) / f_k[0].numel()
        surrogate = values.mean() + (g.detach() * logits).sum()
        control_loss = self.variance_loss(g, values, logits) if learning else None
        return Estimate(surrogate, f_k.mean(), self.num_samples, control_loss)

    @staticmethod
    def variance_loss(g: Tensor, values: Tensor, logits: Tensor) -> Tensor:
        """||estimate w.r.t. the logits||^2 as a function of the controls: the score part g
        plus f's own gradient in the logits (which the controls do not change)."""
        if values.requires_grad:
            (pathwise,) = torch.autograd.grad(
                values.mean(), logits, retain_graph=True, allow_unused=True
            )
            if pathwise is not None:
                g = g + pathwise.detach()
        return g.pow(2).sum()

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, learn={self.learn}, lr={self.control_lr}"
