"""generate-ai: the deterministic parser (English and Spanish), the route's DRAFT with per-rule
provenance, 422 for what it cannot read, and the hosted-model adapter's contract against a local
HTTP server speaking the Messages shape."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from policies.generator import HostedModelAdapter, PhraseParser, generator_for_settings
from policies.models import Policy
from tests.api_base import assert_problem

EN = "Business class gets a 4-star within 15 km, up to 180 EUR a night, dinner 35 EUR; families stay together"
ES = (
    "Clase business: hotel de 4 estrellas a menos de 15 km, hasta 180 euros por noche, cena 35 EUR; "
    "las familias se quedan juntas"
)
COMMON_RULES = {
    "minStars": 4,
    "maxDistanceKm": 15.0,
    "maxNightlyRate": {"amount": "180.00", "currency": "EUR"},
    "mealAllowance": {"dinner": {"amount": "35.00", "currency": "EUR"}},
    "maxOccupancy": {"perRoom": 2, "familyException": True},
}


@pytest.mark.parametrize("description", [EN, ES], ids=["en", "es"])
def test_the_issues_example_reads_the_same_in_english_and_spanish(description):
    generated = PhraseParser().generate(description)
    assert generated.rule_values() == COMMON_RULES
    assert generated.scope_values() == {"tier": "BUSINESS"}
    assert generated.unread == []
    for item in generated.rules.values():
        assert 0 < item["confidence"] <= 1
        for words in item["source"].split(" | "):
            assert words in description  # the exact words it came from


@pytest.mark.parametrize(
    ("description", "rules", "scope"),
    [
        (
            "Economy passengers at MAD on cancellations: 3 stars, max 10 km, 120 EUR per night, breakfast 12 EUR, "
            "lunch 20 EUR, transport included, EU261",
            {
                "minStars": 3,
                "maxDistanceKm": 10.0,
                "maxNightlyRate": {"amount": "120.00", "currency": "EUR"},
                "mealAllowance": {
                    "breakfast": {"amount": "12.00", "currency": "EUR"},
                    "lunch": {"amount": "20.00", "currency": "EUR"},
                },
                "transport": True,
                "regulation": "EU261",
            },
            {"tier": "ECONOMY", "airport": "MAD", "cause": "CANCELLATION"},
        ),
        (
            "Turista en BCN por retrasos: 3 estrellas, máximo 20 km, 100 € por noche, sin transporte, habitaciones "
            "accesibles para PMR, 2 personas por habitación",
            {
                "minStars": 3,
                "maxDistanceKm": 20.0,
                "maxNightlyRate": {"amount": "100.00", "currency": "EUR"},
                "transport": False,
                "accessibleRoomForPrm": True,
                "maxOccupancy": {"perRoom": 2},
            },
            {"tier": "ECONOMY", "airport": "BCN", "cause": "DELAY"},
        ),
        (
            "First class, missed connections at LHR: 5 stars within 5 km, up to 300 GBP a night, UK261",
            {
                "minStars": 5,
                "maxDistanceKm": 5.0,
                "maxNightlyRate": {"amount": "300.00", "currency": "GBP"},
                "regulation": "UK261",
            },
            {"tier": "FIRST", "airport": "LHR", "cause": "MISSED_CONNECTION"},
        ),
        (
            "Premium economy desvíos: $150 per night, 25 USD para la cena, 3 people per room, no transport",
            {
                "maxNightlyRate": {"amount": "150.00", "currency": "USD"},
                "mealAllowance": {"dinner": {"amount": "25.00", "currency": "USD"}},
                "maxOccupancy": {"perRoom": 3},
                "transport": False,
            },
            {"tier": "PREMIUM_ECONOMY", "cause": "DIVERSION"},
        ),
    ],
    ids=["en-economy", "es-turista", "en-first", "mixed"],
)
def test_common_phrasings(description, rules, scope):
    generated = PhraseParser().generate(description)
    assert generated.rule_values() == rules
    assert generated.scope_values() == scope


def test_fragments_it_cannot_read_are_listed():
    generated = PhraseParser().generate("4 stars and a pony; free cocktails")
    assert generated.rule_values() == {"minStars": 4}
    assert generated.unread == ["a pony", "free cocktails"]


@pytest.mark.django_db
def test_the_route_answers_a_draft_with_provenance_that_is_never_activated(client_for):
    response = client_for("IB", Role.OPS_SUPERVISOR).post(
        "/v1/policies/generate-ai", {"description": EN}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "DRAFT" and body["source"] == "GENERATED" and body["version"] == 1
    assert body["rules"] == {**COMMON_RULES, "maxDistanceKm": 15}
    assert body["scope"] == {"tier": "BUSINESS"}
    assert body["generation"]["generator"] == "deterministic"
    assert body["generation"]["rules"]["minStars"] == {"value": 4, "confidence": 0.9, "source": "4-star"}
    assert body["name"].startswith("Generated: Business class")
    assert not OutboxEvent.objects.filter(event="policy:activated").exists()
    entry = AuditEntry.objects.get(action="policy.generated")
    assert entry.after["description"] == EN and entry.after["generation"]["rules"]["minStars"]["value"] == 4


@pytest.mark.django_db
def test_nothing_readable_is_a_422_listing_what_it_could_not_read(client_for):
    client = client_for("IB", Role.OPS_SUPERVISOR)
    response = client.post("/v1/policies/generate-ai", {"description": "Be nice; hug everyone"}, format="json")
    body = assert_problem(response, 422, "unprocessable")
    assert body["errors"] == [
        {"field": "description", "message": "could not read: 'Be nice'"},
        {"field": "description", "message": "could not read: 'hug everyone'"},
    ]
    assert not Policy.objects.exists() and not AuditEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{}, {"description": "  "}, {"description": 42}, {"description": "x" * 2001}, {"description": EN, "name": None}],
)
def test_a_missing_or_bad_description_is_400(client_for, body):
    client = client_for("IB", Role.OPS_SUPERVISOR)
    assert_problem(client.post("/v1/policies/generate-ai", body, format="json"), 400, "validation-error")


# --- the hosted-model adapter ------------------------------------------------------------------------


class _FakeModel(BaseHTTPRequestHandler):
    """Speaks the Messages shape: POST {model, system, messages, max_tokens} → {content: [{type, text}]}."""

    answer: dict | str = {}
    status = 200
    seen: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        type(self).seen.append({"headers": dict(self.headers), "body": json.loads(self.rfile.read(length))})
        text = self.answer if isinstance(self.answer, str) else json.dumps(self.answer)
        payload = json.dumps({"id": "msg_1", "type": "message", "content": [{"type": "text", "text": text}]})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_model():
    _FakeModel.seen, _FakeModel.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _FakeModel, f"http://127.0.0.1:{server.server_address[1]}/v1/messages"
    server.shutdown()
    server.server_close()


MODEL_ANSWER = {
    "scope": {"tier": {"value": "BUSINESS", "confidence": 0.9, "source": "Business class"}},
    "rules": {
        "minStars": {"value": 4, "confidence": 0.95, "source": "4-star"},
        "maxNightlyRate": {"value": {"amount": "180.00", "currency": "EUR"}, "confidence": 0.9, "source": "180 EUR"},
        "minSpa": {"value": True, "confidence": 0.9, "source": "spa"},
        "maxDistanceKm": {"value": -3, "confidence": 0.9, "source": "minus three km"},
    },
    "unread": ["families stay together"],
}


def test_no_key_means_the_deterministic_parser():
    with override_settings(NEXA_POLICY_MODEL_API_KEY=""):
        assert isinstance(generator_for_settings(), PhraseParser)
    with override_settings(NEXA_POLICY_MODEL_API_KEY="k", NEXA_POLICY_MODEL_URL="http://127.0.0.1:9/v1/messages"):
        assert isinstance(generator_for_settings(), HostedModelAdapter)


def test_the_adapter_sends_the_messages_shape_and_keeps_the_output_contract(fake_model):
    model, url = fake_model
    model.answer = MODEL_ANSWER
    generated = HostedModelAdapter(url=url, api_key="secret", model="m-1").generate(EN)
    request = model.seen[0]
    assert request["headers"]["x-api-key"] == "secret"
    assert request["body"]["model"] == "m-1" and request["body"]["messages"] == [{"role": "user", "content": EN}]
    assert "maxNightlyRate" in request["body"]["system"]
    assert generated.generator == "hosted"
    assert generated.rule_values() == {"minStars": 4, "maxNightlyRate": {"amount": "180.00", "currency": "EUR"}}
    assert generated.scope_values() == {"tier": "BUSINESS"}
    assert generated.unread == ["spa", "minus three km", "families stay together"]  # invalid rules are unread
    assert json.loads(generated.prompt)["messages"][0]["content"] == EN
    assert json.loads(generated.answer) == MODEL_ANSWER


@pytest.mark.django_db
def test_the_route_with_a_key_uses_the_model_and_audits_prompt_and_answer(fake_model, client_for):
    model, url = fake_model
    model.answer = MODEL_ANSWER
    with override_settings(NEXA_POLICY_MODEL_API_KEY="secret", NEXA_POLICY_MODEL_URL=url):
        response = client_for("IB", Role.OPS_SUPERVISOR).post(
            "/v1/policies/generate-ai", {"description": EN, "name": "From the model"}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["generation"]["generator"] == "hosted" and body["name"] == "From the model"
    assert body["rules"] == {"minStars": 4, "maxNightlyRate": {"amount": "180.00", "currency": "EUR"}}
    after = AuditEntry.objects.get(action="policy.generated").after
    assert json.loads(after["modelPrompt"])["messages"][0]["content"] == EN
    assert json.loads(after["modelAnswer"]) == MODEL_ANSWER
    assert "secret" not in json.dumps(after)


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["status", "garbage"])
def test_a_model_that_fails_is_a_503_naming_the_domain(fake_model, client_for, failure):
    model, url = fake_model
    model.answer = "not json at all"
    if failure == "status":
        model.status = 500
    with override_settings(NEXA_POLICY_MODEL_API_KEY="secret", NEXA_POLICY_MODEL_URL=url):
        response = client_for("IB", Role.OPS_SUPERVISOR).post(
            "/v1/policies/generate-ai", {"description": EN}, format="json"
        )
    body = assert_problem(response, 503, "downstream-unavailable")
    assert body["failedDomain"] == "policy-model" and response["Retry-After"] == "30"
    assert not Policy.objects.exists()
