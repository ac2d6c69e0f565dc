r"""RODEO: RLOO with control variates from a discrete Stein operator, applied to a learned
control function h evaluated at the samples' single-bit-flip neighbours.

K samples b_k ~ q(b | theta), theta = sigmoid(l), f_k = f(b_k), g_k = \nabla_b f(b_k) (the
backward pass of the same K evaluations: f must accept relaxed values), s(x) = x - theta.
The Gibbs Stein operator of q on the D neighbours x^{(i)} of x (bit i flipped), weighted
by the probability of the flipped bit, w_i(x) = q(1 - x_i) = theta_i (1 - x_i) + (1 - theta_i) x_i:

.. math::
    (\mathcal{A} u)(x) = \frac{1}{D} \sum_{i=1}^{D} w_i(x) \big(u(x^{(i)}) - u(x)\big),
    \qquad \mathbb{E}_q[(\mathcal{A} u)(x)] = 0 \text{ for every } u

(per coordinate, q(x_i) w_i(x) = theta_i (1 - theta_i) for both values of x_i, so the two
terms of the flip cancel in expectation). The control function of sample k is a small
network H: R^2 -> R^2 on a Taylor expansion of f around each other sample, averaged over
them, so that h_k does not depend on b_k:

.. math::
    h_k(x) = \frac{1}{K-1} \sum_{j \ne k} H\big(g_j^\top (x - b_j),\; f_j\big), \qquad
    \hat g_\ell = \frac{1}{K} \sum_{k=1}^{K} \Big[\Big(f_k - \frac{1}{K-1} \sum_{j \ne k}
        \big(f_j + \alpha (\mathcal{A} h_{j,0})(b_j)\big)\Big) s(b_k)
        + \beta (\mathcal{A}\, h_{k,1} s)(b_k)\Big] + \frac{1}{K} \sum_k \nabla_\phi f(b_k; \phi)

Unbiased for every alpha, beta and H: given the other samples h_k is a fixed function, so
E[(A h_{k,1} s)(b_k)] = 0, and E[(A h_{j,0})(b_j) s(b_k)] = 0 (zero given b_k). f is
evaluated at the K samples only; the neighbours go through H, never through f. Written in
O(D) per sample: at x^{(i)} the Taylor input is g_j^T (x - b_j) + g_{j,i} (1 - 2 x_i), and
s(x^{(i)}) = s(x) + (1 - 2 x_i) e_i. With alpha = beta = 0 this is RLOO.

H is H(t, f) = W_2 LeakyReLU_{0.3}(W_1 (t, f) + c_1) + c_2 with ``hidden`` units (Keras
Dense defaults: Glorot-uniform weights, zero biases); the authors' first layer is two
Dense(1 -> hidden) on t and on f, summed, so each column of W_1 is drawn as theirs, Glorot
for fan-in 1, and their two biases are one c_1 here (the same function class; under Adam
their sum can move up to twice as fast as one bias). alpha and beta start at 0. All three
are learned (``learn``): in training mode the estimate carries ``control_loss`` = ||g||^2,
g the estimate w.r.t. the logits as a function of them, and the run loop steps them with one
Adam it builds (``lr``); nothing is learned in eval mode. (The authors minimize the mean
square of the score part alone, without f's own pathwise term, which has mean zero for an
ELBO; both keep the estimator unbiased.)

The authors' code read: github:thjashin/rodeo, networks.py lines 409-440 and 465-475
(``discrete_stein_output_avg``: neighbours ``nbrs``, the Taylor inputs around each other
sample b_j with f_j, H averaged over j != k), lines 518-538 (``discrete_stein_avg``, K = 2,
the same estimator), lines 560-570 (the operator's weights w1 = q(flipped bit), w2 = -w1, the
mean over i, ``fb_vr`` = f + alpha A h_0 in the leave-one-out baseline, beta A(h_1 s)
added), lines 142-157 (alpha, beta at 0) and 740-752 (H: Dense(100) on each input, their sum,
LeakyReLU(0.3), Dense(2)); experiment_launcher_singlelayer.py lines 168-185 (grad_b from the
K evaluations, the loss mean(eta_grads^2) minimized in H, alpha, beta) and lines 60-65
(hyper_lr = control_lr = 1e-3, K = 2). The README recommends ``discrete_stein_avg`` for K = 2
and ``discrete_stein_output_avg`` for K > 2: ours is the latter, equal to the former at K = 2.
Each batch element's value must depend on its own latents only. ``value`` is the mean of f
over the K hard samples. Cost: K evaluations of f (one backward pass through them for g) and
H at K (K - 1) (D + 1) points per batch element. Families: bernoulli.

References:
    [1] J. Shi, Y. Zhou, J. Hwang, M. K. Titsias, L. Mackey (2022). Gradient estimation with
        discrete Stein operators. NeurIPS.
    [2] M. K. Titsias, J. Shi (2022). Double control variates for gradient estimation in
        discrete latent variable models. AISTATS.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call

from estimators.base import check_count
from estimators.double_cv import DoubleCV, check_scalar
from estimators.registry import register

PREFIX = "network."


def flip_weights(z: Tensor, theta: Tensor) -> Tensor:
    """w_i = q(1 - z_i): the probability of each bit flipped, [K, *B, D]."""
    return theta * (1 - z) + (1 - theta) * z


def stein(at_x: Tensor, at_flips: Tensor, weights: Tensor) -> Tensor:
    """(A u)(x) = mean_i w_i (u(x^(i)) - u(x)) [..., C] from u(x) [..., C], u(x^(i))
    [..., D, C] and w [..., D]."""
    return (weights.unsqueeze(-1) * (at_flips - at_x.unsqueeze(-2))).mean(-2)


@register("rodeo")
class Rodeo(DoubleCV):
    def __init__(
        self,
        num_samples: int = 2,
        hidden: int = 100,
        alpha: float = 0.0,
        beta: float = 0.0,
        learn: bool = True,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(num_samples=num_samples, alpha=alpha, learn=learn, lr=lr)
        self.beta = nn.Parameter(torch.tensor(check_scalar(f"{self.label()} beta", beta)))
        self.hidden = check_count(f"{self.label()} hidden", hidden, 1)
        self.network = nn.Sequential(
            nn.Linear(2, self.hidden), nn.LeakyReLU(0.3), nn.Linear(self.hidden, 2)
        )
        first, last = self.network[0], self.network[2]
        bound = math.sqrt(6.0 / (1 + self.hidden))  # Glorot for each of the authors' Dense(1 -> hidden)
        nn.init.uniform_(first.weight, -bound, bound)
        nn.init.xavier_uniform_(last.weight)
        for layer in (first, last):
            nn.init.zeros_(layer.bias)

    def control_function(
        self, z: Tensor, values: Tensor, slopes: Tensor, controls: dict[str, Tensor]
    ) -> Tensor:
        """h_k at b_k and at its D flips: [K, *B, D + 1, 2] (index 0 of axis -2 is b_k itself)."""
        k = z.shape[0]
        steps = torch.arange(k, device=z.device)
        others = (steps[:, None] + steps[1:]) % k  # [K, K-1]: row k lists every j != k
        g_j, b_j, f_j = slopes[others], z[others], values[others]  # [K, K-1, *B(, D)]
        at_x = (g_j * (z.unsqueeze(1) - b_j)).sum(-1, keepdim=True)  # [K, K-1, *B, 1]
        at_flips = at_x + g_j * (1 - 2 * z.unsqueeze(1))  # [K, K-1, *B, D]
        taylor = torch.cat([at_x, at_flips], -1)  # [K, K-1, *B, D+1]
        # [K, K-1, *B, D+1, 2]: (Taylor term, f_j) at b_k and at its flips
        inputs = torch.stack([taylor, f_j.unsqueeze(-1).expand_as(taylor)], -1)
        params = {n[len(PREFIX) :]: p for n, p in controls.items() if n.startswith(PREFIX)}
        dtype = self.network[0].weight.dtype
        h = functional_call(self.network, params, (inputs.to(dtype),))  # [K, K-1, *B, D+1, 2]
        return h.to(values.dtype).mean(1)  # the mean over the other samples j

    def corrections(
        self, z: Tensor, values: Tensor, slopes: Tensor, theta: Tensor, controls: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """(alpha (A h_0)(b_k) [K, *B], the baseline shift, and beta (A h_1 s)(b_k) [K, *B, D])."""
        h = self.control_function(z, values, slopes, controls)  # [K, *B, D + 1, 2]
        w = flip_weights(z, theta)  # [K, *B, D]
        a = stein(h[..., 0, :], h[..., 1:, :], w)  # [K, *B, 2]
        s = z - theta
        flips = w * h[..., 1:, 1] * (1 - 2 * z) / z.shape[-1]  # the e_i parts of s(x^(i)) - s(x)
        return controls["alpha"] * a[..., 0], controls["beta"] * (a[..., 1:] * s + flips)

    def learned_values(self) -> dict[str, float]:
        return super().learned_values() | ({"beta": float(self.beta.detach())} if self.learn else {})

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hidden={self.hidden}"
