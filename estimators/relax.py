r"""RELAX: REBAR with a learned control variate, a small network on the relaxed sample.

As REBAR (estimators/rebar.py), with c_phi in place of eta f(sigma_lambda(.)):

.. math::
    c_\phi(z) = \eta f(\sigma_\lambda(z)) + r_\rho(\sigma_\lambda(z)), \qquad
    \hat g = \big[f(b) - c_\phi(\tilde z)\big] \nabla_\phi \log p(b)
             + \nabla_\phi c_\phi(z) - \nabla_\phi c_\phi(\tilde z) + \nabla_\phi f(b; \phi)

r_rho an MLP (flattened relaxed latent -> ``hidden`` tanh units -> 1), the form of [1]'s
discrete VAE experiments (the REBAR control variate plus a network). Unbiased for every
phi = (eta, lambda, rho). phi is learned in training mode (``learn``, default on) exactly as
REBAR learns eta and lambda: one Adam step (``lr``) per call down the gradient of ||g||^2,
computed with ``torch.autograd.grad(create_graph=True)``; nothing is updated in eval mode.
With ``learn=false`` the network is never built and RELAX is REBAR at (eta, lambda).

The network's input size (D, or D K) is known only when it first sees logits, so it is
built at the first training call, with its output layer at zero; until then (a probe before
any training) r_rho is that network's output, 0. Cost: 3 evaluations of f.
Families: bernoulli and categorical.

References:
    [1] W. Grathwohl, D. Choi, Y. Wu, G. Roeder, D. Duvenaud (2018). Backpropagation through
        the void: optimizing control variates for black-box gradient estimation.
    [2] G. Tucker, A. Mnih, C. J. Maddison, D. Lawson, J. Sohl-Dickstein (2017). REBAR:
        low-variance, unbiased gradient estimates for discrete latent variable models.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.func import functional_call

from estimators.base import check_count
from estimators.rebar import Rebar
from estimators.registry import register

PREFIX = "network."


def event_size(shape: tuple[int, ...] | Tensor, family: str) -> int:
    """D (bernoulli) or D K (categorical) of a latent's trailing axes."""
    shape = tuple(shape)
    return shape[-1] if family == "bernoulli" else shape[-2] * shape[-1]


@register("relax")
class Relax(Rebar):
    def __init__(
        self, temperature: float = 1.0, eta: float = 1.0, hidden: int = 32, learn: bool = True, lr: float = 1e-3
    ) -> None:
        super().__init__(temperature=temperature, eta=eta, learn=learn, lr=lr)
        self.hidden = check_count("relax hidden", hidden, 1)
        self.network: nn.Sequential | None = None

    def prepare(self, logits: Tensor, family: str) -> None:
        """Build r_rho for this latent size at the first learning call (output layer at zero)."""
        if self.network is not None:
            return
        size = event_size(logits.shape, family)
        first = nn.Linear(size, self.hidden, dtype=logits.dtype, device=logits.device)
        last = nn.Linear(self.hidden, 1, dtype=logits.dtype, device=logits.device)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.network = nn.Sequential(first, nn.Tanh(), last)

    def control_variate(self, f_relaxed: Tensor, relaxed: Tensor, controls: dict[str, Tensor], family: str) -> Tensor:
        c = controls["eta"] * f_relaxed  # [1, *B]
        if self.network is None:
            return c  # r_rho is 0 until the network is built
        size = self.network[0].in_features
        if event_size(relaxed.shape, family) != size:
            raise ValueError(
                f"relax's control variate was built for latents of size {size}, got {tuple(relaxed.shape[1:])}"
            )
        params = {n[len(PREFIX) :]: p for n, p in controls.items() if n.startswith(PREFIX)}
        event_dims = 1 if family == "bernoulli" else 2
        x = relaxed.flatten(relaxed.dim() - event_dims).to(self.network[0].weight.dtype)  # [1, *B, D(K)]
        return c + functional_call(self.network, params, (x,)).squeeze(-1).to(c.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hidden={self.hidden}"
