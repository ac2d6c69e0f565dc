r"""A pairwise Markov random field on an H x W grid with 4-neighbour edges and K states per
site, and its exact inference: log Z, the marginals of p and the MAP state.

Energy over one-hot sites x_i (site i = (r, c), flattened as r * W + c):

.. math::
    E(x) = -\sum_i h_i^\top x_i - \sum_{(i, j)} x_i^\top J_{ij}\, x_j, \qquad
    p(x) = \exp(-E(x)) / Z

with horizontal couplings J_h [H, W-1, K, K] between (r, c) and (r, c+1) and vertical ones
J_v [H-1, W, K, K] between (r, c) and (r+1, c). ``potts`` builds J = s * scale * I (a reward
for equal neighbours; K = 2 is the Ising model with coupling scale / 2 in +-1 spins).

Exact inference, two ways (no library does either for a grid), and exact sampling by
Gumbel-max over the enumerated joint states:
- enumeration of all K^(H W) joint states, up to ``MAX_JOINT_STATES`` = 2^20;
- the transfer-matrix recursion along the longer side, whose slices (columns) of length
  m = min(H, W) have K^m joint states, up to ``MAX_COLUMN_STATES`` = 2^10 (width 10 for
  K = 2, at any length): forward-backward in log space gives log Z and the marginals, and
  the same recursion with max and back-pointers (max-product, Viterbi) gives the MAP state.
All of it runs in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from primitives.sampling import gumbel_top_k

MAX_JOINT_STATES = 2**20
MAX_COLUMN_STATES = 2**10
COUPLINGS = ("ferromagnetic", "antiferromagnetic", "spin_glass")


def digits(index: Tensor, length: int, base: int) -> Tensor:
    """[*I, length] base-``base`` digits of ``index``, most significant first."""
    powers = base ** torch.arange(length - 1, -1, -1, device=index.device)
    return torch.div(index.unsqueeze(-1), powers, rounding_mode="floor") % base


@dataclass
class Grid:
    """fields h [H, W, K]; couplings J_h [H, W-1, K, K] and J_v [H-1, W, K, K]."""

    fields: Tensor
    horizontal: Tensor
    vertical: Tensor

    @classmethod
    def potts(cls, height: int, width: int, classes: int, field_scale: float, coupling_scale: float,
              coupling: str, seed: int) -> "Grid":
        """Fields ~ field_scale * N(0, 1); J = s * coupling_scale * I_K with s = +1
        (ferromagnetic), -1 (antiferromagnetic) or a fair random sign per edge (spin_glass)."""
        if coupling not in COUPLINGS:
            raise ValueError(f"mrf coupling must be one of {', '.join(COUPLINGS)}, got {coupling!r}")
        gen = torch.Generator().manual_seed(seed)
        fields = field_scale * torch.randn(height, width, classes, generator=gen, dtype=torch.float64)

        def edges(h: int, w: int) -> Tensor:
            if coupling == "spin_glass":
                sign = torch.randint(0, 2, (h, w), generator=gen).to(torch.float64) * 2 - 1
            else:
                sign = torch.full((h, w), 1.0 if coupling == "ferromagnetic" else -1.0, dtype=torch.float64)
            return (coupling_scale * sign)[..., None, None] * torch.eye(classes, dtype=torch.float64)

        return cls(fields, edges(height, width - 1), edges(height - 1, width))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.fields.shape)  # type: ignore[return-value]

    def to(self, device: torch.device) -> "Grid":
        return Grid(self.fields.to(device), self.horizontal.to(device), self.vertical.to(device))

    def transposed(self) -> "Grid":
        """The same model on the W x H grid (rows become columns)."""
        return Grid(self.fields.transpose(0, 1), self.vertical.transpose(0, 1), self.horizontal.transpose(0, 1))

    # ---- energies ---------------------------------------------------------------------------

    def energy(self, x: Tensor, fields: Tensor | None = None) -> Tensor:
        """E(x) for one-hot (or relaxed) sites x [*S, H, W, K] -> [*S], in x's dtype; multilinear in the sites."""
        h = (self.fields if fields is None else fields).to(x.dtype)
        unary = (x * h).sum((-3, -2, -1))
        across = torch.einsum("...hwk,hwkl,...hwl->...", x[..., :, :-1, :], self.horizontal.to(x.dtype), x[..., :, 1:, :])
        down = torch.einsum("...hwk,hwkl,...hwl->...", x[..., :-1, :, :], self.vertical.to(x.dtype), x[..., 1:, :, :])
        return -(unary + across + down)

    def state_energy(self, states: Tensor, fields: Tensor | None = None) -> Tensor:
        """E of integer states [*S, H, W] -> [*S] (by indexing; ``energy`` on one-hots agrees).
        ``fields`` [*S, H, W, K] replaces h (perturbed potentials)."""
        h = self.fields if fields is None else fields
        batch = torch.broadcast_shapes(states.shape[:-2], h.shape[:-3])
        states = states.expand(batch + states.shape[-2:])
        unary = h.expand(batch + h.shape[-3:]).gather(-1, states.unsqueeze(-1)).squeeze(-1).sum((-2, -1))
        height, width, _ = self.shape
        r, c = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        across = self.horizontal[r[:, :-1], c[:, :-1], states[..., :, :-1], states[..., :, 1:]].sum((-2, -1))
        down = self.vertical[r[:-1], c[:-1], states[..., :-1, :], states[..., 1:, :]].sum((-2, -1))
        return -(unary + across + down)

    # ---- exact inference ----------------------------------------------------------------------

    def joint_states(self) -> int:
        height, width, classes = self.shape
        return classes ** (height * width)

    def column_states(self) -> int:
        height, width, classes = self.shape
        return classes ** min(height, width)

    def exact_feasible(self) -> bool:
        return self.column_states() <= MAX_COLUMN_STATES or self.joint_states() <= MAX_JOINT_STATES

    def limits(self) -> str:
        height, width, classes = self.shape
        return (
            f"exact inference needs K^(H*W) <= 2^20 joint states (enumeration) or K^min(H,W) <= 2^10 "
            f"column states (transfer matrix); this grid has H={height}, W={width}, K={classes}: "
            f"{classes}^{height * width} joint, {classes}^{min(height, width)} column states"
        )

    def exact(self, method: str = "auto") -> tuple[float, Tensor]:
        """(log Z, marginals of p [H, W, K]) by ``method``: enumerate | transfer | auto
        (the transfer matrix where it fits, else enumeration, else ValueError)."""
        if method == "auto":
            method = "transfer" if self.column_states() <= MAX_COLUMN_STATES else "enumerate"
        if method == "enumerate" and self.joint_states() <= MAX_JOINT_STATES:
            return self._enumerate()
        if method == "transfer" and self.column_states() <= MAX_COLUMN_STATES:
            if self.shape[0] > self.shape[1]:
                log_z, marginals = self.transposed()._transfer()
                return log_z, marginals.transpose(0, 1)
            return self._transfer()
        raise ValueError(self.limits())

    def all_states(self) -> Tensor:
        """[K^(H W), H, W]: every joint state, in base-K counting order."""
        height, width, classes = self.shape
        if self.joint_states() > MAX_JOINT_STATES:
            raise ValueError(self.limits())
        index = torch.arange(self.joint_states(), device=self.fields.device)
        return digits(index, height * width, classes).reshape(-1, height, width)

    def sample(self, sample_shape: tuple[int, ...]) -> Tensor:
        """Exact samples [*S, H, W] of p: Gumbel-max over every joint state's -E(x) (memory:
        S x K^(H W) noise, so for small grids)."""
        states = self.all_states()
        return states[gumbel_top_k(-self.state_energy(states), 1, sample_shape)[..., 0]]

    def _enumerate(self) -> tuple[float, Tensor]:
        states = self.all_states()
        log_p = -self.state_energy(states)
        log_z = torch.logsumexp(log_p, 0)
        weights = (log_p - log_z).exp()  # [S]
        one_hot = torch.zeros(states.shape + (self.shape[2],), dtype=weights.dtype, device=weights.device)
        one_hot.scatter_(-1, states.unsqueeze(-1), 1.0)
        return log_z.item(), torch.einsum("s,shwk->hwk", weights, one_hot)

    def _columns(self, fields: Tensor) -> tuple[Tensor, Tensor]:
        """Column states cs [S, H] and the log-potential phi [*B, W, S] of each column state
        (its fields and vertical couplings)."""
        height, width, classes = self.shape
        cs = digits(torch.arange(classes**height, device=fields.device), height, classes)  # [S, H]
        rows = torch.arange(height, device=fields.device)
        unary = fields.transpose(-3, -2)[..., rows, cs].sum(-1)  # [*B, W, H, K] -> [*B, W, S, H] -> [*B, W, S]
        vertical = self.vertical.transpose(0, 1)[:, rows[:-1], cs[:, :-1], cs[:, 1:]].sum(-1)  # [W, S]
        return cs, unary + vertical

    def _between(self, cs: Tensor, c: int) -> Tensor:
        """psi [S, S]: log-potential of the horizontal couplings between columns c and c + 1
        (summed row by row, so memory stays at S^2)."""
        psi = torch.zeros(cs.shape[0], cs.shape[0], dtype=self.fields.dtype, device=cs.device)
        for r in range(cs.shape[1]):
            psi += self.horizontal[r, c][cs[:, r, None], cs[None, :, r]]
        return psi

    def _transfer(self) -> tuple[float, Tensor]:
        """Forward-backward over the W columns in log space."""
        height, width, classes = self.shape
        cs, phi = self._columns(self.fields)
        psi = [self._between(cs, c) for c in range(width - 1)]
        alpha, beta = [phi[0]], [torch.zeros_like(phi[0])]
        for c in range(1, width):
            alpha.append(phi[c] + torch.logsumexp(alpha[-1][:, None] + psi[c - 1], 0))
        for c in range(width - 2, -1, -1):
            beta.insert(0, torch.logsumexp(psi[c] + (phi[c + 1] + beta[0])[None, :], 1))
        log_z = torch.logsumexp(alpha[-1], 0)
        column = (torch.stack(alpha) + torch.stack(beta) - log_z).exp()  # [W, S]
        one_hot = torch.zeros(cs.shape + (classes,), dtype=column.dtype, device=column.device).scatter_(-1, cs.unsqueeze(-1), 1.0)
        return log_z.item(), torch.einsum("ws,shk->hwk", column, one_hot)

    def map_state(self, fields: Tensor | None = None) -> Tensor:
        """argmin_x E(x) with fields [*B, H, W, K] (default h): integer states [*B, H, W], by
        max-product over columns (exact on any grid within the transfer-matrix limit)."""
        fields = self.fields if fields is None else fields
        if self.column_states() > MAX_COLUMN_STATES:
            raise ValueError(self.limits())
        if self.shape[0] > self.shape[1]:
            return self.transposed().map_state(fields.transpose(-3, -2)).transpose(-2, -1)
        cs, phi = self._columns(fields)
        score, pointers = phi[..., 0, :], []
        for c in range(1, self.shape[1]):
            best, arg = (score.unsqueeze(-1) + self._between(cs, c - 1)).max(-2)  # over the previous column's state
            score = phi[..., c, :] + best
            pointers.append(arg)
        state = [score.argmax(-1)]
        for arg in reversed(pointers):
            state.insert(0, arg.gather(-1, state[0].unsqueeze(-1)).squeeze(-1))
        return cs[torch.stack(state, -1)].transpose(-2, -1)  # [*B, W, H] -> [*B, H, W]
