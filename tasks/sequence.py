r"""An autoregressive sequence latent with its exact gradient: a small policy over sequences
y = (y_1..y_L) of K tokens, one-hot Y [*S, L, K] (primitives/sequences.py), and an objective
on whole sequences.

.. math:: p_\theta(y) = \prod_{t=1}^{L} \mathrm{softmax}(h_\theta(y_{<t}))[y_t]

Policies (knob ``policy``), both nn.Modules of the primitives.sequences.Policy contract; they
read a token only by matmul, so a relaxed or straight-through token carries its gradient to
every later step:

- ``tabular``: bigram logits, a first-token vector a [K] and one transition matrix per step
  B [L-1, K, K]: :math:`h(y_{<1}) = a`, :math:`h(y_{<t+1}) = y_t^\top B_t`; the state is
  the previous token (zeros before the first).
- ``gru``: a GRU of hidden size H (knob ``hidden``) on the one-hot prefix, written with
  Linear layers (nn.GRUCell's fused kernel fails under torch.func.vmap with
  randomness="different": "output with shape [S, H] doesn't match the broadcast shape"):
  :math:`h(y_{<t}) = W s_t + c` with :math:`s_1` a learned vector and
  :math:`s_{t+1} = (1 - z) \odot n + z \odot s_t`, where
  :math:`r = \sigma(U_r y_t + V_r s_t + b_r)`, :math:`z = \sigma(U_z y_t + V_z s_t + b_z)`,
  :math:`n = \tanh(U_n y_t + b_n + r \odot (V_n s_t + b'_n))`.

Every policy parameter starts at N(0, init_scale^2), the GRU's weight matrices at
N(0, init_scale^2 / fan_in) (so its logits' scale does not grow with H), drawn from
``model_seed`` after the target and W: the initial policy (not uniform) and the objective are
the same in every run.

Objectives (knob ``objective``), Y [*S, L, K] -> [*S], with a target sequence T (one-hot,
tokens uniform from ``model_seed``):

.. math::
    f_{\mathrm{quadratic}}(Y) = \frac{1}{L} \lVert Y - T \rVert_F^2
        - \lambda \sum_{t=1}^{L-1} Y_t^\top W Y_{t+1}, \qquad W_{jk} \sim N(0, 1)

    f_{\mathrm{edit}}(Y) = \mathrm{Levenshtein}(\arg\max Y, \arg\max T) / L

The quadratic is defined and smooth on relaxed Y (``relaxable = True``); the edit distance
reads hard tokens only (``relaxable = False``: pathwise estimators must refuse it).

Exact gradient: enumerate all K^L sequences (at most primitives.sequences.MAX_SEQUENCES,
checked at construction), :math:`\mathbb{E}[f] = \sum_y p_\theta(y) f(y)`, and autograd
through it, the score-function identity :math:`\nabla \mathbb{E}[f] =
\mathbb{E}[f \nabla \log p_\theta]` [2] summed exactly. evaluate() reports E[f]
(``exact_objective``) and the entropy of p in nats (``entropy``). The sequence setting is that
of the unordered-set estimator's experiments [1].

References:
    [1] W. Kool, H. van Hoof, M. Welling (2019). Stochastic beams and where to find them:
        the Gumbel-top-k trick for sampling sequences without replacement.
    [2] R. J. Williams (1992). Simple statistical gradient-following algorithms for
        connectionist reinforcement learning.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from primitives.sequences import SEQUENCE, check_enumerable, enumerate_sequences, log_prob
from tasks.base import Task, adam
from tasks.polynomial import finite_number, integer
from tasks.registry import register

POLICIES = ("tabular", "gru")
OBJECTIVES = ("quadratic", "edit_distance")


def seeded_normal_(module: nn.Module, scale: float, generator: torch.Generator) -> None:
    """Every parameter of ``module`` drawn N(0, scale^2) from ``generator`` in name order, the
    weights of its Linear layers N(0, scale^2 / fan_in)."""
    fan_in = {id(m.weight): m.in_features for m in module.modules() if isinstance(m, nn.Linear)}
    with torch.no_grad():
        for _, param in sorted(module.named_parameters()):
            std = scale / math.sqrt(fan_in.get(id(param), 1))
            param.copy_(torch.randn(param.shape, generator=generator) * std)


class Tabular(nn.Module):
    """Bigram policy: first-token logits ``first`` [K], per-step transitions ``transition``
    [L-1, K, K] (absent for L = 1); state [*S, K], the previous token."""

    def __init__(self, length: int, vocab: int) -> None:
        super().__init__()
        self.length, self.vocab = length, vocab
        self.first = nn.Parameter(torch.zeros(vocab))
        if length > 1:
            self.transition = nn.Parameter(torch.zeros(length - 1, vocab, vocab))

    def start(self, shape: tuple[int, ...]) -> Tensor:
        return self.first.new_zeros(shape + (self.vocab,))  # [*S, K]: no token yet

    def next_logits(self, state: Tensor, t: int) -> Tensor:
        if t == 0:
            return self.first.expand(state.shape)  # [*S, K]
        return state @ self.transition[t - 1]  # [*S, K] @ [K, K]

    def advance(self, state: Tensor, token: Tensor, t: int) -> Tensor:
        return token  # [*S, K]


class GRU(nn.Module):
    """GRU policy (module docstring) of hidden size H; state [*S, H]."""

    def __init__(self, length: int, vocab: int, hidden: int) -> None:
        super().__init__()
        self.length, self.vocab, self.hidden = length, vocab, hidden
        self.initial = nn.Parameter(torch.zeros(hidden))  # s_1
        self.token_gates = nn.Linear(vocab, 3 * hidden)  # U_r, U_z, U_n; b_r, b_z, b_n
        self.state_gates = nn.Linear(hidden, 3 * hidden)  # V_r, V_z, V_n; their biases
        self.readout = nn.Linear(hidden, vocab)  # W, c

    def start(self, shape: tuple[int, ...]) -> Tensor:
        return self.initial.expand(shape + (self.hidden,))  # [*S, H]

    def next_logits(self, state: Tensor, t: int) -> Tensor:
        return self.readout(state)  # [*S, K]

    def advance(self, state: Tensor, token: Tensor, t: int) -> Tensor:
        x_r, x_z, x_n = self.token_gates(token).chunk(3, -1)  # each [*S, H]
        s_r, s_z, s_n = self.state_gates(state).chunk(3, -1)
        reset, update = torch.sigmoid(x_r + s_r), torch.sigmoid(x_z + s_z)
        new = torch.tanh(x_n + reset * s_n)
        return (1 - update) * new + update * state  # [*S, H]


def edit_distance(tokens: Tensor, target: Tensor) -> Tensor:
    r"""Levenshtein distance [*S] between token sequences [*S, L] and a target [M], one DP row
    per token: with the candidates c_j = min(D_{i-1,j} + 1, D_{i-1,j-1} + [a_i != b_j]) and
    c_0 = i, the insertions give :math:`D_{i,j} = \min_{j' \le j} (c_{j'} + j - j')`, a cummin."""
    steps = torch.arange(target.shape[0] + 1, device=tokens.device)  # [M + 1]: 0..M
    row = steps.expand(tokens.shape[:-1] + steps.shape)  # [*S, M + 1]: D_0 = j
    for i in range(tokens.shape[-1]):
        mismatch = (tokens[..., i : i + 1] != target).long()  # [*S, M]
        diagonal = torch.minimum(row[..., 1:] + 1, row[..., :-1] + mismatch)  # [*S, M]
        candidates = torch.cat([torch.full_like(row[..., :1], i + 1), diagonal], -1)  # [*S, M + 1]
        row = torch.cummin(candidates - steps, -1).values + steps
    return row[..., -1]


@register("sequence")
class Sequence(Task):
    family = SEQUENCE
    # f is defined and differentiable on relaxed tokens (pathwise estimators need it)
    relaxable: bool

    def __init__(
        self,
        vocab: int = 4,
        length: int = 5,
        policy: str = "tabular",
        objective: str = "quadratic",
        coupling: float = 0.5,
        hidden: int = 16,
        init_scale: float = 0.5,
        lr: float = 0.01,
        model_seed: int = 0,
    ) -> None:
        name = self.label()
        vocab, length = integer(name, "vocab", vocab, 2), integer(name, "length", length, 1)
        if policy not in POLICIES:
            raise ValueError(f"{name} policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if objective not in OBJECTIVES:
            valid = ", ".join(OBJECTIVES)
            raise ValueError(f"{name} objective must be one of {valid}, got {objective!r}")
        self.coupling = finite_number(name, "coupling", coupling)
        hidden = integer(name, "hidden", hidden, 1)
        if not finite_number(name, "init_scale", init_scale) >= 0:
            raise ValueError(f"{name} init_scale must be >= 0, got {init_scale!r}")
        if not finite_number(name, "lr", lr) > 0:
            raise ValueError(f"{name} lr must be > 0, got {lr!r}")
        model_seed = integer(name, "model_seed", model_seed, 0)
        check_enumerable(length, vocab, f"{name}'s exact gradient")
        self.objective_name, self.lr = objective, float(lr)
        self.relaxable = objective == "quadratic"
        self.latent_shape = (length, vocab)
        generator = torch.Generator().manual_seed(model_seed)
        self.target_tokens = torch.randint(vocab, (length,), generator=generator)  # [L]
        self.target = nn.functional.one_hot(self.target_tokens, vocab).float()  # [L, K]
        self.weights = torch.randn(vocab, vocab, generator=generator)  # W [K, K]
        tabular = policy == "tabular"
        self.parameters = Tabular(length, vocab) if tabular else GRU(length, vocab, hidden)
        seeded_normal_(self.parameters, float(init_scale), generator)

    @property
    def draw_bytes(self) -> int:
        """The base's estimate, plus the GRU's state and three gates per step."""
        width = 4 * self.parameters.hidden if isinstance(self.parameters, GRU) else 0
        return super().draw_bytes + 8 * self.latent_shape[0] * width * 4

    def logits(self, batch: Any = None) -> nn.Module:
        """The policy itself: estimators decode from it (under functional_call, with the
        substituted parameters)."""
        return self.parameters

    def objective(self, z: Tensor, batch: Any = None) -> Tensor:
        if self.objective_name == "edit_distance":
            distance = edit_distance(z.argmax(-1), self.target_tokens)  # [*S]
            return distance.to(z.dtype) / self.latent_shape[0]
        distance = (z - self.target.to(z)).square().sum((-2, -1)) / self.latent_shape[0]  # [*S]
        pairs = ((z[..., :-1, :] @ self.weights.to(z)) * z[..., 1:, :]).sum((-2, -1))  # [*S]
        return distance - self.coupling * pairs

    def enumerated(self) -> tuple[Tensor, Tensor]:
        """log p(y) and f(y) [K^L] of every sequence, differentiable in the policy."""
        first = next(self.parameters.parameters())
        y = enumerate_sequences(*self.latent_shape, like=first)  # [K^L, L, K]
        return log_prob(self.parameters, y), self.objective(y)

    def exact_gradient(self, batch: Any = None) -> dict[str, Tensor]:
        """Autograd through E[f] = sum_y p(y) f(y) over every sequence."""
        params = self.estimand()
        with torch.enable_grad():
            log_p, f = self.enumerated()
            grads = torch.autograd.grad((log_p.exp() * f).sum(), list(params.values()))
        return dict(zip(params, grads))

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            log_p, f = self.enumerated()
            p = log_p.exp()
            return {"exact_objective": (p * f).sum().item(), "entropy": -(p * log_p).sum().item()}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters.parameters(), self.lr)]

    def to(self, device: torch.device) -> "Sequence":
        super().to(device)
        self.target_tokens, self.target, self.weights = (
            t.to(device) for t in (self.target_tokens, self.target, self.weights)
        )
        return self
