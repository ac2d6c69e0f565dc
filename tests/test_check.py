"""The conformance kit (`discograd check`, discograd/conformance.py) on estimators that live
outside this repository: a correct one passes every check; a deliberately wrong one (the
score term's sign flipped, declared unbiased) fails the exact-gradient checks with its
z-scores shown, and the command exits 1, also under ``python -O`` (the kit's verdicts are
its own exception, not assert)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from discograd.conformance import load, run_checks

WRONG = '''
from estimators.reinforce import Reinforce


class Flipped(Reinforce):
    """Declares itself unbiased, but flips the sign of the score term."""

    def forward(self, logits, f, family):
        estimate = super().forward(logits, f, family)
        return type(estimate)(-estimate.surrogate, estimate.value, estimate.evaluations)
'''
YAML = """_target_: estimators.reinforce.Reinforce
baseline: loo
num_samples: 2
"""


def test_a_correct_estimator_passes_every_check(tmp_path):
    (tmp_path / "rloo.yaml").write_text(YAML)
    checks = run_checks(*load(str(tmp_path / "rloo.yaml")), samples=5000)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert sum(c.check.startswith("unbiased on") for c in checks) == 4  # 2 tasks x 2 families
    assert [c.evidence.startswith("max |z|") for c in checks if c.check == "on the sequence task"] == [True]


@pytest.mark.parametrize("flags", [[], ["-O"]], ids=["plain", "python -O"])
def test_a_wrong_estimator_fails_with_its_evidence(tmp_path, flags):
    (tmp_path / "mine.py").write_text(WRONG)
    done = subprocess.run([sys.executable, *flags, "-m", "discograd", "check", "mine:Flipped", "--samples", "5000"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.endswith(")") or " pass " in line or " FAIL " in line]
    failed = [line for line in done.stdout.splitlines() if " FAIL " in line]
    # 2 tasks x 2 families, and the sequence task
    assert len(failed) == 5 and all(("unbiased on" in line or "on the sequence task" in line) and "max |z| =" in line
                                    for line in failed), done.stdout  # fmt: skip
    total = sum(" pass " in line for line in rows) + len(failed)
    assert "shapes and gradients" in done.stdout and f"{total - 5} of {total} checks passed" in done.stdout


def test_a_target_that_is_not_an_estimator_is_exit_code_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "discograd", "check", "collections:OrderedDict"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "not a subclass of estimators.Estimator" in done.stderr
