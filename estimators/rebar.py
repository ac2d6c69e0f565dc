r"""REBAR: REINFORCE with the concrete relaxation as a control variate, made unbiased by
conditional noise.

z = l + noise (Gumbel per class, or logistic for bernoulli), b = H(z) (argmax, or z > 0),
z~ the noise drawn again given b (``primitives.sampling.conditional_gumbel`` /
``conditional_logistic``), sigma_lambda = softmax(. / lambda) (sigmoid for bernoulli):

.. math::
    \hat g = \big[f(b) - \eta f(\sigma_\lambda(\tilde z))\big] \nabla_\phi \log p(b \mid \phi)
             + \eta \nabla_\phi f(\sigma_\lambda(z)) - \eta \nabla_\phi f(\sigma_\lambda(\tilde z))
             + \nabla_\phi f(b; \phi)

Unbiased for every eta and lambda: z~ given b has the law of z given b, so the last two
relaxed terms cancel the control variate's score term in expectation [1] (the final term is
f's own dependence on phi, pathwise). Cost: 3 evaluations of f, f(b), f(sigma(z)),
f(sigma(z~)), in one call of f on the three stacked.

Learning eta and lambda (``learn=True``). [1] tunes them to minimize the variance of the
estimate, i.e. E ||g||^2 (its mean does not depend on them). In training mode the estimate
carries ``control_loss`` = ||g||^2, where g is this call's estimate w.r.t. the logits written
as a function of eta and log lambda (``torch.autograd.grad(create_graph=True)``); the run
loop steps them down its gradient with an Adam it builds (``lr``, reported as
``control_lr``), after the estimate is made, so the estimate uses the values before the step.
With ``learn=True`` the temperature is learned state (``learns_temperature``: a temperature
schedule may not write it); with ``learn=False`` it is a knob the schedule sets. In eval mode
(the gradient probe) and with ``learn=False`` there is no control loss, and the estimator
is vmappable.

Families: bernoulli and categorical.

References:
    [1] G. Tucker, A. Mnih, C. J. Maddison, D. Lawson, J. Sohl-Dickstein (2017). REBAR:
        low-variance, unbiased gradient estimates for discrete latent variable models.
    [2] W. Grathwohl, D. Choi, Y. Wu, G. Roeder, D. Duvenaud (2018). Backpropagation through
        the void: optimizing control variates for black-box gradient estimation.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from estimators.base import Estimate, Estimator, Objective, check_temperature
from primitives.families import log_prob, soft
from estimators.registry import register
from primitives.sampling import conditional_gumbel, conditional_logistic, gumbel_noise, logistic_noise, one_hot_argmax


def perturb(logits: Tensor, family: str) -> tuple[Tensor, Tensor]:
    """(z, b): perturbed logits [1, *B, D(, K)] and the hard sample they give."""
    shape = (1,) + logits.shape
    if family == "bernoulli":
        z = logits + logistic_noise(shape, logits)
        return z, (z.detach() > 0).to(z.dtype)
    z = logits + gumbel_noise(shape, logits)
    return z, one_hot_argmax(z.detach())


def perturb_given(logits: Tensor, b: Tensor, family: str) -> Tensor:
    """z~ [1, *B, D(, K)]: perturbed logits drawn given the hard sample b, differentiable in the logits."""
    return (conditional_logistic if family == "bernoulli" else conditional_gumbel)(logits, b)


def score(b: Tensor, logits: Tensor, family: str) -> Tensor:
    """d log p(b) / d logits [*B, D(, K)] for one sample b [1, *B, D(, K)] (b - mean)."""
    mean = torch.sigmoid(logits) if family == "bernoulli" else torch.softmax(logits, -1)
    return b[0] - mean.detach()


@register("rebar")
class Rebar(Estimator):
    pathwise = True
    unbiased = True

    def __init__(self, temperature: float = 1.0, eta: float = 1.0, learn: bool = False, lr: float = 1e-3) -> None:
        super().__init__()
        tau = check_temperature(temperature)
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"{type(self).__name__.lower()} lr must be > 0, got {lr!r}")
        self.eta = nn.Parameter(torch.tensor(float(eta)))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(tau)))
        self.learn = bool(learn)
        self.learns_temperature = self.learn
        self.control_lr = float(lr) if self.learn else None

    @property
    def temperature(self) -> float:
        return float(self.log_temperature.detach().exp())

    @temperature.setter
    def temperature(self, value: float) -> None:
        with torch.no_grad():
            self.log_temperature.fill_(math.log(check_temperature(value)))

    def learned_values(self) -> dict[str, float]:
        return {"learned_temperature": self.temperature, "eta": float(self.eta.detach())} if self.learn else {}

    def controls(self, learning: bool) -> dict[str, Tensor]:
        """The control variate's parameters by name: the parameters themselves when learning
        (control_loss differentiates through them), else detached."""
        if learning:
            return dict(self.named_parameters())
        return {n: p.detach() for n, p in self.named_parameters()}

    def sample(self, logits: Tensor, family: str) -> tuple[Tensor, Tensor, Tensor]:
        """(z, b, z~) [1, *B, D(, K)] each: perturbed logits, their hard sample, and perturbed
        logits drawn again given b."""
        z, b = perturb(logits, family)
        return z, b, perturb_given(logits, b, family)

    def control_variate(self, f_relaxed: Tensor, relaxed: Tensor, controls: dict[str, Tensor], family: str) -> Tensor:
        """c(z) [1, *B] from f(sigma_lambda(z)) [1, *B] and sigma_lambda(z) [1, *B, D(, K)]."""
        return controls["eta"] * f_relaxed

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        learning = self.learn and self.training and torch.is_grad_enabled() and logits.requires_grad
        controls = self.controls(learning)
        tau = controls["log_temperature"].exp() if learning else self.temperature
        z, b, z_tilde = self.sample(logits, family)
        relaxed, relaxed_tilde = soft(z, family, tau), soft(z_tilde, family, tau)
        values = self.evaluate(f, torch.cat([b, relaxed, relaxed_tilde]), logits, family)  # [3, *B]
        f_b, f_z, f_tilde = values.chunk(3)  # [1, *B] each
        c_z = self.control_variate(f_z, relaxed, controls, family)
        c_tilde = self.control_variate(f_tilde, relaxed_tilde, controls, family)
        pathwise = f_b + c_z - c_tilde  # [1, *B]
        coefficient = f_b.detach() - c_tilde  # of the score; constant in the logits
        surrogate = (pathwise + coefficient.detach() * log_prob(b, logits, family)).mean()
        control_loss = self.variance_loss(logits, pathwise, coefficient, score(b, logits, family)) if learning else None
        return Estimate(surrogate, f_b.detach().mean(), 3, control_loss)

    @staticmethod
    def variance_loss(logits: Tensor, pathwise: Tensor, coefficient: Tensor, score: Tensor) -> Tensor:
        """||g||^2 with g = d surrogate / d logits written as a function of the controls:
        d mean(pathwise) / d logits + coefficient * score / N."""
        (g,) = torch.autograd.grad(pathwise.mean(), logits, create_graph=True)
        weight = coefficient[0] / coefficient.numel()  # [*B]
        g = g + weight.reshape(weight.shape + (1,) * (score.dim() - weight.dim())) * score
        return g.pow(2).sum()

    def extra_repr(self) -> str:
        return f"learn={self.learn}, lr={self.control_lr}"
