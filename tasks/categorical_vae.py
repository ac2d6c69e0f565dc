r"""The categorical VAE of Jang, Gu, Poole (2017), the Gumbel-softmax paper.

D = 20 categorical latents of K = 10 classes (30 x 10 too); encoder P-512-256-(D K) logits,
decoder (D K)-256-512-P Bernoulli logits, ReLU; a uniform prior, log p(z) = -D log K for
any one-hot or relaxed z. ``kl=analytic`` (default) uses
KL(q(z|x) || p) = sum_d sum_k q_dk (log q_dk + log K) in place of the sampled
log q(z|x) - log p(z); ``kl=sampled`` keeps the sampled terms. Adam at ``lr`` (1e-3), batch
100; the paper anneals tau = max(0.5, exp(-3e-5 t)) every 1000 steps (conf/experiment/
jang2016_categorical.yaml sets that schedule). f and its exact gradient: tasks/vae.py.

References:
    [1] E. Jang, S. Gu, B. Poole (2017). Categorical reparameterization with Gumbel-softmax.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tasks.base import adam
from tasks.registry import register
from tasks.vae import VAE, mlp


class CategoricalVAEModules(nn.Module):
    def __init__(self, pixels: int, dims: int, classes: int, hidden: list[int]) -> None:
        super().__init__()
        self.encoder = mlp([pixels, *hidden, dims * classes], nn.ReLU())
        self.decoder = mlp([dims * classes, *hidden[::-1], pixels], nn.ReLU())
        self.center_input = False  # Jang et al. feed the binarized pixels as they are
        self.register_buffer("input_mean", torch.zeros(pixels))


OPTIMIZERS = ("adam", "radam")


@register("categorical_vae")
class CategoricalVAE(VAE):
    family = "categorical"
    kl_modes = ("analytic", "sampled")

    def __init__(self, dataset: Any, dims: int = 20, classes: int = 10, hidden: tuple[int, ...] = (512, 256),
                 kl: str = "analytic", lr: float = 1e-3, batch_size: int = 100, eval_every: int = 1000,
                 eval_points: int = 1000, iwae_samples: int = 100, window: int = 100, data_seed: int = 0,
                 optimizer: str = "adam") -> None:  # fmt: skip
        super().__init__(dataset, batch_size, kl, eval_every, eval_points, iwae_samples, window, data_seed)
        for knob, value, least in (("dims", dims, 1), ("classes", classes, 2)):
            if isinstance(value, bool) or int(value) != value or value < least:
                raise ValueError(f"categorical_vae {knob} must be an integer >= {least}, got {value!r}")
        if not lr > 0:
            raise ValueError(f"categorical_vae lr must be > 0, got {lr!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"categorical_vae optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.optimizer = optimizer
        self.latent_shape = (int(dims), int(classes))
        self.lr = float(lr)
        self.parameters = CategoricalVAEModules(self.pixels(), int(dims), int(classes), [int(h) for h in hidden])

    def log_prior(self, z: Tensor) -> Tensor:
        dims, classes = self.latent_shape
        return z.sum((-2, -1)) * -math.log(classes)  # sum_k z_dk = 1: -D log K, for relaxed z too

    def kl_analytic(self, logits: Tensor) -> Tensor:
        """KL(q(z|x) || uniform) per data point: logits [B, D, K] -> [B]."""
        log_q = F.log_softmax(logits, -1)
        return (log_q.exp() * (log_q + math.log(self.latent_shape[1]))).sum((-2, -1))

    def optimizers(self) -> list[torch.optim.Optimizer]:
        if self.optimizer == "radam":  # RAdam (Liu et al. 2020), as ReinMax's MNIST-VAE scripts (--optim radam)
            return [torch.optim.RAdam(self.parameters.parameters(), lr=self.lr)]
        return [adam(self.parameters.parameters(), self.lr)]
