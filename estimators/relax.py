r"""RELAX: REBAR with a learned control variate, a small network on the relaxed sample.

As REBAR (estimators/rebar.py), with c_phi in place of eta f(sigma_lambda(.)):

.. math::
    c_\phi(z) = \eta f(\sigma_\lambda(z)) + r_\rho(\sigma_\lambda(z)), \qquad
    \hat g = \big[f(b) - c_\phi(\tilde z)\big] \nabla_\phi \log p(b)
             + \nabla_\phi c_\phi(z) - \nabla_\phi c_\phi(\tilde z) + \nabla_\phi f(b; \phi)

r_rho an MLP (flattened relaxed latent -> ``hidden`` tanh units -> 1), the form of [1]'s
discrete VAE experiments (the REBAR control variate plus a network). Unbiased for every
phi = (eta, lambda, rho). phi is learned in training mode (``learn``, default on) exactly as
REBAR learns eta and lambda: the estimate carries ``control_loss`` = ||g||^2 and the run loop
steps phi down its gradient with an Adam it builds (``lr``); nothing is learned in eval mode.
With ``learn=false`` there is no network and RELAX is REBAR at (eta, lambda).

The network's input size (D, or D K) is the task's: the builder passes ``latent_shape``
(discograd/config.py, estimators.registry.create), and the network is built in the
constructor with its output layer at zero, so r_rho is 0 until it is trained. Cost: 3
evaluations of f.
Families: bernoulli and categorical.

References:
    [1] W. Grathwohl, D. Choi, Y. Wu, G. Roeder, D. Duvenaud (2018). Backpropagation through
        the void: optimizing control variates for black-box gradient estimation.
    [2] G. Tucker, A. Mnih, C. J. Maddison, D. Lawson, J. Sohl-Dickstein (2017). REBAR:
        low-variance, unbiased gradient estimates for discrete latent variable models.
"""
from __future__ import annotations

import math

from torch import Tensor, nn
from torch.func import functional_call

from estimators.base import check_count
from estimators.rebar import Rebar
from estimators.registry import register

PREFIX = "network."


@register("relax")
class Relax(Rebar):
    def __init__(
        self,
        temperature: float = 1.0,
        eta: float = 1.0,
        hidden: int = 32,
        learn: bool = True,
        lr: float = 1e-3,
        latent_shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__(temperature=temperature, eta=eta, learn=learn, lr=lr)
        self.hidden = check_count("relax hidden", hidden, 1)
        self.network: nn.Sequential | None = None
        if self.learn:
            if latent_shape is None:
                raise ValueError("relax with learn=true needs latent_shape (the task's (D,) or (D, K)) to build r_rho")
            self.network = nn.Sequential(nn.Linear(math.prod(latent_shape), self.hidden), nn.Tanh(), nn.Linear(self.hidden, 1))
            nn.init.zeros_(self.network[2].weight)
            nn.init.zeros_(self.network[2].bias)

    def control_variate(self, f_relaxed: Tensor, relaxed: Tensor, controls: dict[str, Tensor], family: str) -> Tensor:
        c = controls["eta"] * f_relaxed  # [1, *B]
        if self.network is None:
            return c
        event_dims = 1 if family == "bernoulli" else 2
        x = relaxed.flatten(relaxed.dim() - event_dims)  # [1, *B, D(K)]
        size = self.network[0].in_features
        if x.shape[-1] != size:
            raise ValueError(f"relax's control variate was built for latents of size {size}, got {tuple(relaxed.shape[1:])}")
        params = {n[len(PREFIX) :]: p for n, p in controls.items() if n.startswith(PREFIX)}
        return c + functional_call(self.network, params, (x.to(self.network[0].weight.dtype),)).squeeze(-1).to(c.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hidden={self.hidden}"
