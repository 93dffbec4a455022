"""Circuit breakers (ARCHITECTURE §3.9): real Redis, real subprocesses; no provider needed here."""

import json
import subprocess
import sys
import time
import uuid

import pytest

from nexa.platform.breakers import KEY_PREFIX, breaker_for, breaker_reset, breaker_states, call_through_breaker
from nexa.platform.problems import exception_handler
from nexa.platform.providers import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnavailable,
    problem_for_unavailable,
)
from nexa.platform.redis import get_redis


@pytest.fixture
def name():
    """A breaker of its own for each test; its Redis keys are removed afterwards."""
    breaker_name = f"test-{uuid.uuid4().hex[:10]}"
    yield breaker_name
    for key in get_redis().scan_iter(match=f"{KEY_PREFIX}{breaker_name}:*"):
        get_redis().delete(key)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.NEXA_BREAKER_FAIL_MAX = 3
    settings.NEXA_BREAKER_RESET_SECONDS = 1.0


class Provider:
    """A stand-in dependency that counts its calls and fails as told."""

    def __init__(self):
        self.calls = 0
        self.fail_with: Exception | None = None

    def __call__(self, value="ok"):
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return value


def transient():
    return ProviderTransientError(provider="test", code="temporarily_unavailable", message="503")


def permanent():
    return ProviderPermanentError(provider="test", code="card_declined", message="declined")


def test_fail_max_transient_failures_open_the_circuit_and_later_calls_are_not_attempted(name):
    provider = Provider()
    provider.fail_with = transient()
    for _ in range(3):  # the tripping call still raises its own transient error
        with pytest.raises(ProviderTransientError):
            call_through_breaker(name, provider)
    assert breaker_for(name).current_state == "open"

    with pytest.raises(ProviderUnavailable) as raised:
        call_through_breaker(name, provider)
    assert provider.calls == 3
    assert raised.value.domain == name
    assert raised.value.code == "circuit_open"
    assert raised.value.attempt_detail["domain"] == name
    assert breaker_states()[name] == "open"


def test_permanent_refusals_and_other_errors_never_open_the_circuit(name):
    provider = Provider()
    provider.fail_with = permanent()
    for _ in range(10):
        with pytest.raises(ProviderPermanentError):
            call_through_breaker(name, provider)
    provider.fail_with = ValueError("a bug of ours, not the provider's")
    for _ in range(10):
        with pytest.raises(ValueError):
            call_through_breaker(name, provider)
    assert breaker_for(name).current_state == "closed"
    provider.fail_with = None
    assert call_through_breaker(name, provider, "fine") == "fine"
    assert provider.calls == 21


def test_failures_must_be_consecutive(name):
    provider = Provider()
    for _ in range(3):
        provider.fail_with = transient()
        for _ in range(2):
            with pytest.raises(ProviderTransientError):
                call_through_breaker(name, provider)
        provider.fail_with = None
        call_through_breaker(name, provider)
    assert breaker_for(name).current_state == "closed"
    assert breaker_for(name).fail_counter == 0


def test_half_open_after_the_reset_timeout_success_closes(name):
    provider = Provider()
    provider.fail_with = transient()
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            call_through_breaker(name, provider)
    with pytest.raises(ProviderUnavailable):
        call_through_breaker(name, provider)
    time.sleep(1.1)
    provider.fail_with = None
    assert call_through_breaker(name, provider, "recovered") == "recovered"  # the trial call (half-open)
    assert breaker_for(name).current_state == "closed"
    assert provider.calls == 4


def test_half_open_failure_opens_again_for_another_period(name):
    provider = Provider()
    provider.fail_with = transient()
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            call_through_breaker(name, provider)
    time.sleep(1.1)
    with pytest.raises(ProviderTransientError):  # the one trial call goes through and fails
        call_through_breaker(name, provider)
    assert breaker_for(name).current_state == "open"
    with pytest.raises(ProviderUnavailable):
        call_through_breaker(name, provider)
    assert provider.calls == 4


def test_reset_timeout_is_kept_to_the_millisecond(name, settings):
    settings.NEXA_BREAKER_RESET_SECONDS = 1.5
    provider = Provider()
    provider.fail_with = transient()
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            call_through_breaker(name, provider)
    opened = time.monotonic()
    provider.fail_with = None
    while time.monotonic() - opened < 1.3:
        with pytest.raises(ProviderUnavailable):
            call_through_breaker(name, provider)
        time.sleep(0.1)
    time.sleep(0.3)
    assert call_through_breaker(name, provider, "back") == "back"


def test_concurrent_calls_through_one_breaker_are_not_serialised(name):
    from concurrent.futures import ThreadPoolExecutor

    def slow_provider():
        time.sleep(0.3)
        return "ok"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda _: call_through_breaker(name, slow_provider), range(5)))
    assert results == ["ok"] * 5
    assert time.monotonic() - started < 0.9


SUBPROCESS_SCRIPT = """
import json, sys
import django
django.setup()
from nexa.platform.breakers import breaker_states, call_through_breaker
from nexa.platform.providers import ProviderTransientError, ProviderUnavailable
name, action = sys.argv[1], sys.argv[2]
calls = []
def provider():
    calls.append(1)
    if action == "fail":
        raise ProviderTransientError(provider="test", code="temporarily_unavailable", message="503")
    return "ok"
outcomes = []
for _ in range(int(sys.argv[3])):
    try:
        outcomes.append(call_through_breaker(name, provider))
    except ProviderUnavailable as error:
        outcomes.append("unavailable:" + error.domain)
    except ProviderTransientError:
        outcomes.append("transient")
print(json.dumps({"state": breaker_states()[name], "outcomes": outcomes, "calls": len(calls)}))
"""


def run_in_subprocess(env, name, action, times):
    result = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SCRIPT, name, action, str(times)],
        env={**env, "NEXA_BREAKER_FAIL_MAX": "3", "NEXA_BREAKER_RESET_SECONDS": "30"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_state_is_shared_across_processes(name, subprocess_env, settings):
    settings.NEXA_BREAKER_RESET_SECONDS = 30
    provider = Provider()
    provider.fail_with = transient()
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            call_through_breaker(name, provider)

    seen = run_in_subprocess(subprocess_env, name, "succeed", 2)
    assert seen == {"state": "open", "outcomes": [f"unavailable:{name}"] * 2, "calls": 0}

    # And the other way round: another process trips it, this one sees it open.
    breaker_reset(name)
    tripped = run_in_subprocess(subprocess_env, name, "fail", 4)
    assert tripped == {"state": "open", "outcomes": ["transient"] * 3 + [f"unavailable:{name}"], "calls": 3}
    provider.fail_with = None
    with pytest.raises(ProviderUnavailable):
        call_through_breaker(name, provider)
    assert provider.calls == 3


def test_breaker_states_lists_every_dependency_and_reset_closes(name):
    provider = Provider()
    provider.fail_with = transient()
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            call_through_breaker(name, provider)
    states = breaker_states()
    assert {"psp", "sms", "whatsapp", "transport-uber", "transport-cabify"} <= set(states)
    assert states[name] == "open"
    breaker_reset(name)
    assert breaker_states()[name] == "closed"
    assert breaker_for(name).fail_counter == 0


def test_open_circuit_is_a_503_problem_with_failed_domain_and_retry_after():
    error = ProviderUnavailable(domain="psp")
    problem = problem_for_unavailable(error)
    assert problem.status_code == 503
    assert problem.extensions == {"failedDomain": "psp"}
    assert problem.headers == {"Retry-After": "30"}
    response = exception_handler(problem, {})
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["failedDomain"] == "psp"
    assert body["status"] == 503


def test_provider_errors_survive_pickling_with_their_details():
    import pickle

    for error in (
        ProviderTransientError(provider="psp", code="timeout", message="slow", attempt_detail={"httpStatus": None}),
        ProviderPermanentError(provider="psp", code="fraud_hold", message="held", attempt_detail={"httpStatus": 403}),
        ProviderUnavailable(domain="psp"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert isinstance(copy, ProviderError)
        assert (copy.provider, copy.code, copy.message, copy.attempt_detail) == (
            error.provider,
            error.code,
            error.message,
            error.attempt_detail,
        )
        assert str(copy) == str(error)
