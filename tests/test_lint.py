"""Static check: no undefined names, unused imports or syntax errors anywhere in the project."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import PROJECT_ROOT


def test_ruff_finds_no_errors():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is a dev dependency (bash scripts/setup.sh --dev installs it)")
    done = subprocess.run([ruff, "check", "--select", "F,E9", "core", "ui", "pages", "tests", "bench",
                           "dashboard.py", "assets"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
