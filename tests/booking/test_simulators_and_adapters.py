"""The PSP and transport adapters against the REAL simulator processes (booking/simulators).

Every effect is checked in the simulator's ledger (``GET /_ledger``): exactly once per idempotency key.
"""

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from booking.payments import psp_client
from booking.transport import transport_client
from nexa.platform.breakers import breaker_for, breaker_states
from nexa.platform.providers import (
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnavailable,
    problem_for_unavailable,
)

pytestmark = pytest.mark.usefixtures("simulator_control")

PICKUP = {"lat": 40.4722, "lng": -3.5609, "address": "MAD T4 arrivals"}
DROPOFF = {"lat": 40.4530, "lng": -3.6883, "address": "Hotel Castellana"}


def urn(kind: str = "subcase") -> str:
    return f"urn:nexa:{kind}:{uuid.uuid4()}"


def step() -> str:
    return urn("step")


def in_hours(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


@pytest.fixture
def fast_breaker(settings):
    settings.NEXA_BREAKER_FAIL_MAX = 3
    settings.NEXA_BREAKER_RESET_SECONDS = 1.0


# --- PSP: happy paths and idempotency ---------------------------------------------------------------


def test_issue_virtual_card(simulator_control):
    sub_case = urn()
    expires = in_hours(6)
    card = psp_client().issue_virtual_card(
        idempotency_key=step(), sub_case_urn=sub_case, amount=Decimal("25"), currency="EUR", expires_at=expires
    )
    assert set(card) == {"cardId", "last4", "amount", "currency", "expiresAt", "status"}
    assert card["amount"] == "25.00"
    assert card["currency"] == "EUR"
    assert card["status"] == "ACTIVE"
    assert len(card["last4"]) == 4 and card["last4"].isdigit()
    assert datetime.fromisoformat(card["expiresAt"].replace("Z", "+00:00")) == expires
    [entry] = simulator_control.psp.entries()
    assert (entry["type"], entry["cardId"], entry["subCaseUrn"], entry["amount"]) == (
        "card_issued",
        card["cardId"],
        sub_case,
        "25.00",
    )


def test_same_idempotency_key_same_card_one_effect(simulator_control):
    key, sub_case, expires = step(), urn(), in_hours(6)
    psp = psp_client()
    first = psp.issue_virtual_card(
        idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("25.00"), currency="EUR", expires_at=expires
    )
    second = psp.issue_virtual_card(
        idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("25.00"), currency="EUR", expires_at=expires
    )
    assert first == second
    assert len(simulator_control.psp.entries("card_issued")) == 1


def test_concurrent_requests_with_one_key_pay_once(simulator_control):
    from concurrent.futures import ThreadPoolExecutor

    simulator_control.psp.latency([20, 80])
    key, sub_case = step(), urn()

    def pay(_):
        return psp_client().payout(
            idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("250"), currency="EUR", regulation="EU261"
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(pay, range(8)))
    assert len({answer["payoutId"] for answer in answers}) == 1
    assert len(simulator_control.psp.entries("payout")) == 1
    assert psp_client().wallet_balance(sub_case_urn=sub_case)["balances"] == {"EUR": "250.00"}


def test_same_key_with_another_request_is_refused(simulator_control):
    key, sub_case = step(), urn()
    psp = psp_client()
    psp.payout(idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("250"), currency="EUR", regulation="EU261")
    with pytest.raises(ProviderPermanentError) as raised:
        psp.payout(
            idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("600"), currency="EUR", regulation="EU261"
        )
    assert raised.value.code == "idempotency_key_reused"
    assert raised.value.attempt_detail["httpStatus"] == 422
    assert len(simulator_control.psp.entries("payout")) == 1


def test_void_card_once(simulator_control):
    psp = psp_client()
    card = psp.issue_virtual_card(
        idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("12.50"), currency="EUR", expires_at=in_hours(2)
    )
    key = step()
    voided = psp.void_card(idempotency_key=key, card_id=card["cardId"])
    assert (voided["cardId"], voided["status"]) == (card["cardId"], "VOIDED")
    assert psp.void_card(idempotency_key=key, card_id=card["cardId"]) == voided
    assert psp.void_card(idempotency_key=step(), card_id=card["cardId"])["status"] == "VOIDED"  # already void: no-op
    assert len(simulator_control.psp.entries("card_voided")) == 1
    with pytest.raises(ProviderPermanentError) as raised:
        psp.void_card(idempotency_key=step(), card_id="card_unknown")
    assert (raised.value.code, raised.value.attempt_detail["httpStatus"]) == ("card_not_found", 404)


def charge(simulator_control, card_id, amount, key=None):
    return httpx.post(
        f"{simulator_control.psp.url}/v1/virtual-cards/{card_id}/charges",
        json={"amount": amount, "currency": "EUR", "merchant": "Airport Café"},
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


def test_virtual_card_is_single_use_and_limited_by_amount_and_expiry(simulator_control):
    psp = psp_client()
    card = psp.issue_virtual_card(
        idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("25.00"), currency="EUR", expires_at=in_hours(1)
    )
    over = charge(simulator_control, card["cardId"], "25.01")
    assert (over.status_code, over.json()["error"]["code"]) == (402, "amount_exceeds_limit")
    assert charge(simulator_control, card["cardId"], "19.90").status_code == 201
    again = charge(simulator_control, card["cardId"], "1.00")
    assert (again.status_code, again.json()["error"]["code"]) == (402, "card_declined")
    with pytest.raises(ProviderPermanentError) as raised:  # a used card cannot be voided
        psp.void_card(idempotency_key=step(), card_id=card["cardId"])
    assert raised.value.code == "card_already_used"

    short = psp.issue_virtual_card(
        idempotency_key=step(),
        sub_case_urn=urn(),
        amount=Decimal("10"),
        currency="EUR",
        expires_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    time.sleep(1.1)
    expired = charge(simulator_control, short["cardId"], "5.00")
    assert (expired.status_code, expired.json()["error"]["code"]) == (402, "card_expired")
    with pytest.raises(ProviderPermanentError) as raised:
        psp.issue_virtual_card(
            idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("10"), currency="EUR", expires_at=in_hours(-1)
        )
    assert raised.value.code == "invalid_expiry"


def test_payout_reverse_and_wallet_balance_equals_payouts_minus_reversals(simulator_control):
    psp = psp_client()
    sub_case = urn()
    assert psp.wallet_balance(sub_case_urn=sub_case) == {"subCaseUrn": sub_case, "balances": {}}
    paid = [
        psp.payout(idempotency_key=step(), sub_case_urn=sub_case, amount=Decimal(a), currency=c, regulation="EU261")
        for a, c in (("250.00", "EUR"), ("125.50", "EUR"), ("40", "GBP"), ("10.25", "EUR"))
    ]
    assert paid[0] == {"payoutId": paid[0]["payoutId"], "amount": "250.00", "currency": "EUR", "status": "PAID"}
    reverse_key = step()
    reversed_payout = psp.reverse_payout(idempotency_key=reverse_key, payout_id=paid[1]["payoutId"])
    assert (reversed_payout["payoutId"], reversed_payout["status"]) == (paid[1]["payoutId"], "REVERSED")
    assert psp.reverse_payout(idempotency_key=reverse_key, payout_id=paid[1]["payoutId"]) == reversed_payout
    assert psp.reverse_payout(idempotency_key=step(), payout_id=paid[1]["payoutId"])["status"] == "REVERSED"
    psp.payout(idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("99"), currency="EUR", regulation=None)

    balance = psp.wallet_balance(sub_case_urn=sub_case)
    assert balance == {"subCaseUrn": sub_case, "balances": {"EUR": "260.25", "GBP": "40.00"}}
    # The same figure from the ledger: payouts minus reversals of this sub-case.
    totals: dict[str, Decimal] = {}
    for entry in simulator_control.psp.entries():
        if entry["subCaseUrn"] != sub_case:
            continue
        sign = {"payout": 1, "payout_reversed": -1}[entry["type"]]
        totals[entry["currency"]] = totals.get(entry["currency"], Decimal(0)) + sign * Decimal(entry["amount"])
    assert {c: str(v) for c, v in totals.items()} == balance["balances"]
    assert len(simulator_control.psp.entries("payout_reversed")) == 1


# --- PSP: refusals, transient errors, outage and the breaker ------------------------------------------


@pytest.mark.parametrize(("code", "status"), [("insufficient_funds", 402), ("card_declined", 402), ("fraud_hold", 403)])
def test_each_refusal_is_a_permanent_error_with_details(simulator_control, code, status, fast_breaker):
    refused, other = urn(), urn()
    simulator_control.psp.refuse({refused: code})
    psp = psp_client()
    key = step()
    for _ in range(4):  # more than NEXA_BREAKER_FAIL_MAX: refusals never open the circuit
        with pytest.raises(ProviderPermanentError) as raised:
            psp.payout(
                idempotency_key=key, sub_case_urn=refused, amount=Decimal("250"), currency="EUR", regulation=None
            )
    error = raised.value
    assert (error.provider, error.code) == ("psp", code)
    detail = error.attempt_detail
    assert (detail["provider"], detail["httpStatus"], detail["code"], detail["operation"]) == (
        "psp",
        status,
        code,
        "payout",
    )
    assert detail["message"] and detail["idempotencyKey"] == key
    json.dumps(detail)  # recordable as is
    with pytest.raises(ProviderPermanentError) as raised:
        psp.issue_virtual_card(
            idempotency_key=step(), sub_case_urn=refused, amount=Decimal("25"), currency="EUR", expires_at=in_hours(4)
        )
    assert raised.value.code == code
    assert breaker_for("psp").current_state == "closed"
    assert simulator_control.psp.entries() == []
    # Other sub-cases are not refused, and the refused step succeeds with its key once the refusal is lifted.
    psp.payout(idempotency_key=step(), sub_case_urn=other, amount=Decimal("1"), currency="EUR", regulation=None)
    simulator_control.psp.refuse({})
    psp.payout(idempotency_key=key, sub_case_urn=refused, amount=Decimal("250"), currency="EUR", regulation=None)
    assert [e["subCaseUrn"] for e in simulator_control.psp.entries("payout")] == [other, refused]


def test_refusal_for_everyone(simulator_control):
    simulator_control.psp.refuse({"*": "fraud_hold"})
    with pytest.raises(ProviderPermanentError) as raised:
        psp_client().payout(
            idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("5"), currency="EUR", regulation=None
        )
    assert raised.value.code == "fraud_hold"


@pytest.mark.parametrize("status", [503, 500, 429])
def test_error_rate_one_gives_transient_errors(simulator_control, status):
    simulator_control.psp.error_rate(1.0, status=status)
    with pytest.raises(ProviderTransientError) as raised:
        psp_client().payout(
            idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("5"), currency="EUR", regulation=None
        )
    assert raised.value.code == "temporarily_unavailable"
    assert raised.value.attempt_detail["httpStatus"] == status
    assert simulator_control.psp.entries() == []


def test_outage_opens_the_breaker_then_nothing_reaches_the_psp_until_it_recovers(simulator_control, fast_breaker):
    simulator_control.psp.outage()
    psp = psp_client()
    sub_case = urn()
    for _ in range(3):
        with pytest.raises(ProviderTransientError) as raised:
            psp.payout(
                idempotency_key=step(), sub_case_urn=sub_case, amount=Decimal("5"), currency="EUR", regulation=None
            )
        assert (raised.value.code, raised.value.attempt_detail["httpStatus"]) == ("outage", 503)
    assert breaker_states()["psp"] == "open"
    requests_so_far = simulator_control.psp.request_count()
    assert requests_so_far == 3

    with pytest.raises(ProviderUnavailable) as raised:
        psp.payout(idempotency_key=step(), sub_case_urn=sub_case, amount=Decimal("5"), currency="EUR", regulation=None)
    with pytest.raises(ProviderUnavailable):
        psp.wallet_balance(sub_case_urn=sub_case)
    assert simulator_control.psp.request_count() == requests_so_far
    assert (raised.value.domain, raised.value.provider) == ("psp", "psp")
    problem = problem_for_unavailable(raised.value)
    assert (problem.status_code, problem.extensions, problem.headers) == (
        503,
        {"failedDomain": "psp"},
        {"Retry-After": "30"},
    )

    simulator_control.psp.outage(False)
    time.sleep(1.1)
    payout = psp.payout(
        idempotency_key=step(), sub_case_urn=sub_case, amount=Decimal("5"), currency="EUR", regulation=None
    )
    assert payout["status"] == "PAID"
    assert breaker_states()["psp"] == "closed"
    assert simulator_control.psp.request_count() == requests_so_far + 1


def test_dropped_connections_are_transient(simulator_control):
    simulator_control.psp.outage("drop")
    with pytest.raises(ProviderTransientError) as raised:
        psp_client().wallet_balance(sub_case_urn=urn())
    assert raised.value.code == "connection_error"
    assert raised.value.attempt_detail["httpStatus"] is None


def test_open_breaker_is_seen_by_another_process(simulator_control, subprocess_env, fast_breaker):
    simulator_control.psp.outage()
    psp = psp_client()
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            psp.payout(idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("5"), currency="EUR", regulation=None)
    simulator_control.psp.outage(False)  # the PSP is back, but the circuit is open for 30 s in the subprocess
    before = simulator_control.psp.request_count()
    script = (
        "import django, json, decimal\n"
        "django.setup()\n"
        "from booking.payments import psp_client\n"
        "from nexa.platform.providers import ProviderUnavailable\n"
        "try:\n"
        "    psp_client().payout(idempotency_key='k', sub_case_urn='urn:nexa:subcase:x', amount=decimal.Decimal('1'),"
        " currency='EUR', regulation=None)\n"
        "    print(json.dumps({'outcome': 'called'}))\n"
        "except ProviderUnavailable as error:\n"
        "    print(json.dumps({'outcome': 'unavailable', 'domain': error.domain}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**subprocess_env, "NEXA_BREAKER_RESET_SECONDS": "30"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"outcome": "unavailable", "domain": "psp"}
    assert simulator_control.psp.request_count() == before


def test_subprocess_env_points_at_the_same_simulators(simulators, subprocess_env, settings):
    assert subprocess_env["NEXA_PSP_URL"] == simulators.psp.url == settings.NEXA_PSP_URL
    assert subprocess_env["NEXA_TRANSPORT_URL"] == simulators.transport.url == settings.NEXA_TRANSPORT_URL
    assert subprocess_env["NEXA_SMS_URL"] == simulators.sms.url == settings.NEXA_SMS_URL
    assert subprocess_env["NEXA_WHATSAPP_URL"] == simulators.sms.url == settings.NEXA_WHATSAPP_URL


def test_latency_is_honoured_and_a_late_answer_is_a_timeout(simulator_control, settings):
    simulator_control.psp.latency([300, 320])
    started = time.monotonic()
    psp_client().wallet_balance(sub_case_urn=urn())
    assert time.monotonic() - started >= 0.3

    settings.NEXA_PROVIDER_TIMEOUT_SECONDS = 0.2
    simulator_control.psp.latency(600)
    with pytest.raises(ProviderTransientError) as raised:
        psp_client().payout(
            idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("5"), currency="EUR", regulation=None
        )
    assert raised.value.code == "timeout"
    assert raised.value.attempt_detail["durationMs"] >= 200


def test_a_late_answer_retried_with_its_key_does_not_pay_twice(simulator_control, settings):
    """The effect happened but the answer was lost (timeout): the retry with the same key replays it."""
    settings.NEXA_PROVIDER_TIMEOUT_SECONDS = 0.3
    simulator_control.psp.control(latencyAfterMs=800)
    key, sub_case = step(), urn()
    psp = psp_client()
    with pytest.raises(ProviderTransientError):
        psp.payout(
            idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("250"), currency="EUR", regulation="EU261"
        )
    simulator_control.psp.control(latencyAfterMs=0)
    payout = psp.payout(
        idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("250"), currency="EUR", regulation="EU261"
    )
    assert payout["status"] == "PAID"
    assert [e["payoutId"] for e in simulator_control.psp.entries("payout")] == [payout["payoutId"]]
    assert psp.wallet_balance(sub_case_urn=sub_case)["balances"] == {"EUR": "250.00"}


# --- transport --------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["UBER", "CABIFY"])
def test_request_and_cancel_a_ride_once(simulator_control, provider):
    client = transport_client(provider)
    sub_case, key, pickup_at = urn(), step(), in_hours(1)
    ride = client.request_ride(
        idempotency_key=key, sub_case_urn=sub_case, pickup=PICKUP, dropoff=DROPOFF, pickup_at=pickup_at
    )
    assert set(ride) == {"rideId", "provider", "status", "etaMinutes"}
    assert (ride["provider"], ride["status"]) == (provider, "REQUESTED")
    assert isinstance(ride["etaMinutes"], int) and ride["etaMinutes"] > 0
    again = client.request_ride(
        idempotency_key=key, sub_case_urn=sub_case, pickup=PICKUP, dropoff=DROPOFF, pickup_at=pickup_at
    )
    assert again == ride
    cancel_key = step()
    cancelled = client.cancel_ride(idempotency_key=cancel_key, ride_id=ride["rideId"])
    assert cancelled == {"rideId": ride["rideId"], "provider": provider, "status": "CANCELLED", "etaMinutes": None}
    assert client.cancel_ride(idempotency_key=cancel_key, ride_id=ride["rideId"]) == cancelled
    assert client.cancel_ride(idempotency_key=step(), ride_id=ride["rideId"]) == cancelled  # already cancelled: no-op
    requested = simulator_control.transport.entries("ride_requested")
    assert [(e["rideId"], e["provider"], e["subCaseUrn"]) for e in requested] == [(ride["rideId"], provider, sub_case)]
    assert [e["rideId"] for e in simulator_control.transport.entries("ride_cancelled")] == [ride["rideId"]]


def test_uber_and_cabify_shapes_reach_the_simulator(simulator_control):
    """The adapters speak each provider's own API: Uber's requests and Cabify's journeys."""
    uber = transport_client("uber").request_ride(
        idempotency_key=step(), sub_case_urn=urn(), pickup=PICKUP, dropoff=DROPOFF, pickup_at=None
    )
    cabify = transport_client("CABIFY").request_ride(
        idempotency_key=step(),
        sub_case_urn=urn(),
        pickup={"latitude": 40.47, "longitude": -3.56, "name": "T4"},
        dropoff={"lat": 40.45, "lon": -3.68},
        pickup_at=None,
    )
    assert uber["rideId"].startswith("uber_") and cabify["rideId"].startswith("cabify_")
    base = simulator_control.transport.url
    # Each API only knows its own rides.
    assert (
        httpx.delete(f"{base}/v1.2/requests/{cabify['rideId']}", headers={"Idempotency-Key": "x1"}).status_code == 404
    )
    wrong = httpx.post(f"{base}/api/v4/journey/{uber['rideId']}/cancel", json={}, headers={"Idempotency-Key": "x2"})
    assert wrong.status_code == 404
    [uber_entry, cabify_entry] = simulator_control.transport.entries("ride_requested")
    assert (uber_entry["provider"], cabify_entry["provider"]) == ("UBER", "CABIFY")
    with pytest.raises(ValueError):
        transport_client("BOLT")


@pytest.mark.parametrize("provider", ["UBER", "CABIFY"])
def test_ride_refusal_and_bad_locations_are_permanent(simulator_control, provider):
    refused = urn()
    simulator_control.transport.refuse({refused: "no_drivers_available"})
    client = transport_client(provider)
    with pytest.raises(ProviderPermanentError) as raised:
        client.request_ride(
            idempotency_key=step(), sub_case_urn=refused, pickup=PICKUP, dropoff=DROPOFF, pickup_at=None
        )
    assert (raised.value.provider, raised.value.code) == (provider.lower(), "no_drivers_available")
    assert raised.value.attempt_detail["httpStatus"] == 422
    assert raised.value.attempt_detail["message"]
    with pytest.raises(ProviderPermanentError) as raised:
        client.request_ride(
            idempotency_key=step(), sub_case_urn=urn(), pickup={"address": "somewhere"}, dropoff=DROPOFF, pickup_at=None
        )
    assert raised.value.code == "invalid_location"
    with pytest.raises(ProviderPermanentError) as raised:
        client.request_ride(
            idempotency_key=step(), sub_case_urn=urn(), pickup={"lat": 95, "lng": 0}, dropoff=DROPOFF, pickup_at=None
        )
    assert (raised.value.code, raised.value.attempt_detail["httpStatus"]) == ("invalid_location", 422)
    assert simulator_control.transport.entries() == []


def test_each_transport_provider_has_its_own_breaker(simulator_control, fast_breaker):
    simulator_control.transport.error_rate(1.0)
    uber = transport_client("UBER")
    for _ in range(3):
        with pytest.raises(ProviderTransientError):
            uber.request_ride(
                idempotency_key=step(), sub_case_urn=urn(), pickup=PICKUP, dropoff=DROPOFF, pickup_at=None
            )
    simulator_control.transport.error_rate(0.0)
    states = breaker_states()
    assert (states["transport-uber"], states["transport-cabify"]) == ("open", "closed")
    with pytest.raises(ProviderUnavailable) as raised:
        uber.request_ride(idempotency_key=step(), sub_case_urn=urn(), pickup=PICKUP, dropoff=DROPOFF, pickup_at=None)
    assert raised.value.domain == "transport-uber"
    ride = transport_client("CABIFY").request_ride(
        idempotency_key=step(), sub_case_urn=urn(), pickup=PICKUP, dropoff=DROPOFF, pickup_at=None
    )
    assert ride["status"] == "REQUESTED"
    assert simulator_control.transport.request_count() == 4


def test_each_provider_call_is_one_structured_log_line_and_httpx_stays_quiet(simulator_control, caplog):
    import logging

    caplog.set_level(logging.INFO)
    psp_client().issue_virtual_card(
        idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("10"), currency="EUR", expires_at=in_hours(1)
    )
    simulator_control.psp.refuse({"*": "card_declined"})
    with pytest.raises(ProviderPermanentError):
        psp_client().issue_virtual_card(
            idempotency_key=step(), sub_case_urn=urn(), amount=Decimal("10"), currency="EUR", expires_at=in_hours(1)
        )
    calls = [record.msg for record in caplog.records if record.name == "nexa.providers"]
    assert [(c["event"], c["provider"], c["operation"], c["outcome"]) for c in calls] == [
        ("provider.call", "psp", "issue_virtual_card", "ok"),
        ("provider.call", "psp", "issue_virtual_card", "card_declined"),
    ]
    assert [c["http_status"] for c in calls] == [201, 402] and all(c["duration_ms"] >= 0 for c in calls)
    assert not [record for record in caplog.records if record.name.startswith(("httpx", "httpcore"))]


# --- issue 9 §2: status lookup by idempotency key, and "processed, then the answer is lost" -------------


def test_a_payout_processed_then_lost_is_found_by_its_key_and_a_replay_pays_nothing(simulator_control):
    client, key, sub_case = psp_client(), step(), urn()
    assert client.payout_lookup(idempotency_key=key) is None  # confirmed: never executed
    simulator_control.psp.fault_after_processing({"/v1/payouts": 503})
    with pytest.raises(ProviderTransientError) as lost:
        client.payout(idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("250"), currency="EUR",
                      regulation="EU261")  # fmt: skip
    assert lost.value.code == "answer_lost"
    [made] = simulator_control.psp.entries("payout")  # it was processed
    found = client.payout_lookup(idempotency_key=key)
    assert found == {"payoutId": made["payoutId"], "amount": "250.00", "currency": "EUR", "status": "PAID"}
    simulator_control.psp.fault_after_processing({})
    replay = client.payout(idempotency_key=key, sub_case_urn=sub_case, amount=Decimal("250"), currency="EUR",
                           regulation="EU261")  # fmt: skip
    assert replay == found and len(simulator_control.psp.entries("payout")) == 1


def test_a_dropped_answer_after_processing_is_a_transient_error_and_the_card_is_found(simulator_control):
    client, key = psp_client(), step()
    simulator_control.psp.fault_after_processing({"*": "drop"})
    with pytest.raises(ProviderTransientError):
        client.issue_virtual_card(idempotency_key=key, sub_case_urn=urn(), amount=Decimal("25"), currency="EUR",
                                  expires_at=in_hours(24))  # fmt: skip
    with pytest.raises(ProviderTransientError):  # "*" loses the lookup's answer too
        client.card_lookup(idempotency_key=key)
    simulator_control.psp.fault_after_processing({})
    [card] = simulator_control.psp.entries("card_issued")
    assert client.card_lookup(idempotency_key=key)["cardId"] == card["cardId"]


def test_a_lookup_while_the_request_is_still_processed_is_transient_never_not_executed(simulator_control):
    import threading

    client, key = psp_client(), step()
    simulator_control.psp.latency(1500)  # before the effect
    thread = threading.Thread(
        target=lambda: client.payout(
            idempotency_key=key, sub_case_urn=urn(), amount=Decimal("1"), currency="EUR", regulation="EU261"
        )
    )
    thread.start()
    try:
        time.sleep(0.4)
        simulator_control.psp.latency(0)  # the payout keeps its 1.5 s; the lookup is answered at once
        with pytest.raises(ProviderTransientError) as busy:
            client.payout_lookup(idempotency_key=key)
        assert busy.value.code == "idempotency_key_in_flight"
    finally:
        thread.join(10)
    assert client.payout_lookup(idempotency_key=key)["status"] == "PAID"


@pytest.mark.parametrize("provider", ["UBER", "CABIFY"])
def test_a_ride_is_found_by_its_key_in_the_adapters_shape(simulator_control, provider):
    client, key = transport_client(provider), step()
    assert client.ride_lookup(idempotency_key=key) is None
    ride = client.request_ride(idempotency_key=key, sub_case_urn=urn(), pickup=PICKUP, dropoff=DROPOFF,
                               pickup_at=in_hours(1))  # fmt: skip
    assert client.ride_lookup(idempotency_key=key) == ride
