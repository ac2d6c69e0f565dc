r"""Polynomial programming of ReinMax [1]: D binary latents, f the mean p-th power distance to a
target, with its exact gradient and expected loss in closed form. The toy quadratic of REBAR
and RELAX (tasks/toy_quadratic.py) is its p = 2 case (with a categorical latent's terms summed).

bernoulli: z_d in {0, 1}, pi_d = sigmoid(theta_d), t a number; categorical: z_d one-hot over K,
pi_d = softmax(theta_d), t a probability vector over K, or a number t standing for
(t, (1-t)/(K-1), ..., (1-t)/(K-1)). With w = 1/K (the mean over a latent's K entries):

.. math::
    f(z) = \frac{1}{D} \sum_d |z_d - t|^p, \qquad
    f(z) = \frac{1}{D} \sum_d w \sum_k |z_{dk} - t_k|^p

On z in {0, 1}, |z - t|^p = |t|^p + z \Delta with \Delta = |1 - t|^p - |t|^p (per class), so

.. math::
    \mathbb{E}[f] = \frac{1}{D} \sum_d \big(|t|^p + \pi_d \Delta\big), \qquad
    \frac{\partial \mathbb{E}[f]}{\partial \theta_d} = \frac{\sigma'(\theta_d) \Delta}{D}
    = \frac{\pi_d (1 - \pi_d) \Delta}{D}

    \mathbb{E}[f] = \frac{1}{D} \sum_d w \sum_k \big(|t_k|^p + \pi_{dk} \Delta_k\big), \qquad
    \frac{\partial \mathbb{E}[f]}{\partial \theta_{dk}}
    = \frac{w}{D}\, \pi_{dk} \Big(\Delta_k - \sum_j \pi_{dj} \Delta_j\Big)

On hard samples f is linear in z whatever p, so p changes only the slope an unbiased
estimator sees; straight-through and relaxed estimators see f's derivative in z,
p |z - t|^{p-1} sign(z - t), which is why [1] sweeps p = 1.5, 2, 3. (For p < 1 that
derivative is infinite at z = t, a NaN gradient: hard samples meet it only where t is 0 or 1.)

The paper's setting is the default (conf/task/polynomial.yaml): ``categorical`` with K = 2 and
t = 0.45, so t = (0.45, 0.55) and f = mean_d |z_{d0} - 0.45|^p, the class-0 entry being the
paper's binary variable; D = 128; Adam at 1e-3; and a batch of 64 independent samples per step
(``batch_size``): the logits are theta repeated B times, [B, D(, K)], so every estimate averages
B draws, each of the whole latent (an evaluation of f counts one draw of all B copies).
``batch_size: null`` gives logits [D(, K)] with no batch axis (the toy's layout).

Read in the authors' code, github.com/LiyuanLucasLiu/ReinMax (the examples repository
microsoft/ReinMax's README links), poly/poly_programming.py: ``Quadratic_Toy`` (lines 39-57)
holds theta [latent_dim, 2], drawn U(-0.01, 0.01), samples OneHotCategorical(logits=theta)
expanded to the batch and keeps class 0 (``z[:, :, 0]``); the target is 0.45 (line 62); the
loss (lines 73-83) is |z - t|^pnorm summed over latents / latent_dim, averaged over the batch;
defaults (lines 9-29): batch 64, lr 1e-3 (Adam, line 70), latent 128, pnorm 2, 40 epochs of
200 steps (8000 steps), temperature 1; ``exact_reinforce_train`` (lines 105-121) is the
expected loss above, |1-t|^p qy_0 + |t|^p qy_1 over latent_dim. poly/README.md and
poly/reinmax.sh: p in {1.5, 2, 3}, seeds 0-9, the reported loss the last epoch's mean training
loss. Here theta starts at ``init_logit`` (0; the paper's U(-0.01, 0.01) is within 0.01 of it).

References:
    [1] L. Liu, C. Dong, X. Liu, B. Yu, J. Gao (2023). Bridging discrete and backpropagation:
        straight-through and beyond. NeurIPS 2023.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor

from tasks.base import Logits, Task, adam, initial_logits
from tasks.registry import register

FAMILIES = ("bernoulli", "categorical")


def finite_number(task: str, knob: str, value: Any) -> float:
    """``value`` as a float, or a ValueError naming the knob if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{task} {knob} must be a finite number, got {value!r}")
    return float(value)


def integer(task: str, knob: str, value: Any, least: int) -> int:
    """``value`` as an int, or a ValueError naming the knob if it is not an integer >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < least:
        raise ValueError(f"{task} {knob} must be an integer >= {least}, got {value!r}")
    return int(value)


def target_vector(task: str, target: float | Sequence[float], classes: int) -> Tensor:
    """[K]: a probability vector, or a number t in [0, 1] as (t, (1-t)/(K-1), ...)."""
    if isinstance(target, str) or not isinstance(target, Sequence):
        t = finite_number(task, "target", target)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"{task} target must be in [0, 1], got {target!r}")
        return torch.tensor([t] + [(1.0 - t) / (classes - 1)] * (classes - 1))
    vector = torch.tensor([finite_number(task, "target", v) for v in target])
    if vector.shape != (classes,) or (vector < 0).any() or abs(vector.sum().item() - 1.0) > 1e-6:
        raise ValueError(
            f"{task} categorical target must be a probability vector of {classes} entries, got {list(target)}"
        )
    return vector


@register("polynomial")
class Polynomial(Task):
    # how f combines a categorical latent's K terms: their mean here (so K = 2, t = (t, 1 - t) is
    # the paper's f); the toy quadratic sums them (its squared distance ||z_d - t||^2)
    sum_over_classes: ClassVar[bool] = False

    def __init__(
        self,
        family: str = "categorical",
        dims: int = 128,
        classes: int = 2,
        power: float = 2.0,
        target: float | Sequence[float] = 0.45,
        init_logit: float | Sequence[Any] = 0.0,
        lr: float = 1e-3,
        batch_size: int | None = 64,
    ) -> None:
        name = self.label()
        if family not in FAMILIES:
            raise ValueError(f"{name} family must be one of {', '.join(FAMILIES)}, got {family!r}")
        dims = integer(name, "dims", dims, 1)
        if family == "categorical":
            classes = integer(name, "classes", classes, 2)
        self.power = finite_number(name, "power", power)
        if not self.power > 0:
            raise ValueError(f"{name} power must be > 0, got {power!r}")
        if not finite_number(name, "lr", lr) > 0:
            raise ValueError(f"{name} lr must be > 0, got {lr!r}")
        self.batch_size = None if batch_size is None else integer(name, "batch_size", batch_size, 1)
        self.family, self.lr = family, float(lr)
        self.latent_shape = (dims,) if family == "bernoulli" else (dims, classes)
        if family == "bernoulli":
            self.target = torch.tensor(finite_number(name, "bernoulli target", target))
        else:
            self.target = target_vector(name, target, classes)
        # in float64, rounded once: at p = 2 these are float32's t^2 and 1 - 2t to the last bit
        t = self.target.double()
        at_zero, at_one = t.abs() ** self.power, (1 - t).abs() ** self.power
        self.at_zero = at_zero.to(self.target.dtype)  # |t|^p: f's term at z = 0
        self.slope = (at_one - at_zero).to(self.target.dtype)  # Delta = |1 - t|^p - |t|^p: z = 1 minus z = 0
        init = initial_logits(init_logit, self.latent_shape, name)
        if not torch.isfinite(init).all():
            raise ValueError(f"{name} init_logit must be finite, got {init_logit!r}")
        self.parameters = Logits(init)

    @property
    def class_weight(self) -> float:
        """w: the weight of each of a categorical latent's K terms (1/K; 1 where they are summed)."""
        return 1.0 if self.sum_over_classes else 1.0 / self.latent_shape[-1]

    @property
    def draw_bytes(self) -> int:
        """The base's estimate, for each of the B copies a draw holds."""
        return super().draw_bytes * (self.batch_size or 1)

    def logits(self, batch: Any = None) -> Tensor:
        theta = self.parameters.logits  # [D] or [D, K]
        if self.batch_size is None:
            return theta
        return theta.expand((self.batch_size,) + theta.shape)  # [B, D(, K)]: B copies

    def objective(self, z: Tensor, batch: Any = None) -> Tensor:
        terms = (z - self.target).abs() ** self.power  # [S, *B, D] or [S, *B, D, K]
        if self.family == "categorical":
            terms = terms.sum(-1) * self.class_weight  # [S, *B, D]
        return terms.mean(-1)  # [S, *B]

    def expected_objective(self) -> Tensor:
        """The closed form of E[f] (module docstring), differentiable in the logits."""
        theta = self.parameters.logits
        if self.family == "bernoulli":
            return (self.at_zero + torch.sigmoid(theta) * self.slope).mean()
        probs = torch.softmax(theta, dim=-1)
        return ((self.at_zero.sum() + (probs * self.slope).sum(-1)) * self.class_weight).mean()

    def exact_gradient(self, batch: Any = None) -> dict[str, Tensor]:
        """Autograd through the closed form of E[f] (the gradient of the module docstring,
        tests/test_polynomial.py checks both ways); the B copies do not change it."""
        (grad,) = torch.autograd.grad(self.expected_objective(), [self.parameters.logits])
        return {"logits": grad}

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            return {"exact_objective": self.expected_objective().item()}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters.parameters(), self.lr)]

    def to(self, device: torch.device) -> "Polynomial":
        super().to(device)
        constants = (self.target, self.at_zero, self.slope)
        self.target, self.at_zero, self.slope = (t.to(device) for t in constants)
        return self
