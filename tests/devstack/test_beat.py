"""Celery beat as `make run` starts it survives what an unclean stop leaves behind (issue 9 §1).

A shutdown interrupted while beat was writing left ``.nexa/celerybeat-schedule`` empty (``EOFError: Ran out
of input``) or damaged (``UnpicklingError``); beat then exited at start-up and `make run` failed until the file
was deleted by hand. Beat now keeps its schedule in memory, so such a file is never read."""

import dbm
import os
import signal
import subprocess
import time

import pytest

from nexa import devstack
from nexa.celery import app as celery_app
from tests.fixtures import BASE_DIR

BEAT_TIMEOUT = 40.0


def leave_corrupt_schedule(path, entries: bytes) -> None:
    """A shelve whose ``entries`` record is cut short or damaged, as an interrupted write leaves it."""
    with dbm.open(str(path), "n") as db:
        db[b"entries"] = entries
        db[b"tz"] = entries


def schedule_records(path) -> dict:
    with dbm.open(str(path), "r") as db:
        return {key: db[key] for key in db}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(b"", id="cut-short-EOFError"),
        pytest.param(b"\x00damaged record" * 8, id="damaged-UnpicklingError"),
    ],
)
def test_beat_starts_and_keeps_sending_with_a_corrupt_schedule_file_left_behind(damage, tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("NEXA_STATE_DIR", str(state))  # the launcher's state directory (.nexa/)
    # Where the launcher kept the schedule, and Celery's default name in the working directory.
    leftovers = (state / "celerybeat-schedule", tmp_path / "celerybeat-schedule")
    for leftover in leftovers:
        leave_corrupt_schedule(leftover, damage)
    log_path = tmp_path / "beat.log"
    env = {
        **os.environ,
        "NEXA_STATE_DIR": str(state),
        "DJANGO_SETTINGS_MODULE": "nexa.settings",
        "LOG_FORMAT": "console",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BASE_DIR), os.environ.get("PYTHONPATH", "")])),
    }
    with log_path.open("wb") as log_file:
        beat = subprocess.Popen(
            devstack.beat_command(), cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + BEAT_TIMEOUT
        sent = False
        while time.monotonic() < deadline and not sent:
            assert beat.poll() is None, f"beat exited with {beat.returncode}:\n{log_path.read_text()[-3000:]}"
            sent = "Sending due task outbox-sweep" in log_path.read_text(errors="replace")
            time.sleep(0.25)
        log = log_path.read_text(errors="replace")
        assert sent, f"beat sent nothing in {BEAT_TIMEOUT:.0f}s:\n{log[-3000:]}"
        assert beat.poll() is None, log[-3000:]
        assert "EOFError" not in log and "UnpicklingError" not in log
        # Nothing read or rewritten: the leftovers are exactly as the crash left them.
        for leftover in leftovers:
            assert schedule_records(leftover) == {b"entries": damage, b"tz": damage}
    finally:
        if beat.poll() is None:
            beat.send_signal(signal.SIGTERM)
            try:
                beat.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(beat.pid, signal.SIGKILL)
                beat.wait()
        celery_app.control.purge()  # the sweeps beat queued on the tests' broker
    assert beat.returncode == 0, log_path.read_text()[-3000:]
