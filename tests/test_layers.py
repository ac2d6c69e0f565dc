"""Dependencies point one way (shared/DESIGN.md): discograd -> {estimators, tasks, analysis}
-> primitives. Each package is imported alone in a fresh interpreter and the packages it
pulled in are compared with what it may use."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

PACKAGES = ("primitives", "estimators", "tasks", "analysis", "discograd", "torch")
ALLOWED = {
    "primitives": {"torch"},
    "estimators": {"primitives", "torch"},
    "tasks": {"primitives", "torch"},
    "analysis": {"primitives"},  # numpy, pandas, matplotlib: no torch model, nothing of discograd
}
MODULES = {
    "primitives": ["primitives.families", "primitives.sampling", "primitives.enumeration", "primitives.registry", "primitives.io"],
    "estimators": ["estimators"],
    "tasks": ["tasks"],
    "analysis": ["analysis.report", "analysis.collect", "analysis.tables", "analysis.aggregate", "analysis.statistics"],
}


@pytest.mark.parametrize("package", ALLOWED)
def test_a_package_imports_only_what_is_below_it(package):
    code = (f"import importlib, json, sys\nfor m in {MODULES[package]!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({PACKAGES!r}))))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    pulled = set(json.loads(done.stdout)) - {package}
    assert pulled <= ALLOWED[package], f"{package} imports {sorted(pulled - ALLOWED[package])}"
