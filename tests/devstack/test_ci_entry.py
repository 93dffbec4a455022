"""CI runs the newcomer's path (issue 9 §1): `.ci/run` unsets DATABASE_URL/REDIS_URL (the suite runs on the
embedded PostgreSQL and Redis, never the machine's), installs what it needs, runs make check, make test and the
`make run` smoke in that order, and stops non-zero at the first failure. `make test` counts "no tests
collected" as a failure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import BASE_DIR

CI_RUN = BASE_DIR / ".ci" / "run"

# A `make` that records each call (arguments and the variables CI must not pass on) and fails on request.
FAKE_MAKE = """#!/bin/sh
{
  printf 'make %s' "$*"
  for name in DATABASE_URL REDIS_URL CELERY_BROKER_URL; do
    eval "value=\\${$name-<unset>}"
    printf ' %s=%s' "$name" "$value"
  done
  printf '\\n'
} >> "$FAKE_MAKE_LOG"
case " $* " in *" $FAKE_MAKE_FAIL "*) exit 2 ;; esac
exit 0
"""


def run_ci(tmp_path: Path, fail: str = "") -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make = bin_dir / "make"
    make.write_text(FAKE_MAKE)
    make.chmod(0o755)
    log = tmp_path / "make.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_MAKE_LOG": str(log),
        "FAKE_MAKE_FAIL": fail or "no-such-target",
        # What a CI machine with its own services might export: CI must not use them.
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/nexa",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
    }
    env.pop("PYTEST_ARGS", None)
    result = subprocess.run(["bash", str(CI_RUN)], env=env, capture_output=True, text=True, timeout=60)
    return result, log.read_text().splitlines() if log.exists() else []


UNSET = "DATABASE_URL=<unset> REDIS_URL=<unset> CELERY_BROKER_URL=<unset>"


def test_ci_runs_check_test_and_smoke_on_the_embedded_services(tmp_path):
    result, calls = run_ci(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == [
        f"make venv node_modules chromium {UNSET}",
        f"make check {UNSET}",
        f"make test ARGS= {UNSET}",
        f"make smoke {UNSET}",
    ]


@pytest.mark.parametrize("failing", ["check", "test", "smoke"])
def test_ci_fails_at_the_first_failing_step(tmp_path, failing):
    result, calls = run_ci(tmp_path, fail=failing)
    assert result.returncode != 0
    assert calls[-1].startswith(f"make {failing}")
    assert "== CI passed" not in result.stdout


def test_make_test_collecting_no_tests_is_a_failure():
    """pytest's exit 5 would let a CI that ran nothing pass; nexa.devstack test turns it into 1."""
    result = subprocess.run(
        [sys.executable, "-m", "nexa.devstack", "test", str(Path(__file__)), "-k", "no_test_has_this_name", "-q"],
        cwd=BASE_DIR, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "no tests ran" in result.stdout or "deselected" in result.stdout, result.stdout[-2000:]
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
