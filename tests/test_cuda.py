"""The probe on a GPU (skipped without CUDA; benchmarks/device_check.sh runs these where one is):
the accumulators stay on the device and give the numbers numpy gives on the same draws; a
run on cuda writes the same statistics schema; the memory plan reads the device's free memory."""
import numpy as np
import pytest
import torch

from analysis.moments import Moments
from analysis.statistics import gradient_statistics, summary_statistics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_moments_on_cuda_equal_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 40)) + 0.3
    reference = np.zeros(40)
    acc = Moments(reference=reference, block=512)
    for start in range(0, 3000, 700):  # other chunks than the block: the blocks decide
        acc.update(torch.as_tensor(x[start : start + 700], device="cuda", dtype=torch.float32))
    assert acc.mean.is_cuda and acc.sq_dev.is_cuda
    on_gpu = summary_statistics(acc.summary(), reference)
    on_cpu = gradient_statistics(x.astype(np.float32), reference, chunk=512)
    for key in ("bias_sq", "bias_p", "variance", "variance_lo", "variance_hi", "snr", "cosine"):
        assert on_gpu[key] == pytest.approx(on_cpu[key], rel=1e-6), key


def test_a_cuda_run_probes_on_the_device(tmp_path):
    from hydra import compose, initialize_config_dir

    from analysis.schema import STATS, read_csv
    from discograd.config import CONF_DIR
    from discograd.run import run

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["device=cuda", "task=mrf", "steps=20", "probe.every=10", "probe.reference=estimated",
                                           "probe.reference_samples=2000"])  # fmt: skip
    run(cfg, tmp_path)
    rows = read_csv(STATS, tmp_path / "stats.csv")
    assert (rows["device"] == "cuda").all() and len(rows) == 3
    assert np.isfinite(rows["variance"]).all()


def test_plan_reads_the_free_gpu_memory():
    from discograd.plan import free_bytes

    free = free_bytes(torch.device("cuda"))
    assert 0 < free <= torch.cuda.get_device_properties(0).total_memory
