"""SMS and WhatsApp adapters against the REAL simulator process (notifications/simulators)."""

import uuid

import pytest

from nexa.platform.breakers import breaker_states
from nexa.platform.providers import ProviderPermanentError, ProviderTransientError, ProviderUnavailable
from notifications.providers import sms_client, whatsapp_client

pytestmark = pytest.mark.usefixtures("simulator_control")

PHONE = "+34600111222"


def step() -> str:
    return f"urn:nexa:step:{uuid.uuid4()}"


def test_sms_is_sent_once_per_key(simulator_control):
    key = step()
    sent = sms_client().send(idempotency_key=key, to=PHONE, body="Your hotel: Castellana. Shuttle at door 4.")
    assert set(sent) == {"messageId", "status"}
    assert sent["status"] == "queued"
    assert sms_client().send(idempotency_key=key, to=PHONE, body="Your hotel: Castellana. Shuttle at door 4.") == sent
    [entry] = simulator_control.sms.entries("sms")
    assert (entry["messageId"], entry["to"], entry["body"]) == (
        sent["messageId"],
        PHONE,
        "Your hotel: Castellana. Shuttle at door 4.",
    )
    with pytest.raises(ProviderPermanentError) as raised:
        sms_client().send(idempotency_key=key, to=PHONE, body="another text")
    assert raised.value.code == "idempotency_key_reused"


def test_invalid_or_refused_recipient_is_permanent(simulator_control):
    with pytest.raises(ProviderPermanentError) as raised:
        sms_client().send(idempotency_key=step(), to="600111222", body="hi")
    error = raised.value
    assert (error.provider, error.code) == ("sms", "invalid_recipient")
    assert error.attempt_detail["httpStatus"] == 422
    assert error.attempt_detail["message"]
    simulator_control.sms.refuse({"+34600999888": "unreachable_destination"})
    with pytest.raises(ProviderPermanentError) as raised:
        sms_client().send(idempotency_key=step(), to="+34600999888", body="hi")
    assert raised.value.code == "unreachable_destination"
    assert simulator_control.sms.entries() == []


def test_sms_transient_errors_and_outage_open_only_the_sms_breaker(simulator_control, settings):
    settings.NEXA_BREAKER_FAIL_MAX = 2
    settings.NEXA_BREAKER_RESET_SECONDS = 30
    simulator_control.sms.error_rate(1.0)
    with pytest.raises(ProviderTransientError) as raised:
        sms_client().send(idempotency_key=step(), to=PHONE, body="hi")
    assert (raised.value.code, raised.value.attempt_detail["httpStatus"]) == ("temporarily_unavailable", 503)
    simulator_control.sms.control(errorRate=0.0, outage=True)
    with pytest.raises(ProviderTransientError):
        sms_client().send(idempotency_key=step(), to=PHONE, body="hi")
    count = simulator_control.sms.request_count()
    with pytest.raises(ProviderUnavailable) as raised:
        sms_client().send(idempotency_key=step(), to=PHONE, body="hi")
    assert raised.value.domain == "sms"
    assert simulator_control.sms.request_count() == count
    states = breaker_states()
    assert (states["sms"], states["whatsapp"]) == ("open", "closed")


def test_whatsapp_sends_an_approved_template_with_its_parameters(simulator_control):
    simulator_control.sms.approve_templates(["hotel_voucher"])
    key = step()
    sent = whatsapp_client().send(
        idempotency_key=key, to=PHONE, template="hotel_voucher", language="es", parameters=["Ana", "Hotel Castellana"]
    )
    assert sent["messageId"].startswith("wamid.")
    assert sent["status"] == "accepted"
    again = whatsapp_client().send(
        idempotency_key=key, to=PHONE, template="hotel_voucher", language="es", parameters=["Ana", "Hotel Castellana"]
    )
    assert again == sent
    [entry] = simulator_control.sms.entries("whatsapp")
    assert (entry["to"], entry["template"], entry["language"], entry["parameters"]) == (
        PHONE,
        "hotel_voucher",
        "es",
        ["Ana", "Hotel Castellana"],
    )


def test_whatsapp_refuses_a_template_that_is_not_approved_until_it_is(simulator_control, settings):
    settings.NEXA_BREAKER_FAIL_MAX = 2
    simulator_control.sms.approve_templates([])
    key = step()
    for _ in range(3):
        with pytest.raises(ProviderPermanentError) as raised:
            whatsapp_client().send(idempotency_key=key, to=PHONE, template="delay_notice", language="en", parameters=[])
    assert (raised.value.provider, raised.value.code) == ("whatsapp", "template_not_approved")
    assert raised.value.attempt_detail["httpStatus"] == 422
    assert breaker_states()["whatsapp"] == "closed"
    assert simulator_control.sms.entries() == []
    simulator_control.sms.approve_templates(["delay_notice"])
    sent = whatsapp_client().send(idempotency_key=key, to=PHONE, template="delay_notice", language="en", parameters=[])
    assert [e["messageId"] for e in simulator_control.sms.entries("whatsapp")] == [sent["messageId"]]


def test_default_templates_are_approved_after_a_reset(simulator_control):
    assert "hotel_voucher" in simulator_control.sms.ledger()["config"]["approvedTemplates"]
    sent = whatsapp_client().send(
        idempotency_key=step(), to=PHONE, template="disruption_notice", language="en", parameters=["IB3190"]
    )
    assert sent["status"] == "accepted"
