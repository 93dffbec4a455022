"""Idempotency-Key on every POST (ARCHITECTURE §3.6), against real PostgreSQL and Redis."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from nexa.platform.idempotency import (
    clear_tenant_settings_cache,
    parse_idempotency_key,
    purge_expired_records,
    request_fingerprint,
)
from nexa.platform.models import IdempotencyRecord, OutboxEvent, TenantSettings
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from tests.platform import idempotency_urls

pytestmark = pytest.mark.urls("tests.platform.idempotency_urls")

THINGS = "/v1/_test/idem/things"
GATED = "/v1/_test/idem/gated"
OPERATOR_A = "urn:nexa:user:ib-ops-a"
OPERATOR_B = "urn:nexa:user:ib-ops-b"


@pytest.fixture(autouse=True)
def _fresh_state():
    clear_tenant_settings_cache()
    idempotency_urls.GATE_ENTERED.clear()
    idempotency_urls.GATE_OPEN.clear()
    yield
    idempotency_urls.GATE_OPEN.set()  # never leave a request thread waiting
    clear_tenant_settings_cache()


@pytest.fixture
def client(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR, OPERATOR_A)


def post(client, path=THINGS, body=None, key=None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, body if body is not None else {"event": "thing.made"}, format="json", **extra)


def post_raw(client, raw: str, key: str):
    return client.post(THINGS, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"https://api.nexa/problems/{slug}"
    assert body["status"] == status
    assert body["instance"] == response["X-Correlation-Id"]
    return body


def events(name: str = "thing.made") -> int:
    return OutboxEvent.objects.filter(event=name).count()


def in_thread(fn):
    """Run ``fn`` on its own thread and database connection (closed afterwards)."""

    def run():
        try:
            return fn()
        finally:
            connections.close_all()

    return run


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# --- the happy path --------------------------------------------------------------------------


@pytest.mark.django_db
def test_first_call_runs_the_handler_and_is_not_marked_replayed(client):
    response = post(client, key="k-1")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert response["Location"].startswith("/v1/_test/idem/things/")
    assert events() == 1
    record = IdempotencyRecord.objects.get(key="k-1")
    assert (record.airline, record.operator_urn, record.method, record.path) == ("IB", OPERATOR_A, "POST", THINGS)
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.status_code == 201


@pytest.mark.django_db
def test_same_key_same_body_replays_byte_for_byte_without_running_again(client):
    first = post(client, key="k-replay")
    second = post(client, key="k-replay")

    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert second["Location"] == first["Location"]
    assert second["X-Thing-Id"] == first["X-Thing-Id"]
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    # The replay is a new request: its own correlation id, while the body keeps the original's.
    assert second["X-Correlation-Id"] != first["X-Correlation-Id"]
    assert second.json()["correlationUrn"] == first["X-Correlation-Id"]
    assert events() == 1


@pytest.mark.django_db
def test_quoted_and_bare_keys_are_the_same_key(client):
    first = post(client, key="abc-123")
    second = post(client, key='"abc-123"')

    assert second["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert events() == 1


@pytest.mark.django_db
def test_json_whitespace_and_key_order_do_not_change_the_request(client):
    first = post_raw(client, '{"event": "thing.made", "n": 1}', key="k-canon")
    second = post_raw(client, '{\n  "n":1,\n  "event":"thing.made"\n}', key="k-canon")

    assert first.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert events() == 1


@pytest.mark.django_db
def test_no_content_response_replays_without_a_body(client):
    first = post(client, path="/v1/_test/idem/no-content", key="k-204")
    second = post(client, path="/v1/_test/idem/no-content", key="k-204")

    assert first.status_code == second.status_code == 204
    assert second.content == b""
    assert "Content-Type" not in second
    assert second["Idempotent-Replayed"] == "true"
    assert events() == 1


# --- misuse ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_with_a_different_body_is_422(client):
    post(client, key="k-reuse", body={"event": "thing.made", "n": 1})
    response = post(client, key="k-reuse", body={"event": "thing.made", "n": 2})

    assert_problem(response, 422, "idempotency-key-reused")
    assert events() == 1


@pytest.mark.django_db
def test_same_key_with_a_different_query_string_is_422(client):
    post(client, key="k-query")
    response = post(client, path=f"{THINGS}?dryRun=true", key="k-query")

    assert_problem(response, 422, "idempotency-key-reused")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw_key",
    ["", "   ", "x" * 256, '""', '"unterminated', '"a" trailing', "has space", '"bad \\escape"', "caf\u00e9"],
)
def test_malformed_keys_are_400(client, raw_key):
    response = post(client, key=raw_key)

    body = assert_problem(response, 400, "invalid-idempotency-key")
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert events() == 0
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_a_255_character_key_is_accepted(client):
    assert post(client, key="k" * 255).status_code == 201
    assert post(client, key="k" * 255)["Idempotent-Replayed"] == "true"


def test_key_parsing():
    assert parse_idempotency_key(None) is None
    assert parse_idempotency_key("  bare-key ") == "bare-key"
    assert parse_idempotency_key('"quoted key"') == "quoted key"
    assert parse_idempotency_key(r'"say \"hi\" \\ bye"') == 'say "hi" \\ bye'
    with pytest.raises(Problem):
        parse_idempotency_key('"no end\\"')


def test_fingerprint_canonicalises_json_and_falls_back_to_bytes():
    assert request_fingerprint(b'{"a": 1, "b": [1, 2]}') == request_fingerprint(b'{"b":[1,2],"a":1}')
    assert request_fingerprint(b'{"a": 1}') != request_fingerprint(b'{"a": 2}')
    assert request_fingerprint(b"not json") == request_fingerprint(b"not json")
    assert request_fingerprint(b"not json") != request_fingerprint(b"not  json")
    assert request_fingerprint(b"{}", "b=2&a=1") == request_fingerprint(b"{}", "a=1&b=2")


# --- scope -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("airline", "operator"),
    [("IB", OPERATOR_B), ("VY", OPERATOR_A)],
    ids=["other-operator", "other-airline"],
)
def test_the_same_key_from_another_principal_is_independent(client, client_for, airline, operator):
    first = post(client, key="shared-key")
    other = post(client_for(airline, Role.OPS_SUPERVISOR, operator), key="shared-key")

    assert first.status_code == other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert other.json()["id"] != first.json()["id"]
    assert events() == 2
    assert IdempotencyRecord.objects.filter(key="shared-key").count() == 2


@pytest.mark.django_db
def test_the_same_key_on_another_route_is_independent(client):
    post(client, key="route-key")
    response = post(client, path="/v1/_test/idem/no-content", key="route-key")

    assert response.status_code == 204
    assert events() == 2


# --- in flight and concurrency ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_claimed_key_still_in_flight_is_409(client):
    IdempotencyRecord.objects.create(
        airline="IB", operator_urn=OPERATOR_A, method="POST", path=THINGS, key="k-busy", request_hash="0" * 64
    )

    response = post(client, key="k-busy")

    assert_problem(response, 409, "idempotency-key-in-flight")
    assert events() == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_request_while_the_first_runs_is_409_then_replays(client_for):
    first_client = client_for("IB", Role.OPS_SUPERVISOR, OPERATOR_A)
    second_client = client_for("IB", Role.OPS_SUPERVISOR, OPERATOR_A)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(in_thread(lambda: post(first_client, path=GATED, key="k-gated")))
        assert idempotency_urls.GATE_ENTERED.wait(timeout=10)

        concurrent = post(second_client, path=GATED, key="k-gated")
        assert_problem(concurrent, 409, "idempotency-key-in-flight")

        idempotency_urls.GATE_OPEN.set()
        first_response = first.result(timeout=20)

    assert first_response.status_code == 201
    after = post(second_client, path=GATED, key="k-gated")
    assert after["Idempotent-Replayed"] == "true"
    assert after.content == first_response.content
    assert events() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_have_exactly_one_side_effect(client_for):
    workers = 8
    clients = [client_for("IB", Role.OPS_SUPERVISOR, OPERATOR_A) for _ in range(workers)]
    start = threading.Barrier(workers)
    body = {"event": "thing.made", "holdSeconds": 0.3}

    def call(c):
        start.wait(timeout=10)
        return post(c, body=body, key="k-race")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        responses = list(pool.map(lambda c: in_thread(lambda: call(c))(), clients))

    fresh = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    replayed = [r for r in responses if r.status_code == 201 and r.get("Idempotent-Replayed") == "true"]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(fresh) == 1
    assert len(fresh) + len(replayed) + len(in_flight) == workers
    assert in_flight, "the requests did not overlap"
    for response in in_flight:
        assert_problem(response, 409, "idempotency-key-in-flight")
    for response in replayed:
        assert response.content == fresh[0].content
    assert events() == 1


# --- failures are not stored -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_validation_failure_is_not_stored_and_the_key_can_be_retried(client):
    rejected = post(client, key="k-fix", body={"event": ""})
    assert_problem(rejected, 400, "validation-error")
    assert not IdempotencyRecord.objects.filter(key="k-fix").exists()

    fixed = post(client, key="k-fix", body={"event": "thing.made"})

    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed
    assert events() == 1


@pytest.mark.django_db
def test_an_error_response_rolls_back_the_write_and_releases_the_key(client):
    response = post(client, path="/v1/_test/idem/refuse", key="k-refuse")

    assert response.status_code == 409
    assert events() == 0
    assert not IdempotencyRecord.objects.exists()
    assert "Idempotent-Replayed" not in post(client, path="/v1/_test/idem/refuse", key="k-refuse")


@pytest.mark.django_db
def test_an_unexpected_error_rolls_back_the_write_and_releases_the_key(client):
    response = post(client, path="/v1/_test/idem/crash", key="k-crash")

    assert_problem(response, 500, "internal-error")
    assert events() == 0
    assert not IdempotencyRecord.objects.exists()


# --- the tenant setting ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_key_is_fine_by_default_and_not_deduplicated(client):
    assert post(client).status_code == 201
    assert post(client).status_code == 201
    assert events() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_an_airline_can_require_the_key(client, client_for):
    TenantSettings.objects.create(airline="IB", idempotency_key_required=True)

    missing = post(client)
    body = assert_problem(missing, 400, "idempotency-key-required")
    assert "Idempotency-Key" in body["detail"]
    assert body["errors"] == [{"field": "Idempotency-Key", "message": "This header is required."}]
    assert events() == 0

    assert post(client, key="k-required").status_code == 201
    # Other airlines keep the default.
    assert post(client_for("VY", Role.OPS_SUPERVISOR, OPERATOR_A)).status_code == 201


@pytest.mark.django_db
def test_the_tenant_setting_is_cached_until_cleared(client):
    assert post(client).status_code == 201
    TenantSettings.objects.create(airline="IB", idempotency_key_required=True)

    assert post(client).status_code == 201  # still the cached "not required"
    clear_tenant_settings_cache()
    assert_problem(post(client), 400, "idempotency-key-required")


# --- retention and abandoned claims ----------------------------------------------------------


def _record(key: str, *, age: timedelta, state=IdempotencyRecord.State.COMPLETED) -> IdempotencyRecord:
    record = IdempotencyRecord.objects.create(
        airline="IB",
        operator_urn=OPERATOR_A,
        method="POST",
        path=THINGS,
        key=key,
        request_hash="0" * 64,
        state=state,
        status_code=201 if state == IdempotencyRecord.State.COMPLETED else None,
        response_body=b"{}" if state == IdempotencyRecord.State.COMPLETED else None,
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)
    return record


@pytest.mark.django_db
def test_purge_deletes_records_past_retention_and_keeps_fresh_ones(settings):
    settings.NEXA_IDEMPOTENCY_RETENTION_HOURS = 24
    _record("old", age=timedelta(hours=25))
    _record("old-in-flight", age=timedelta(hours=30), state=IdempotencyRecord.State.IN_FLIGHT)
    _record("fresh", age=timedelta(hours=23))

    assert purge_expired_records() == 2
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]
    assert purge_expired_records() == 0


@pytest.mark.django_db
def test_a_record_past_retention_is_not_replayed_before_the_purge(client, settings):
    settings.NEXA_IDEMPOTENCY_RETENTION_HOURS = 24
    first = post(client, key="k-old")
    IdempotencyRecord.objects.filter(key="k-old").update(created_at=timezone.now() - timedelta(hours=25))

    again = post(client, key="k-old")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert events() == 2
    assert IdempotencyRecord.objects.get(key="k-old").state == IdempotencyRecord.State.COMPLETED


@pytest.mark.django_db
def test_an_abandoned_in_flight_claim_is_taken_over(client, settings):
    settings.NEXA_IDEMPOTENCY_IN_FLIGHT_SECONDS = 60
    _record("k-abandoned", age=timedelta(seconds=61), state=IdempotencyRecord.State.IN_FLIGHT)

    response = post(client, key="k-abandoned")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert events() == 1
    record = IdempotencyRecord.objects.get(key="k-abandoned")
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_request_whose_claim_was_taken_over_rolls_back_instead_of_committing(client_for, settings):
    settings.NEXA_IDEMPOTENCY_IN_FLIGHT_SECONDS = 60
    slow_client = client_for("IB", Role.OPS_SUPERVISOR, OPERATOR_A)
    retry_client = client_for("IB", Role.OPS_SUPERVISOR, OPERATOR_A)
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(in_thread(lambda: post(slow_client, path=GATED, key="k-fenced")))
        assert idempotency_urls.GATE_ENTERED.wait(timeout=10)
        # Pretend the slow request has been running for longer than the in-flight limit.
        backdated = timezone.now() - timedelta(seconds=120)
        IdempotencyRecord.objects.filter(key="k-fenced").update(created_at=backdated)

        retry = pool.submit(in_thread(lambda: post(retry_client, path=GATED, key="k-fenced")))
        wait_until(lambda: IdempotencyRecord.objects.get(key="k-fenced").created_at != backdated)
        idempotency_urls.GATE_OPEN.set()
        slow_response, retry_response = slow.result(timeout=20), retry.result(timeout=20)

    assert_problem(slow_response, 409, "idempotency-claim-expired")
    assert retry_response.status_code == 201
    assert events() == 1
    assert OutboxEvent.objects.get().id.hex == retry_response.json()["id"].replace("-", "")


# --- other methods ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_non_post_methods_are_untouched(client):
    first = client.put(THINGS, {"event": "thing.made"}, format="json", HTTP_IDEMPOTENCY_KEY="k-put")
    second = client.put(THINGS, {"event": "thing.made"}, format="json", HTTP_IDEMPOTENCY_KEY="k-put")

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert events() == 2
    assert not IdempotencyRecord.objects.exists()
    # Not even a malformed key bothers a PUT.
    assert client.put(THINGS, {"event": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="").status_code == 201


@pytest.mark.django_db
def test_unauthenticated_post_is_401_before_any_claim():
    from rest_framework.test import APIClient

    response = post(APIClient(), key="k-anon")

    assert_problem(response, 401, "unauthorized")
    assert not IdempotencyRecord.objects.exists()
