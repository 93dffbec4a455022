"""The app-boundary contract must fail on a forbidden import (a check that cannot fail is a
defect) and pass on the allowed ones. Runs the real ``lint-imports`` on a throwaway tree."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
[importlinter]
root_packages =
    cases
    audit
contract_types =
    app_boundaries: tests.architecture.app_boundaries.AppBoundaryContract

[importlinter:contract:boundaries]
name = boundaries
type = app_boundaries
apps =
    cases
    audit
public_modules =
    services
    selectors
    events
    models
"""


def _lint(tmp_path: Path, cases_services_source: str) -> subprocess.CompletedProcess:
    for app in ("cases", "audit"):
        (tmp_path / app).mkdir()
        (tmp_path / app / "__init__.py").write_text("")
        for module in ("services", "models", "admin"):
            (tmp_path / app / f"{module}.py").write_text("")
    (tmp_path / "cases" / "services.py").write_text(cases_services_source)
    (tmp_path / ".importlinter").write_text(CONFIG)
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    return subprocess.run([str(lint_imports)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("source", ["from audit import services\n", "import audit.models\n"])
def test_public_modules_of_another_app_are_allowed(tmp_path, source):
    result = _lint(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_private_module_of_another_app_breaks_the_contract(tmp_path):
    result = _lint(tmp_path, "from audit import admin\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cases.services imports audit.admin" in result.stdout
