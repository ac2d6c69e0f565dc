"""analysis/statistics.py on Gaussian draws whose mean and covariance are known.

Coverage tests repeat an experiment R = 400 times with a fixed seed: the number of 95%
intervals covering the truth is Binomial(400, 0.95) (mean 380, sd 4.4); we require
>= 356 (5.5 sd below: false alarm < 1e-7 by the normal tail, about 1e-5 with the binomial's
skew); the variance interval must also not be over-wide (<= 397, 3.9 sd above the mean). A
variance CI of the wrong width (se off by a factor 2) moves coverage to about 68% or 99.99%
and fails. The bias interval is conservative by design (96% to 99% coverage, see
analysis/statistics.py), so its tests ask for coverage >= 356 and for power: a bias of
norm 0.5 is detected (lower end > 0) in at least 90% of the runs (it is in about 99.7%).
"""
import numpy as np
import pytest

from analysis.statistics import bias_statistics, gradient_statistics, mean_cosine, snr, variance_statistics

R, N = 400, 300
COV_DIAG = np.array([1.0, 0.25, 4.0, 0.5, 2.0])
P = COV_DIAG.size


def gaussian(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    return mean + rng.standard_normal((N, P)) * np.sqrt(COV_DIAG)


def test_variance_interval_covers_the_trace():
    rng = np.random.default_rng(0)
    covered = sum(
        (s := variance_statistics(gaussian(rng, np.zeros(P))))["variance_lo"] <= COV_DIAG.sum() <= s["variance_hi"]
        for _ in range(R)
    )
    assert 356 <= covered <= 397


def test_bias_interval_of_an_unbiased_sample_covers_zero():
    rng = np.random.default_rng(1)
    truth = np.array([0.3, -1.0, 0.0, 2.0, 0.5])
    covered = sum(bias_statistics(gaussian(rng, truth), truth)["bias_norm_lo"] == 0.0 for _ in range(R))
    assert covered >= 356


def test_bias_interval_covers_a_known_bias():
    rng = np.random.default_rng(2)
    truth, shift = np.zeros(P), np.array([0.3, 0.0, -0.4, 0.0, 0.0])  # ||shift|| = 0.5
    covered, detected = 0, 0
    for _ in range(R):
        s = bias_statistics(gaussian(rng, truth + shift), truth)
        covered += s["bias_norm_lo"] <= 0.5 <= s["bias_norm_hi"]
        detected += s["bias_norm_lo"] > 0
    assert covered >= 356
    assert detected >= 360


def test_reference_noise_widens_the_bias_interval():
    """An unbiased estimator measured against a noisy reference is not called biased when the
    reference's standard errors are passed in."""
    rng = np.random.default_rng(3)
    truth, m = np.zeros(P), 2000
    covered_with, covered_without = 0, 0
    for _ in range(R):
        reference = truth + rng.standard_normal(P) * np.sqrt(COV_DIAG * 50 / m)  # a noisier reference
        x = gaussian(rng, truth)
        covered_with += bias_statistics(x, reference, np.sqrt(COV_DIAG * 50 / m))["bias_norm_lo"] == 0.0
        covered_without += bias_statistics(x, reference)["bias_norm_lo"] == 0.0
    assert covered_with >= 356
    assert covered_without < 356


def test_gradient_statistics_fields():
    rng = np.random.default_rng(4)
    reference = np.array([1.0, 0.0, -1.0, 2.0, 0.5])
    x = gaussian(rng, reference)
    s = gradient_statistics(x, reference, evaluations=3, seconds_per_estimate=1e-5)
    assert s["mse"] == pytest.approx(s["bias_norm"] ** 2 + s["variance"])
    assert s["work_normalized_variance"] == pytest.approx(3 * s["variance"])
    assert s["relative_bias"] == pytest.approx(s["bias_norm"] / np.linalg.norm(reference))
    assert s["evaluations"] == 3 and s["seconds_per_estimate"] == 1e-5
    assert -1 <= s["cosine"] <= 1


def test_snr_and_cosine_by_hand():
    x = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]])
    assert snr(x) == pytest.approx(2.0 / np.std([1.0, 3.0], ddof=1))  # constant coordinates left out
    assert mean_cosine(x, np.array([1.0, 0.0, 0.0])) == pytest.approx(np.mean([1 / np.sqrt(5), 3 / np.sqrt(13)]))
    assert mean_cosine(np.zeros((2, 3)), np.ones(3)) == 0.0


def test_large_p_uses_the_small_gram_matrix():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 20000))  # P >> N: tr(Cov^2) through the 50 x 50 Gram matrix
    s = gradient_statistics(x, np.zeros(20000))
    assert s["variance"] == pytest.approx(20000, rel=0.05)


@pytest.mark.parametrize("shape", [(1, 3), (5,), (2, 3, 4)])
def test_bad_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="estimates must be"):
        gradient_statistics(np.zeros(shape), np.zeros(3))
