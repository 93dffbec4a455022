"""The hosted-model adapter against a simulator of the model API (an OpenAI-compatible chat/tool-calling
endpoint) served by a real HTTP server on its own thread, over real httpx: the model's tool calls go
through the allow-list (a forbidden tool is refused, never executed, and audited), its answer is kept only
where the tools ground it, and its prompts, tool calls and answers are recorded and audited. A failing
model falls back to the deterministic planner."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent import planners
from agent.models import AgentRun
from audit.models import AuditEntry
from booking.hotels import hotels_seed_demo
from nexa.platform.roles import Role
from tests.policies.factories import active_policy
from tests.review.factories import item_with_subcases_in_review

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "test-model-key"
GHOST_HOTEL = "urn:nexa:hotel:0190a0a0-0000-7000-8000-00000000dead"


class ModelSimulator:
    """Scripted model: first it asks for tools (one of them forbidden), then it answers, naming the first
    compliant hotel the search returned and a hotel the search never returned."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail_with: int | None = None
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                simulator.requests.append({"auth": self.headers.get("Authorization"), "body": body})
                if simulator.fail_with:
                    self.send_response(simulator.fail_with)
                    self.end_headers()
                    return
                answer = json.dumps({"choices": [{"message": simulator.answer(body["messages"])}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"

    def answer(self, messages: list[dict]) -> dict:
        replies = {m["tool_call_id"]: json.loads(m["content"]) for m in messages if m["role"] == "tool"}
        if not replies:
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "classify_failure", "arguments": "{}"}},
                    {"id": "c2", "type": "function",
                     "function": {"name": "search_hotels", "arguments": json.dumps({"scope": "inside"})}},
                    {"id": "c3", "type": "function",
                     "function": {"name": "book_hotel", "arguments": json.dumps({"hotelUrn": GHOST_HOTEL})}},
                ],
            }  # fmt: skip
        compliant = next(o for o in replies["c2"]["offers"] if o["policyCompliant"] and o["hotelUrn"])
        final = {
            "classification": {"cause": "no-availability", "confidence": 0.8},
            "recommendations": [
                {"action": "rebook", "hotelUrn": GHOST_HOTEL, "reason": "a hotel I imagined"},
                {"action": "rebook", "hotelUrn": compliant["hotelUrn"], "reason": "the nearest compliant hotel"},
            ],
        }
        return {"role": "assistant", "content": json.dumps(final)}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def model(simulator_control, settings):
    settings.NEXA_HOTEL_VENDORS = ["stayhub", "globerooms", "nightbed"]
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules={"maxDistanceKm": 4})
    with ModelSimulator() as simulator:
        settings.NEXA_AGENT_MODEL_URL = simulator.url
        settings.NEXA_AGENT_MODEL_KEY = KEY
        settings.NEXA_AGENT_MODEL_NAME = "sim-1"
        yield simulator


def triage(client_for, item):
    return client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ana").post(
        "/v1/agent/triage", {"reviewUrn": item.urn}, format="json"
    )


def test_without_a_model_key_the_planner_is_deterministic():
    assert isinstance(planners.planner(), planners.DeterministicPlanner)


def test_the_model_plans_through_the_allow_list_and_a_forbidden_tool_is_refused_and_audited(model, client_for):
    item = item_with_subcases_in_review()
    assert isinstance(planners.planner(), planners.HostedPlanner)
    response = triage(client_for, item)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["classification"] == {"cause": "no-availability", "confidence": 0.8}
    # Only the grounded recommendation survives: the imagined hotel is dropped.
    (rec,) = body["recommendations"]
    assert rec["action"] == "rebook" and rec["hotelUrn"] != GHOST_HOTEL
    assert rec["reason"].startswith("the nearest compliant hotel") and rec["compliance"] == "policy-compliant"
    assert len(body["proposals"]) == 1

    # The model spoke our contract: bearer key, the allow-listed tools, and our refusal as the tool's answer.
    first, second = model.requests
    assert first["auth"] == f"Bearer {KEY}" and first["body"]["model"] == "sim-1"
    assert sorted(t["function"]["name"] for t in first["body"]["tools"]) == [
        "classify_failure", "relaxation_cost", "search_hotels"
    ]  # fmt: skip
    refusal = next(m for m in second["body"]["messages"] if m.get("tool_call_id") == "c3")
    assert json.loads(refusal["content"])["error"] == "tool-refused"

    run = AgentRun.objects.get(item=item)
    assert run.planner == "hosted:sim-1" and run.error == ""
    assert [c["tool"] for c in run.tool_calls] == ["classify_failure", "search_hotels"]
    assert run.refusals == [{"tool": "book_hotel", "arguments": {"hotelUrn": GHOST_HOTEL}}]
    refused = AuditEntry.objects.get(action="agent.tool_refused")
    assert (refused.entity_urn, refused.after["tool"]) == (item.urn, "book_hotel")
    exchange = AuditEntry.objects.get(action="agent.model_exchanged", entity_urn=item.urn)
    roles = [m["role"] for m in exchange.after["transcript"]]
    assert roles[:3] == ["system", "user", "assistant"] and roles.count("tool") == 3 and roles[-1] == "assistant"
    assert AuditEntry.objects.get(action="agent.triaged").after["refusedTools"] == ["book_hotel"]


def test_a_failing_model_falls_back_to_the_deterministic_planner(model, client_for):
    model.fail_with = 500
    item = item_with_subcases_in_review()
    response = triage(client_for, item)
    assert response.status_code == 200, response.content
    assert len(response.json()["recommendations"]) == 3
    run = AgentRun.objects.get(item=item)
    assert run.planner == "hosted:sim-1" and "500" in run.error
    assert AuditEntry.objects.get(action="agent.model_exchanged").after["error"] == run.error
