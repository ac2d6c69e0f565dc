#!/usr/bin/env bash
# The GPU check, on a machine with CUDA (run from the repository root, well under 8 minutes):
#   1. the cuda tests (tests/test_cuda.py: moments on the device = numpy, a cuda run, the plan);
#   2. a device=cpu,cuda sweep on both VAEs (200 steps, probes at 0, 100, 200);
#   3. the probe's throughput on cpu and cuda (benchmarks/gpu_probe.py),
# and writes docs/performance-gpu.md (copied to $OUT when set, for the device tool).
# PY: the python with torch (CUDA build) and discograd installed; default .venv/bin/python,
# else python3 (then discograd is installed into it with --no-deps if missing).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c "import discograd" 2>/dev/null || "$PY" -m pip install -q --no-deps -e . || exit 1
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA here'; print('cuda:', torch.cuda.get_device_name(0))" || exit 1
LOG=$(mktemp -d)
SWEEP=$LOG/sweep
start=$SECONDS
timeout 150 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$LOG/tests.log" | tail -3
timeout 180 "$PY" -m discograd -m task=binary_vae,categorical_vae device=cpu,cuda steps=200 probe.every=100 \
    log_every=50 probe.reference_samples=2000 "hydra.sweep.dir=$SWEEP" 2>&1 | tail -15
timeout 150 "$PY" benchmarks/gpu_probe.py --devices cpu cuda --samples 100000 --sweep "$SWEEP" \
    --tests "$LOG/tests.log" --output docs/performance-gpu.md
echo "device check: $((SECONDS - start)) s"
if [ -n "${OUT:-}" ]; then cp docs/performance-gpu.md "$OUT/"; cp -r "$SWEEP" "$OUT/sweep" 2>/dev/null; fi
