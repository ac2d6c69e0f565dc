r"""What the binary and categorical VAEs share: the objective, the exact gradient by
enumeration, and the evaluation (negative ELBO and the importance-weighted bound).

Per data point x with encoder logits l(x) and latent z (binary [D] or one-hot [D, K]),

.. math::
    f(z; x) = -\log p_\theta(x \mid z) - \log p(z) + \log q_\phi(z \mid x),
    \qquad \mathbb{E}_q[f] = -\mathrm{ELBO}(x)

each term written on the one-hot (or binary) form of z, so f is defined on relaxed
samples too. With ``kl=analytic`` (categorical, uniform prior) the last two terms are
replaced by their expectation KL(q(z|x) || p(z)), which has the same gradient in
expectation and less variance. The estimand is the encoder's parameters; the decoder and
the prior get their (pathwise) gradients through f, as in the papers.

Exact gradient: where the latent space is small (2^D <= 4096 or K^D <= 4096), E_q[f] is a
sum over every latent configuration weighted by q(z | x); its gradient is accumulated in
chunks of configurations, so memory stays at one chunk's graph.

evaluate(): train_neg_elbo (one hard sample per point, over the last ``window`` training
batches), and every ``eval_every`` training steps test_neg_elbo (one sample) and the
importance-weighted bound iwae_k = -log mean_k exp(-f(z_k)) with k = ``iwae_samples``
(Burda et al. 2016), on the first ``eval_points`` test points, in chunks of points.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from collections import deque
from functools import partial
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from primitives.enumeration import MAX_CONFIGURATIONS, configurations, count
from primitives.families import log_prob, sample
from tasks.base import Task
from tasks.data import DATASETS, Dataset, check_options, load_splits



def mlp(sizes: list[int], activation: nn.Module) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(activation)
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class VAE(Task):
    """The shared part; subclasses build ``parameters`` (with ``encoder`` and ``decoder``),
    set ``family``, ``latent_shape``, and define ``log_prior``."""

    kl_modes: tuple[str, ...] = ("sampled",)

    def __init__(self, dataset: Any, batch_size: int, kl: str, eval_every: int, eval_points: int,
                 iwae_samples: int, window: int, data_seed: int) -> None:  # fmt: skip
        for knob, value, least in (("batch_size", batch_size, 1), ("eval_every", eval_every, 1),
                                   ("eval_points", eval_points, 1), ("iwae_samples", iwae_samples, 1), ("window", window, 1)):  # fmt: skip
            if isinstance(value, bool) or int(value) != value or value < least:
                raise ValueError(f"{self.label()} {knob} must be an integer >= {least}, got {value!r}")
        if kl not in self.kl_modes:
            raise ValueError(f"{self.label()} kl must be one of {', '.join(self.kl_modes)}, got {kl!r}")
        self.dataset_cfg = dict(dataset)
        check_options(self.dataset_cfg["name"], self.dataset_cfg.get("binarize", "dynamic"))
        self.batch_size, self.kl = int(batch_size), kl
        self.eval_every, self.eval_points, self.iwae_samples = int(eval_every), int(eval_points), int(iwae_samples)
        self.recent: deque[Tensor] = deque(maxlen=int(window))
        self.generator = torch.Generator().manual_seed(int(data_seed))
        self._splits: dict[str, Dataset] | None = None
        self._batches = None
        self._probe_batch: Tensor | None = None
        self.steps, self._test_metrics, self._tested_at = 0, {}, None

    # ---- data --------------------------------------------------------------------------------

    @property
    def splits(self) -> dict[str, Dataset]:
        """train / valid / test, loaded on first use (construction stays cheap, see tasks/base.py);
        loading also runs the data-dependent initialization (``initialize``)."""
        if self._splits is None:
            self._splits = load_splits(**self.dataset_cfg)
            with torch.no_grad():
                self.initialize(self._splits["train"].train_mean.to(self.device))
        return self._splits

    def initialize(self, train_mean: Tensor) -> None:
        """Data-dependent set-up, from the training split's per-pixel mean [P]: the encoder's
        input centring (when ``center_input``)."""
        self.parameters.input_mean.copy_(train_mean)

    @property
    def device(self) -> torch.device:
        return next(self.parameters.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters.parameters()).dtype

    def _passes(self) -> Iterator[Tensor]:
        """Training batches forever: pass after pass, reshuffled and (dynamic) re-binarized
        each pass; a last batch smaller than batch_size is skipped so every step sees B points."""
        while True:
            for batch in self.splits["train"].batches(self.batch_size, self.generator):
                if batch.shape[0] == self.batch_size:
                    yield batch

    def train_batch(self) -> Tensor:
        """The next training batch [B, P]."""
        if self._batches is None:
            self._batches = self._passes()
        batch = next(self._batches).to(self.device)
        self.recent.append(batch)
        self.steps += 1
        return batch

    def fixed(self, split: str, size: int, seed: int) -> Tensor:
        """The first ``size`` images of ``split``, binarized once with a seeded generator [size, P]."""
        data = self.splits[split]
        return data.binary(data.images[:size], torch.Generator().manual_seed(seed)).to(self.device)

    def probe_batch(self) -> Tensor:
        """The probe's fixed batch: the first batch_size training images, binarized once."""
        if self._probe_batch is None:
            self._probe_batch = self.fixed("train", self.batch_size, seed=0)
        return self._probe_batch

    @property
    def probe_chunk(self) -> int:
        """Probe draws per vmapped chunk. On a CPU about 2^21 floats (8 MiB) for the widest
        activation, so that a chunk's working set stays near the last-level cache: on the 2-core
        CPU of docs/performance-vae.md, 1000 draws took 1.6-1.8 s at 32-53 draws per chunk
        (binary VAE, reinforce) against 2.9 s at 427 (2^24 floats) and 2.6 s at 8; the
        categorical VAE likewise (4.9 s at 26-48, 6.9 s at 213). Elsewhere 2^24 floats (64 MiB),
        a bound on memory only, so that a GPU gets few, large chunks (not measured here)."""
        widest = max(m.out_features for m in self.parameters.modules() if isinstance(m, nn.Linear))
        floats = 2**21 if self.device.type == "cpu" else 2**24
        return max(1, floats // (self.batch_size * widest))

    @property
    def draw_bytes(self) -> int:
        """Bytes one probe draw holds besides its estimate: every layer's activations over the
        batch, kept for the backward pass, and their gradients (about 4 copies; docs/scale.md
        compares the plan with the measured peak)."""
        widths = sum(m.out_features for m in self.parameters.modules() if isinstance(m, nn.Linear))
        return 4 * self.batch_size * widths * torch.finfo(self.dtype).bits // 8

    # ---- the model ---------------------------------------------------------------------------

    def logits(self, batch: Tensor) -> Tensor:
        """Encoder logits [B, D] or [B, D, K]."""
        x = batch - self.parameters.input_mean if self.parameters.center_input else batch
        return self.parameters.encoder(x).reshape(batch.shape[:-1] + self.latent_shape)

    def log_likelihood(self, z: Tensor, batch: Tensor) -> Tensor:
        """log p(x | z): decoder on z [S, B, D(, K)] -> [S, B]."""
        samples, points = z.shape[:2]
        # the decoder on [S B, D(*K)]: nn.Linear on a 3-d input reshapes around every layer
        out = self.parameters.decoder(z.reshape(samples * points, -1)).view(samples, points, -1)  # [S, B, P]
        # sum_p x_p o_p - softplus(o_p), the Bernoulli log-likelihood: the formula of
        # binary_cross_entropy_with_logits in a few passes, where vmap (the probe) splits that op
        # into eight over [draws, B, P]; the VAE probe is 13-22% faster (docs/performance-vae.md)
        return (batch.expand_as(out) * out - F.softplus(out)).sum(-1)

    def pixels(self) -> int:
        """P, from the dataset's name (no loading)."""
        height, width = DATASETS[self.dataset_cfg["name"]].shape
        return height * width

    @abstractmethod
    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) for z [S, B, D(, K)] (binary or one-hot, relaxed too) -> [S, B]."""

    def objective(self, z: Tensor, batch: Tensor, kl: str | None = None, logits: Tensor | None = None) -> Tensor:
        """f(z; x) per sample and data point: [S, B] (module docstring); ``logits``: the
        encoder's output for ``batch`` if already computed (see ``bind``)."""
        logits = self.logits(batch) if logits is None else logits
        if (kl or self.kl) == "analytic":  # only for subclasses whose kl_modes include it (they define kl_analytic)
            return -self.log_likelihood(z, batch) + self.kl_analytic(logits)
        return -self.log_likelihood(z, batch) - self.log_prior(z) + log_prob(z, logits, self.family)

    def bind(self, batch: Tensor, logits: Tensor) -> Callable[[Tensor], Tensor]:
        """f with the estimator's own logits: the encoder runs once per estimate, not twice."""
        return partial(self.objective, batch=batch, logits=logits)

    # ---- exact gradient by enumeration ------------------------------------------------------

    def configurations(self) -> Tensor | None:
        """Every latent configuration [C, D(, K)], or None where there are more than 4096."""
        if count(self.latent_shape, self.family) > MAX_CONFIGURATIONS:
            return None
        return configurations(self.latent_shape, self.family, self.dtype, self.device)

    def exact_gradient(self, batch: Any = None, chunk: int = 256) -> dict[str, Tensor] | None:
        """d/d(encoder) of mean_b sum_z q(z | x_b) f(z; x_b), in chunks of configurations."""
        configurations = self.configurations()
        if configurations is None:
            return None
        batch = self.probe_batch() if batch is None else batch
        params = self.estimand()
        total = {name: torch.zeros_like(p) for name, p in params.items()}
        for start in range(0, len(configurations), chunk):
            z = configurations[start : start + chunk].unsqueeze(1).expand((-1, batch.shape[0]) + self.latent_shape)
            logits = self.logits(batch)
            weights = log_prob(z, logits, self.family).exp()  # [C, B]
            part = (weights * self.objective(z, batch)).sum(0).mean()
            for name, g in zip(params, torch.autograd.grad(part, list(params.values()))):
                total[name] += g
        return total

    def estimand(self) -> dict[str, nn.Parameter]:
        return {f"encoder.{name}": p for name, p in self.parameters.encoder.named_parameters()}

    # ---- evaluation -------------------------------------------------------------------------

    @torch.no_grad()
    def neg_elbo(self, x: Tensor) -> Tensor:
        """One-sample -ELBO per point [B] (hard sample, the configured KL)."""
        z = sample(self.logits(x), self.family, 1)
        return self.objective(z, x)[0]

    @torch.no_grad()
    def iwae_bound(self, x: Tensor, samples: int, chunk: int = 100) -> Tensor:
        """-log mean_k exp(-f(z_k; x)) per point [B], with f's sampled-KL form, k = samples
        drawn in chunks (the bound of Burda et al. 2016: it tightens as k grows)."""
        logits, parts = self.logits(x), []
        for start in range(0, samples, chunk):
            z = sample(logits, self.family, min(chunk, samples - start))
            parts.append(-self.objective(z, x, kl="sampled"))
        log_w = torch.cat(parts, 0)  # [k, B]
        return -(torch.logsumexp(log_w, 0) - math.log(samples))

    @torch.no_grad()
    def _test(self) -> dict[str, float]:
        x = self.fixed("test", self.eval_points, seed=1)
        chunks = x.split(max(1, 20000 // self.iwae_samples))
        return {
            "test_neg_elbo": torch.cat([self.neg_elbo(c) for c in chunks]).mean().item(),
            f"test_iwae_{self.iwae_samples}": torch.cat([self.iwae_bound(c, self.iwae_samples) for c in chunks]).mean().item(),
            "test_step": self.steps,
        }

    def evaluate(self) -> dict[str, float]:
        """train_neg_elbo over the recent training batches; the test metrics every eval_every steps."""
        if self._tested_at is None or self.steps - self._tested_at >= self.eval_every:
            self._test_metrics, self._tested_at = self._test(), self.steps
        recent = list(self.recent) or [self.probe_batch()]
        train = torch.cat([self.neg_elbo(x) for x in recent]).mean().item()
        return {"train_neg_elbo": train, **self._test_metrics}
