r"""The binary VAE of ARM (Yin and Zhou 2019) and DisARM (Dong, Mnih, Tucker 2020).

D = 200 Bernoulli latents; encoder ``linear`` (P -> D logits) or ``nonlinear``
(P-200-200-D with LeakyReLU(0.3)); the decoder mirrors it to P Bernoulli logits; a learned
factorized Bernoulli prior with logits starting at 0, log p(z) = sum_d z_d log sigmoid(a_d)
+ (1 - z_d) log sigmoid(-a_d). As in the DisARM code: the encoder input is centred by the
training mean (``center_input``), and the decoder's output bias starts at the logit of the
training mean, clipped to [0.001, 0.999] (``init_output_bias``). Optimizers: Adam at ``lr``
(1e-4) for encoder and decoder, SGD at ``prior_lr`` (1e-2; 0 keeps the prior uniform) for
the prior; batch 50.
f and its exact gradient: tasks/vae.py.

References:
    [1] M. Yin, M. Zhou (2019). ARM: augment-REINFORCE-merge gradient for stochastic binary networks.
    [2] Z. Dong, A. Mnih, G. Tucker (2020). DisARM: an antithetic gradient estimator for binary latent variables.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tasks.base import adam
from tasks.registry import register
from tasks.vae import VAE, mlp

ENCODERS = ("linear", "nonlinear")


class BinaryVAEModules(nn.Module):
    def __init__(self, pixels: int, dims: int, encoder: str, hidden: int, center_input: bool) -> None:
        super().__init__()
        sizes = [pixels, dims] if encoder == "linear" else [pixels, hidden, hidden, dims]
        self.encoder = mlp(sizes, nn.LeakyReLU(0.3))
        self.decoder = mlp(sizes[::-1], nn.LeakyReLU(0.3))
        self.prior = nn.Parameter(torch.zeros(dims))
        self.center_input = center_input
        self.register_buffer("input_mean", torch.zeros(pixels))


@register("binary_vae")
class BinaryVAE(VAE):
    family = "bernoulli"

    def __init__(self, dataset: Any, dims: int = 200, encoder: str = "nonlinear", hidden: int = 200,
                 center_input: bool = True, init_output_bias: bool = True, lr: float = 1e-4, prior_lr: float = 1e-2,
                 batch_size: int = 50, eval_every: int = 1000, eval_points: int = 1000, iwae_samples: int = 100,
                 window: int = 100, data_seed: int = 0) -> None:  # fmt: skip
        super().__init__(dataset, batch_size, "sampled", eval_every, eval_points, iwae_samples, window, data_seed)
        if encoder not in ENCODERS:
            raise ValueError(f"binary_vae encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        for knob, value in (("dims", dims), ("hidden", hidden)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"binary_vae {knob} must be an integer >= 1, got {value!r}")
        if not (lr > 0 and prior_lr >= 0):
            raise ValueError(f"binary_vae needs lr > 0 and prior_lr >= 0 (0: a fixed uniform prior), got {lr!r}, {prior_lr!r}")
        self.latent_shape = (int(dims),)
        self.lr, self.prior_lr, self.init_output_bias = float(lr), float(prior_lr), init_output_bias
        self.parameters = BinaryVAEModules(self.pixels(), int(dims), encoder, int(hidden), center_input)

    def initialize(self, train_mean: Tensor) -> None:
        """Also start the decoder's output bias at logit(clip(train mean, 0.001, 0.999))."""
        super().initialize(train_mean)
        if self.init_output_bias:
            self.parameters.decoder[-1].bias.copy_(torch.logit(train_mean.clamp(0.001, 0.999)))

    def log_prior(self, z: Tensor) -> Tensor:
        """sum_d z_d log sigmoid(a_d) + (1 - z_d) log sigmoid(-a_d) = z . a + sum_d log sigmoid(-a_d),
        since log sigmoid(a) - log sigmoid(-a) = a (two ops instead of seven per step)."""
        a = self.parameters.prior
        return z @ a + F.logsigmoid(-a).sum()

    def optimizers(self) -> list[torch.optim.Optimizer]:
        modules = self.parameters
        networks = [*modules.encoder.parameters(), *modules.decoder.parameters()]
        prior = [torch.optim.SGD([modules.prior], lr=self.prior_lr)] if self.prior_lr > 0 else []
        return [adam(networks, self.lr), *prior]
