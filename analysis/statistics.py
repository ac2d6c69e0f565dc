r"""Statistics of N gradient estimates against a reference (numpy and scipy only, no torch).

Everything is computed from streamed moments (analysis.moments.Summary: O(P) state); the
in-memory entry ``gradient_statistics(estimates [N, P], reference [P])`` streams the array
through the same accumulator, so both paths give the same numbers on the same draws.

Notation: draws x_i (i = 1..N) with mean mu and covariance C; the reference r is the exact
gradient g, or the mean of M draws of an unbiased reference estimator with covariance C_r.
The bias is b = mu - g; the noise of xbar - r has covariance W = C/N (+ C_r/M).

- ``bias_sq`` = ||xbar - r||^2 - tr(S)/N (- tr(S_r)/M): unbiased for ||b||^2 (it can be
  negative; average it, not bias_norm, over seeds). ``bias_norm`` = sqrt(max(bias_sq, 0)).
- Test of b = 0 and CI of ||b||: F = ||xbar - r||^2 / tr(W_hat) is, under b = 0, a weighted
  sum of chi-squares over an estimate of its mean; Satterthwaite's approximation makes it
  F(nu, nu_d), with nu = tr(W)^2 / tr(W^2) (the effective dimension; tr(W^2) from the
  distribution-free U-statistics of analysis.moments, the cross term tr(C C_r) included) and
  nu_d = 2 tr(W)^2 / Var tr(W_hat) (the denominator's own noise, measured). With a bias,
  F is approximately a scaled noncentral F whose degrees of freedom move from nu toward
  tr(W) / (noise along b) as the bias grows (``BiasNull.sf``: the variance of ||xbar - r||^2
  is 2 tr(W^2) + 4 b'Wb, and b'Wb is estimated along the observed xbar - r from kept
  differences); the 95% CI of ||b|| inverts it at 2.5% and 97.5% (``bias_norm_lo``,
  ``bias_norm_hi``), so ``bias_norm_lo > 0`` is the one-sided 2.5% test of b = 0
  (``bias_p`` is its p-value). The upper end is power-constrained: never below the one that
  d2 = its null mean would give, so a downward fluctuation does not read as ||b|| = 0 for sure.
- Rounding floor: float draws equal to the reference up to their precision are no evidence of
  bias. The noise gets rho^2 = sum_j (ROUNDING_ULPS eps (|xbar_j| + |r_j|))^2 added (eps of the
  draws' dtype), spread evenly over the coordinates.
- ``variance`` = tr(S), unbiased for tr(C), the expected squared distance of one estimate from
  its mean. Its standard error is the U-statistic's: Var||x - mu||^2 / N + 2 tr(C^2) / (N(N-1)),
  both terms estimated without bias; the 95% CI is Satterthwaite's scaled chi-square
  tr(S) nu_v / chi2(nu_v) with nu_v = 2 tr(S)^2 / se^2 (skewed as a variance estimate is).
- ``mse`` = bias_norm^2 + variance: the expected squared error of one estimate.
- ``snr``: mean over coordinates of |mean_j| / sd_j (coordinates with sd_j = 0 left out).
- ``cosine``: mean over draws of cos(x_i, r) (a zero draw counts as 0).
- ``warning``: why the intervals of a row are not to be trusted, or "" (see ``warning``).

docs/calibration.md (benchmarks/calibration.py) measures the false-alarm and coverage rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.optimize import brentq

from analysis.moments import Moments, Summary, direction_rows, gram_rows

ROUNDING_ULPS = 64  # a float32 gradient through a few hundred operations differs from float64 by a few ulps to a few tens
MIN_EFFECTIVE = 10  # fewer effective differences than this: the spread rests on a handful of draws
MIN_COORDINATE_EFFECTIVE = 5  # the median coordinate's spread on fewer draws: rare events (Gaussian N=100: 33; exponential: 11)


def _quantile_f(level: float) -> float:
    return (1 - level) / 2


def _sf(f_obs: float, nu: float, nu_d: float, lam: float) -> float:
    """P(F >= f_obs) for F ~ noncentral F(nu, nu_d, lam) (noncentral chi-square / nu when nu_d
    is infinite). scipy's ncf is wrong at nc = 0 (a negative sf): the central F there."""
    if not math.isfinite(nu_d):
        return float(sps.ncx2.sf(f_obs * nu, nu, lam) if lam > 0 else sps.chi2.sf(f_obs * nu, nu))
    return float(sps.ncf.sf(f_obs, nu, nu_d, lam) if lam > 0 else sps.f.sf(f_obs, nu, nu_d))


@dataclass(frozen=True)
class BiasNull:
    """The pieces of the bias test: ||xbar - r||^2, the noise's trace (with the rounding floor)
    and the F(nu, nu_d) that d2 / total follows when b = 0; ``along``, the noise variance along
    the observed xbar - r, for the CI."""

    d2: float
    noise: float  # tr(W_hat), no floor: d2 - noise is the unbiased bias_sq
    total: float  # noise + rho^2
    nu: float
    nu_d: float
    along: float  # the largest noise variance in one direction, max_v v'Wv (total / nu without kept differences)
    dims: int
    reference: np.ndarray

    @property
    def p(self) -> float:
        """P(F >= d2 / total) under b = 0 (1 when there is no noise at all)."""
        return 1.0 if self.total <= 0 else self.sf(0.0)

    def sf(self, bias_sq: float) -> float:
        """P(d2 >= observed) when ||b||^2 = bias_sq. d2 = ||b + e||^2, e ~ (0, W), has mean
        T + B and variance 2 tr(W^2) + 4 b'Wb (T = tr W, B = ||b||^2); c chi2(nu_B, B / c) with
        c nu_B = T matches both, b'Wb taken at its largest, B ``along``: nu_B = T (T + 2B) /
        (T^2 / nu + 2 along B), clamped to [1, P]. At B = 0 it is the test's F(nu, nu_d); for
        large B the noise's top direction, not its average, sets the CI's width (where Cov has
        a spike along the bias, as a baseline's shared term gives, the average alone covered
        75%: tests/test_statistics.py)."""
        t = self.total
        nu = min(max(t * (t + 2 * bias_sq) / (t * t / self.nu + 2 * self.along * bias_sq), 1.0), float(self.dims))
        return _sf(self.d2 / t, nu, self.nu_d, bias_sq * nu / t)

    def invert(self, tail: float) -> float:
        """B >= 0 with sf(B) = tail (0 if already sf(0) >= tail): Brent's method (scipy has no
        inverse of the noncentral F in its noncentrality) on sf, which increases with B."""
        if self.sf(0.0) >= tail:
            return 0.0
        hi = max(self.d2, self.total)
        while self.sf(hi) < tail:
            hi *= 2
        return float(brentq(lambda b: self.sf(b) - tail, 0.0, hi, xtol=1e-14 * hi, rtol=1e-10))


def bias_null(x: Summary, reference: np.ndarray | Summary) -> BiasNull:
    """The bias test's statistic and null distribution (module docstring)."""
    estimated = isinstance(reference, Summary)
    r = reference.mean if estimated else np.asarray(reference, dtype=np.float64).reshape(-1)
    n, dims = x.count, r.size
    diff = x.mean - r
    d2 = float(diff @ diff)
    noise, noise_sq, noise_var = x.trace / n, x.trace_sq / n**2, x.trace_variance / n**2
    top, along_d = x.top_variance() / n, x.noise_along(diff) / n
    if estimated:
        m = reference.count
        noise += reference.trace / m
        noise_sq += 2 * x.bank_cross() / (n * m) + reference.trace_sq / m**2
        noise_var += reference.trace_variance / m**2
        top += reference.top_variance() / m  # at least the top of the sum; equal where the two share it
        along_d += reference.noise_along(diff) / m
    floor = float(((ROUNDING_ULPS * x.epsilon * (np.abs(x.mean) + np.abs(r))) ** 2).sum())
    total = noise + floor
    total_sq = (noise_sq if math.isfinite(noise_sq) else noise**2) + floor**2 / dims
    nu = min(max(total**2 / total_sq, 1.0), float(dims)) if total_sq > 0 else float(dims)
    nu_d = 2 * total**2 / noise_var if noise_var > 0 else math.inf
    average = total / nu  # the noise variance along a direction, on average
    along = average
    if math.isfinite(top) and d2 > 0:
        # b'Wb / ||b||^2. Where the bias stands clear of the noise, xbar - r points along b and
        # (d'Wd - tr W^2) / (d2 - tr W) estimates it without bias; where it does not, b's
        # direction is unknown and the CI must hold for the worst, the noise's top direction.
        # The weight s^2, s = (d2 - tr W) / d2 the bias's share of d2, moves from one to the other.
        # The clear estimate is bounded by tr W (no direction holds more noise than all of it),
        # not by ``top``: the cross-validated top is low on average (by 13% where the bias lies
        # along the top of an estimated reference's noise, which made that CI cover 92%).
        share = max(d2 - noise, 0.0) / d2
        clear = min(max((along_d - noise_sq) / (d2 - noise), 0.0), noise) if share > 0 else top
        along = max(share**2 * clear + (1 - share**2) * top, average) + floor / dims
    return BiasNull(d2, noise, total, nu, nu_d, max(along, 0.0), dims, r)


def bias_statistics(x: Summary | np.ndarray, reference: np.ndarray | Summary, level: float = 0.95) -> dict[str, float]:
    """bias_sq, bias_norm with its CI, bias_p and relative_bias (module docstring)."""
    null = bias_null(as_summary(x), reference)
    bias_sq = null.d2 - null.noise
    bias_norm = math.sqrt(max(bias_sq, 0.0))
    if null.total <= 0:  # draws and reference agree exactly, with no noise: nothing to test
        lo = hi = bias_norm
    else:
        tail = _quantile_f(level)
        # Power-constrained upper end (Cowan, Cranmer, Gross, Vitells 2011): draws that land
        # closer to the reference than the noise predicts (d2 below its null mean) would give an
        # upper end shrinking to [0, 0], a certainty the probe lacks; the upper end is never
        # below the one d2 = its null mean gives (the biases this probe cannot tell from noise).
        # It only widens the interval: coverage stays at least as measured in docs/calibration.md.
        sensitive = replace(null, d2=max(null.d2, null.total)).invert(1 - tail)
        lo, hi = math.sqrt(null.invert(tail)), math.sqrt(max(null.invert(1 - tail), sensitive))
    ref_norm = float(np.linalg.norm(null.reference))
    return {
        "bias_sq": bias_sq, "bias_norm": bias_norm, "bias_norm_lo": lo, "bias_norm_hi": max(hi, bias_norm), "bias_p": null.p,
        "relative_bias": bias_norm / ref_norm if ref_norm > 0 else float("nan"),
    }  # fmt: skip


def as_summary(x: Summary | np.ndarray, chunk: int = 1000) -> Summary:
    """Streamed moments of ``x``: a Summary as it is, or draws [N, P] streamed ``chunk`` rows at a time."""
    if isinstance(x, Summary):
        return x
    x = np.asarray(x)
    return stream(x, chunk, keep_bank=direction_rows(x.shape[1])).summary()


def variance_statistics(x: Summary | np.ndarray, level: float = 0.95) -> dict[str, float]:
    """variance = tr(S) with its CI (variance_lo, variance_hi), of moments or of draws [N, P];
    module docstring."""
    x = as_summary(x)
    variance, se2 = x.trace, x.trace_variance
    if variance <= 0 or not se2 > 0:
        return {"variance": variance, "variance_lo": variance, "variance_hi": variance}
    nu = 2 * variance**2 / se2
    tail = _quantile_f(level)
    return {
        "variance": variance,
        "variance_lo": variance * nu / float(sps.chi2.isf(tail, nu)),
        "variance_hi": variance * nu / float(sps.chi2.ppf(tail, nu)),
    }


def snr(x: Summary | np.ndarray) -> float:
    """Mean over coordinates of |mean_j| / sd_j, over the coordinates with sd_j > 0."""
    x = as_summary(x)
    sd = np.sqrt(x.sq_dev / (x.count - 1))
    keep = sd > 0
    return float((np.abs(x.mean[keep]) / sd[keep]).mean()) if keep.any() else float("nan")


def warning(x: Summary) -> str:
    """Why the row's intervals are not to be trusted, or "": every draw alike (zero variance);
    two distinct draws (the variance is one proportion's p(1-p) times a constant, whose Wald
    interval undercovers near p = 1/2: 81-87% at N = 100 in docs/calibration.md); or fewer than
    MIN_EFFECTIVE effective differences (the spread rests on a handful of draws, as for a rare
    event that a sample of this size hardly sees); or a median coordinate whose spread rests on
    fewer than MIN_COORDINATE_EFFECTIVE draws (each coordinate moves only on its rare events:
    REINFORCE at theta = 4, N = 100, about 1.8 per coordinate, where the test was conservative,
    0.6% false alarms at D = 50, in docs/calibration.md)."""
    if x.distinct < 2 or x.trace <= 0:
        return "zero variance: every draw alike"
    if x.distinct == 2:
        return "two distinct draws: the intervals rest on one proportion"
    if x.effective_differences < MIN_EFFECTIVE:
        return f"{x.effective_differences:.1f} effective draws of {x.count}: too few to trust the intervals"
    if x.coordinate_effective() < MIN_COORDINATE_EFFECTIVE:
        return f"rare events: a typical coordinate's spread rests on {x.coordinate_effective():.1f} of {x.count} draws"
    return ""


def summary_statistics(
    x: Summary, reference: np.ndarray | Summary, evaluations: int = 1, seconds_per_estimate: float = float("nan"), level: float = 0.95
) -> dict[str, Any]:
    """Every statistic of a probe (a stats.csv row's numbers) from streamed moments."""
    stats: dict[str, Any] = bias_statistics(x, reference, level) | variance_statistics(x, level)
    stats["mse"] = stats["bias_norm"] ** 2 + stats["variance"]
    stats["snr"] = snr(x)
    stats["cosine"] = x.cosine
    stats["evaluations"] = int(evaluations)
    stats["seconds_per_estimate"] = float(seconds_per_estimate)
    stats["work_normalized_variance"] = stats["variance"] * evaluations
    stats["warning"] = warning(x)
    return stats


def stream(draws: Any, chunk: int, **moments: Any) -> Moments:
    """``draws`` [N, P] through a Moments accumulator, in blocks of ``chunk`` rows."""
    acc = Moments(block=chunk, **moments)
    for start in range(0, draws.shape[0], chunk):
        acc.update(draws[start : start + chunk])
    acc.flush()
    return acc


def gradient_statistics(
    estimates: np.ndarray,
    reference: np.ndarray | None = None,
    reference_draws: np.ndarray | None = None,
    evaluations: int = 1,
    seconds_per_estimate: float = float("nan"),
    level: float = 0.95,
    chunk: int = 1000,
) -> dict[str, Any]:
    """Every statistic of a probe for draws a user already has (the same numbers as the streaming
    probe on the same draws and chunk).

    Args:
        estimates: [N, P] gradient estimates, N >= 2.
        reference: [P] the exact gradient; or None with ``reference_draws``.
        reference_draws: [M, P] draws of an unbiased estimator, whose mean is the reference and
            whose full noise enters the bias test.
        evaluations: evaluations of f per estimate.
        seconds_per_estimate: wall-clock cost of one estimate.
        level: confidence level of the intervals.
        chunk: rows per block of the accumulator (the probe's chunk, its memory plan's: the same
            draws in the same blocks give the probe's numbers exactly).
    """
    x = np.asarray(estimates)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"estimates must be [N, P] with N >= 2, got shape {x.shape}")
    if (reference is None) == (reference_draws is None):
        raise ValueError("give exactly one of reference [P] (exact) and reference_draws [M, P] (estimated)")
    if reference_draws is not None:
        y = np.asarray(reference_draws)
        if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] != x.shape[1]:
            raise ValueError(f"reference_draws must be [M, {x.shape[1]}] with M >= 2, got shape {y.shape}")
        ref_moments = stream(y, chunk, keep_bank=gram_rows(x.shape[1]))
        target: np.ndarray | Summary = ref_moments.summary()
        acc = stream(x, chunk, reference=target.mean, bank=ref_moments.bank, keep_bank=direction_rows(x.shape[1]))
    else:
        if np.asarray(reference).size != x.shape[1]:
            raise ValueError(f"reference has {np.asarray(reference).size} entries, estimates have {x.shape[1]}")
        target = np.asarray(reference, dtype=np.float64).reshape(-1)
        acc = stream(x, chunk, reference=target, keep_bank=direction_rows(x.shape[1]))
    return summary_statistics(acc.summary(), target, evaluations, seconds_per_estimate, level)

