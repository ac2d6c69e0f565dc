r"""IndeCateR: the CatLog-derivative trick, one latent at a time, every category enumerated.

For each of S samples :math:`z \sim p`, each latent d and each of its K states k (bernoulli:
K = 2, states 0 and 1), f is evaluated with latent d set to k and the others held at
:math:`z_{-d}`:

.. math::
    \hat g = \frac{1}{S} \sum_{s=1}^{S} \Big( \sum_{d=1}^{D} \sum_{k=1}^{K}
             \mathrm{sg}\big(f(z^{(s)}_{-d}, z_d = k)\big) \nabla_\phi p_d(k)
             + \nabla_\phi f(z^{(s)}; \phi) \Big),
    \qquad p_d = \sigma(\ell_d) \text{ or } \mathrm{softmax}(\ell_d)

The inner sum over k is :math:`\nabla_{\phi} \mathbb{E}_{z_d \sim p_d}[f(z_{-d}, z_d)]` with
:math:`z_{-d}` held (the CatLog-derivative trick of [1], Rao-Blackwellized over z_d); as
z_{-d} is a sample of its marginal, the score part is unbiased for every coordinate, and the
second term is the pathwise part, for f that depends on phi itself. For a separable f (a sum
of terms of one latent each, e.g. tasks/toy_quadratic.py), f(z_{-d}, k) = c(z_{-d}) + g_d(k)
and c drops (sum_k grad p_d(k) = 0): every draw is the exact gradient. Unbiased.

Read in the authors' code (github.com/ML-KULeuven/catlog, DVAE/dave.py ``indecater_multiplier``
and ``indecater_grads`` of ``Dave`` (lines 44-53, 85-108) and ``CategoricalDave`` (262-270,
301-321), synthetic/jointcategorical.py ``indecater_grads`` (lines 97-113)): the samples with
latent d replaced by each category, the score part as
``sum(stop_gradient(f(z_{-d}, k)) * softmax(theta))`` (sigmoid and 1 - sigmoid for binary
latents), f averaged over the S samples per (d, k), and the loss at the samples themselves
added for the pathwise gradient. Here f(z) is not evaluated again: it is the evaluation at
(d = 1, k = z_1).

``value`` is the mean of f over the S samples. Cost: S D K evaluations of f (2 S D for
bernoulli). Batch elements are independent, each with its own samples.
Families: bernoulli and categorical.

References:
    [1] L. De Smet, E. Sansone, P. Zuidberg Dos Martires (2023). Differentiable sampling of
        categorical distributions using the CatLog-derivative trick.
"""
from __future__ import annotations

import torch
from torch import Tensor

from estimators.base import Estimate, Estimator, Objective, check_count
from estimators.registry import register
from primitives.families import event_shape, sample


def site_probs(logits: Tensor, family: str) -> Tensor:
    """[*B, D, K]: p_d(k) of every latent d and state k (bernoulli: K = 2, states (0, 1))."""
    if family == "bernoulli":
        return torch.stack([torch.sigmoid(-logits), torch.sigmoid(logits)], -1)
    return torch.softmax(logits, -1)


def site_states(logits: Tensor, family: str) -> Tensor:
    """[K, *E]: the states of one latent, (0, 1) (E = ()) or the K one-hot vectors (E = (K,))."""
    if family == "bernoulli":
        return torch.arange(2, dtype=logits.dtype, device=logits.device)
    return torch.eye(logits.shape[-1], dtype=logits.dtype, device=logits.device)


def state_index(z: Tensor, family: str) -> Tensor:
    """[S, *B, D]: the state k of every latent of the samples z."""
    return z.long() if family == "bernoulli" else z.argmax(-1)


@register("indecater")
class IndeCateR(Estimator):
    unbiased = True

    def __init__(self, num_samples: int = 1) -> None:
        super().__init__()
        self.num_samples = check_count("indecater num_samples", num_samples, 1)

    @staticmethod
    def configurations(z: Tensor, logits: Tensor, family: str) -> Tensor:
        """[D, K, S, *B, D, *E]: what f is evaluated on, the samples z [S, *B, D, *E] with
        latent d set to state k."""
        states = site_states(logits, family)  # [K, *E]
        dims, tail = event_shape(logits, family)[0], states.dim() - 1
        middle = z.dim() - 1 - tail  # S and *B
        replaced = torch.eye(dims, dtype=torch.bool, device=z.device)
        replaced = replaced.reshape((dims, 1) + (1,) * middle + (dims,) + (1,) * tail)
        states = states.reshape((1,) + states.shape[:1] + (1,) * middle + (1,) + states.shape[1:])
        return torch.where(replaced, states, z)

    def score(self, values: Tensor, logits: Tensor, family: str) -> Tensor:
        """[S, *B]: sum_d sum_k f(z_-d, k) p_d(k) from the detached values [D, K, S, *B]; its
        gradient in the logits is the score part of the estimate."""
        per_site = values.movedim(0, -1).movedim(0, -1)  # [S, *B, D, K]
        return (per_site * site_probs(logits, family)).sum((-2, -1))

    def forward(self, logits: Tensor, f: Objective, family: str) -> Estimate:
        self.check_input(logits, family)
        z = sample(logits, family, self.num_samples)  # [S, *B, D(, K)]
        varied = self.configurations(z, logits, family)  # [D, K, S, *B, D(, K)]
        dims, classes = varied.shape[:2]
        values = self.evaluate(f, varied.flatten(0, 2), logits, family)  # [D K S, *B]
        values = values.unflatten(0, (dims, classes, self.num_samples))  # [D, K, S, *B]
        first = state_index(z, family)[..., 0]  # [S, *B], the state of latent 1 in z
        at_sample = values[0].gather(0, first.unsqueeze(0))[0]  # f(z): [S, *B]
        surrogate = (at_sample + self.score(values.detach(), logits, family)).mean()
        return Estimate(surrogate, at_sample.detach().mean(), dims * classes * self.num_samples)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}"
