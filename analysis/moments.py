r"""Streaming moments of gradient estimates: O(P) state whatever the number of draws.

``Moments.update(chunk)`` takes draws [n, P] as a numpy array or a torch tensor (on any
device; the state stays on it, in float64) and keeps what analysis.statistics needs:

- per coordinate: the running mean and the sum of squared deviations (Chan et al.'s pairwise
  update, stable when the mean is far larger than the spread), giving tr(Cov) and the SNR;
  within blocks, the sums of squared and fourth-power deviations (how many draws carry each
  coordinate's spread: ``Summary.coordinate_effective``);
- over differences d = x_{2a} - x_{2a+1} of consecutive draws within a chunk (mean 0,
  covariance 2 Cov, independent of each other): sum ||d||^2, sum ||d||^4, and the pair sum
  sum_{a != b} (d_a . d_b)^2 over a chunk's first ``gram_rows`` differences. Since
  E (d_a . d_b)^2 = 4 tr(Cov^2) and E ||d_a||^2 ||d_b||^2 = 4 tr(Cov)^2, these give
  distribution-free unbiased estimates of tr(Cov^2) and of Var ||x - mu||^2, which the bias
  test's null and the variance CI need (a U-statistic: no Gaussian assumption, no [N, P]);
- with ``bank`` (a reference's differences [K, P]): the pair sum (d_a . e_b)^2, whose mean is
  4 tr(Cov Cov_ref), the cross term of an estimated reference's noise;
- with ``keep_bank``: the stream's own first K differences, kept ([K, P]; ``Summary.bank``),
  for the largest noise variance in any direction (``Summary.top_variance``; E (d_a . v)^2 =
  2 v' Cov v), which the bias CI needs;
- with ``reference``: the sum over draws of cos(x_i, reference);
- the number of distinct draws (up to DISTINCT_CAP) and the draws' float precision.

No hand-written code where a library has it: the update is a few array operations written
once for numpy and torch alike (analysis/ imports no torch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DISTINCT_CAP = 64  # distinct draws counted up to this many (enough to tell "few")
GRAM_FLOPS = 2**24  # bound on one chunk's Gram products: gram_rows = sqrt(GRAM_FLOPS / P) (289 rows at P = 200)


def gram_rows(dims: int) -> int:
    """Differences per chunk entering the pair sums: sqrt(GRAM_FLOPS / P), at least 8."""
    return max(8, int(math.sqrt(GRAM_FLOPS / max(dims, 1))))


def direction_rows(dims: int) -> int:
    """Differences a probe keeps for its noise along the bias and its top direction
    (Summary.noise_along, top_variance): gram_rows, at least 16. A mean of K squares has
    relative sd about sqrt(2 / K), which widens the bias CI's true spread as a t with K degrees
    of freedom does a normal's: at K = 64 (the old cap) the CI covered 93% where it should 95%;
    below P = 4096 the rows cost under 2 MiB (K P float64 = 8 sqrt(GRAM_FLOPS P) bytes)."""
    return max(16, gram_rows(dims))


def _float64(x: Any) -> Any:
    return x.double() if hasattr(x, "double") else np.asarray(x, dtype=np.float64)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _like(x: Any, values: Any) -> Any:
    """``values`` as an array of x's kind (a torch tensor on x's device, or numpy), float64."""
    return x.new_tensor(np.asarray(values, dtype=np.float64)) if hasattr(x, "new_tensor") else np.asarray(values, np.float64)


def _epsilon(dtype: Any) -> float:
    name = str(dtype).removeprefix("torch.")
    return 2.0**-7 if name == "bfloat16" else float(np.finfo(name).eps)


@dataclass(frozen=True)
class Summary:
    """What a stream of draws leaves, as numpy and floats (see Moments)."""

    count: int  # N
    mean: np.ndarray  # [P]
    sq_dev: np.ndarray  # [P] sum over draws of (x_ij - mean_j)^2
    differences: int  # number of differences d
    diff_sq: float  # sum ||d||^2
    diff_sq2: float  # sum ||d||^4
    gram: float  # sum over pairs a != b within chunks of (d_a . d_b)^2
    gram_pairs: int
    cross: float  # sum of (d_a . e_b)^2 against a reference bank
    cross_pairs: int
    norm_sq_dev: float  # sum over chunks of sum_i (q_i - mean q)^2, q_i = ||x_i - chunk mean||^2
    norm_sq_dof: int  # sum over chunks of (n_c - 1)
    cosine: float  # mean over draws of cos(x_i, reference); nan without one
    distinct: int  # distinct draws, counted up to DISTINCT_CAP
    epsilon: float  # machine epsilon of the draws' dtype
    bank: np.ndarray | None = None  # [K, P] the first K differences, with keep_bank
    within: np.ndarray | None = None  # [P] sum over blocks of sum_i (x_ij - block mean_j)^2
    fourth: np.ndarray | None = None  # [P] the same of the fourth powers

    @property
    def trace(self) -> float:
        """tr(Cov): unbiased."""
        return float(self.sq_dev.sum()) / (self.count - 1)

    @property
    def trace_sq(self) -> float:
        """tr(Cov^2): unbiased, distribution-free (nan without pairs of differences)."""
        return self.gram / self.gram_pairs / 4 if self.gram_pairs else float("nan")

    @property
    def norm_sq_variance(self) -> float:
        """Var ||x - mu||^2, conservatively: the pooled within-chunk variance of q_i = ||x_i - chunk
        mean||^2, which exceeds it by about 4 tr(Cov^2) / n_c (the chunk mean's own noise). Left in
        on purpose: subtracting it (and clipping at 0) undercovered light-tailed draws, whose
        variance estimate is skewed to the left (docs/calibration.md)."""
        return self.norm_sq_dev / self.norm_sq_dof if self.norm_sq_dof else float("nan")

    @property
    def trace_variance(self) -> float:
        """Var of ``trace`` (a U-statistic of order 2): Var||x - mu||^2 / N + 2 tr(Cov^2) / (N (N-1)),
        estimated term by term; the first term is clipped at 0."""
        n = self.count
        return max(self.norm_sq_variance, 0.0) / n + 2 * self.trace_sq / (n * (n - 1))

    @property
    def effective_differences(self) -> float:
        """(sum ||d||^2)^2 / sum ||d||^4: how many differences carry the spread (1 when one draw
        dominates, the number of differences when all are alike)."""
        return self.diff_sq**2 / self.diff_sq2 if self.diff_sq2 > 0 else 0.0

    def coordinate_effective(self) -> float:
        """The median over coordinates (those that vary) of (sum dev^2)^2 / sum dev^4: how many
        draws carry a coordinate's spread, about N / kurtosis (N/3 for Gaussian draws, N/9 for
        exponential ones, about the number of rare events where a coordinate moves only on
        them); nan without blocks of two draws."""
        if self.within is None:
            return float("nan")
        keep = self.fourth > 0
        return float(np.median(self.within[keep] ** 2 / self.fourth[keep])) if keep.any() else float("nan")

    def noise_along(self, v: np.ndarray) -> float:
        """v' Cov v from the kept differences (nan without them): unbiased, the mean of (d_a . v)^2 / 2."""
        if self.bank is None or not len(self.bank):
            return float("nan")
        return float(np.mean((self.bank @ v) ** 2) / 2)

    def top_variance(self) -> float:
        """The largest variance of the draws in any one direction, max_v v' Cov v, estimated
        without the upward bias of a sample eigenvalue: the direction is the top right singular
        vector of one half of the kept differences, the variance along it the mean of
        (d_a . v)^2 / 2 over the other half, averaged over the two ways round (nan with fewer
        than 4 kept). It is at most the true maximum on average, close to it where one
        direction stands out."""
        if self.bank is None or len(self.bank) < 4:
            return float("nan")
        half = len(self.bank) // 2
        folds = self.bank[:half], self.bank[half : 2 * half]
        along = [np.mean((held @ np.linalg.svd(fit, full_matrices=False)[2][0]) ** 2) / 2 for fit, held in (folds, folds[::-1])]
        return float(np.mean(along))

    def bank_cross(self) -> float:
        """tr(Cov Cov_ref) from the pair sum against the reference bank (nan without)."""
        return self.cross / self.cross_pairs / 4 if self.cross_pairs else float("nan")


class Moments:
    """Accumulates a stream of draws [n, P] chunk by chunk (see the module docstring).

    Args:
        reference: [P] the reference the cosine is taken against, or None.
        bank: [K, P] a reference's differences (``Moments.bank`` of its stream), or None.
        keep_bank: keep up to this many of this stream's own differences as ``bank``.
        block: rows per processing block (within-block statistics: differences, centering).
    """

    def __init__(self, reference: Any = None, bank: Any = None, keep_bank: int = 0, block: int = 1000) -> None:
        self.reference, self._bank_in, self.keep_bank, self.block = reference, bank, keep_bank, block
        self.pending: Any = None
        self.count, self.mean, self.sq_dev = 0, None, None
        self.differences, self.diff_sq, self.diff_sq2, self.gram, self.gram_pairs = 0, 0.0, 0.0, 0.0, 0
        self.cross, self.cross_pairs, self.cosine_sum = 0.0, 0, 0.0
        self.norm_sq_dev, self.norm_sq_dof = 0.0, 0
        self.within = self.fourth = None  # [P] sums over blocks of sum_i dev^2, sum_i dev^4 (dev from the block mean)
        self.keys: set[tuple[float, float]] = set()
        self.bank: Any = None
        self._r = self._bank = None
        self.epsilon = float("nan")

    def update(self, chunk: Any) -> None:
        """Add draws [n, P] (numpy or torch, any float dtype). They are processed in blocks of
        ``block`` rows whatever the caller's chunks, so the result depends on the draws and the
        block alone (the probe and gradient_statistics agree on the same draws)."""
        x = _float64(chunk)
        if self.count == 0 and self.pending is None:  # the reference and the bank move to the draws' kind and device once
            self.epsilon = _epsilon(chunk.dtype)
            self._r = None if self.reference is None else _like(x, _numpy(self.reference).reshape(-1))
            self._bank = None if self._bank_in is None else _like(x, _numpy(self._bank_in))
        if self.pending is not None:
            x, self.pending = _concat(self.pending, x), None
        while x.shape[0] >= self.block:
            self._add(x[: self.block])
            x = x[self.block :]
        if x.shape[0]:
            self.pending = x

    def flush(self) -> None:
        """Process the last, partial block."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._add(pending)

    def _add(self, x: Any) -> None:
        n = x.shape[0]
        mean = x.mean(0)
        dev = x - mean
        dev *= dev  # squared deviations from the block mean, in place
        sq_dev = dev.sum(0)
        if self.mean is None:
            self.mean, self.sq_dev = mean, sq_dev
        else:  # Chan, Golub and LeVeque's pairwise update
            total, delta = self.count + n, mean - self.mean
            self.mean = self.mean + delta * (n / total)
            self.sq_dev = self.sq_dev + sq_dev + delta * delta * (self.count * n / total)
        self.count += n
        if n >= 2:  # q_i = ||x_i - block mean||^2, spread about their own mean: no cancellation of large terms
            q = dev.sum(1)
            q = q - q.mean()
            self.norm_sq_dev += float((q * q).sum())
            self.norm_sq_dof += n - 1
            dev *= dev  # fourth powers, in place
            within, fourth = (sq_dev, dev.sum(0)) if self.within is None else (self.within + sq_dev, self.fourth + dev.sum(0))
            self.within, self.fourth = within, fourth
        del dev
        self._differences(x[0 : n - n % 2 : 2] - x[1 : n - n % 2 : 2])
        if self._r is not None or len(self.keys) < DISTINCT_CAP:
            norms_sq = (x * x).sum(1)
        if self._r is not None:
            norms = norms_sq**0.5 * float((self._r * self._r).sum() ** 0.5)
            keep = norms > 0  # a zero draw (or reference) counts 0
            self.cosine_sum += float(((x[keep] @ self._r) / norms[keep]).sum())
        if len(self.keys) < DISTINCT_CAP:
            rows = np.stack([_numpy(x[: DISTINCT_CAP * 4].sum(1)), _numpy(norms_sq[: DISTINCT_CAP * 4])], 1)
            self.keys.update(map(tuple, rows.tolist()))

    def _differences(self, d: Any) -> None:
        k = d.shape[0]
        if k == 0:
            return
        sq = (d * d).sum(1)
        self.differences += k
        self.diff_sq += float(sq.sum())
        self.diff_sq2 += float((sq * sq).sum())
        rows = d[: gram_rows(d.shape[1])]
        if rows.shape[0] >= 2:
            g = rows @ rows.T
            self.gram += float((g * g).sum() - (sq[: rows.shape[0]] ** 2).sum())
            self.gram_pairs += rows.shape[0] * (rows.shape[0] - 1)
        if self._bank is not None:
            cross = rows @ self._bank.T
            self.cross += float((cross * cross).sum())
            self.cross_pairs += rows.shape[0] * self._bank.shape[0]
        if self.keep_bank and (self.bank is None or self.bank.shape[0] < self.keep_bank):
            take = rows[: self.keep_bank - (0 if self.bank is None else self.bank.shape[0])]
            self.bank = _copy(take) if self.bank is None else _concat(self.bank, take)  # not a view of the block

    def summary(self) -> Summary:
        self.flush()
        if self.count < 2:
            raise ValueError(f"statistics need at least 2 draws, got {self.count}")
        return Summary(
            self.count, _numpy(self.mean), _numpy(self.sq_dev), self.differences, self.diff_sq, self.diff_sq2,
            self.gram, self.gram_pairs, self.cross, self.cross_pairs, self.norm_sq_dev, self.norm_sq_dof,
            self.cosine_sum / self.count if self.reference is not None else float("nan"),
            min(len(self.keys), DISTINCT_CAP), self.epsilon, None if self.bank is None else _numpy(self.bank),
            None if self.within is None else _numpy(self.within), None if self.fourth is None else _numpy(self.fourth),
        )  # fmt: skip


def _copy(a: Any) -> Any:
    return a.clone() if hasattr(a, "clone") else a.copy()


def _concat(a: Any, b: Any) -> Any:
    if not hasattr(a, "new_empty"):
        return np.concatenate([a, b])
    out = a.new_empty((a.shape[0] + b.shape[0], a.shape[1]))
    out[: a.shape[0]], out[a.shape[0] :] = a, b
    return out
