"""The console's review item page in a real browser (issue 14): a MIXED_TIER_GROUP item worked from claim to
resolve, the exception agent asked, its split proposal approved (quoting the plan hash the page showed) and
executed by the approver; a second supervisor (in Spanish) refused with a message naming the claimer; roles
below OPS_SUPERVISOR offered nothing and refused by the server.

Every action calls the same review/agent service its API route calls, so the checks after the browser closed
read the item, the proposal and the audit trail the services wrote."""

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from playwright.sync_api import expect

from agent.models import AgentAction, AgentActionState
from audit.models import AuditEntry
from cases.models import SubCase, SubCaseStatus, Tier
from nexa.console.models import ConsolePreference
from nexa.platform.roles import Role
from nexa.platform.urns import parse_urn
from operators.models import Operator
from review.models import ReviewCategory, ReviewItem, ReviewPriority, ReviewResolution, ReviewState
from tests.agent.factories import proposal
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.e2e.conftest import CONSOLE_PASSWORD, operator_urn, screenshot, sign_in
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_sessions_closed")]


@pytest.fixture
def second_supervisor(console_users) -> str:
    """Another IB supervisor, who reads the console in Spanish."""
    username = "ib-supervisor2-e2e"
    user = get_user_model().objects.create_user(username=username, password=CONSOLE_PASSWORD)
    Operator.objects.create(
        operator_urn=operator_urn(username),
        airline="IB",
        role=Role.OPS_SUPERVISOR.value,
        display_name="Federico Supervisor",
        user=user,
    )
    ConsolePreference.objects.create(user=user, language="es")
    return username


@pytest.fixture
def mixed_tier_item(console_users) -> ReviewItem:
    """IB3190 at MAD: a group of an ECONOMY and a BUSINESS passenger the allocation could not place together
    (its passengers in MANUAL_REVIEW), and the MIXED_TIER_GROUP item naming them, as the allocation's
    review consumer opens it, with one hotel it tried."""
    case = CaseFactory(airline="IB", airport="MAD", flight_number="IB3190")
    group = PassengerGroupFactory(case=case, label="GRP-7")
    subs = [
        SubCaseFactory(case=case, group=group, tier=tier, first_name=name, last_name="Ruiz",
                       status=SubCaseStatus.MANUAL_REVIEW)
        for tier, name in ((Tier.ECONOMY, "Lucia"), (Tier.BUSINESS, "Mateo"))
    ]  # fmt: skip
    return ReviewItemFactory(
        case=case,
        category=ReviewCategory.MIXED_TIER_GROUP,
        priority=ReviewPriority.MEDIUM,
        reason="GRP-7 spans ECONOMY and BUSINESS: no single policy applies",
        attempted_hotels=[
            {
                "hotelUrn": "urn:nexa:hotel:0190a0a0-0000-7000-8000-000000000001",
                "reason": "mixed-tier",
                "providerError": "no tier policy for the whole group",
            },
        ],
        affected_groups=[group.label],
        affected_group_urns=[group.urn],
        affected_subcase_urns=[sub.urn for sub in subs],
    )


def test_a_review_item_from_claim_to_resolve_with_an_agent_proposal(
    console_server, console_users, second_supervisor, mixed_tier_item, browser_pages
):
    base = console_server.base_url
    item_urn = mixed_tier_item.urn
    carmen = browser_pages.new_page()
    sign_in(carmen, base, console_users["supervisor"], next_path="/console/review")
    carmen.get_by_test_id("open-item").first.click()
    carmen.wait_for_url(f"{base}/console/review/{item_urn}")
    expect(carmen.get_by_test_id("category")).to_have_text("MIXED_TIER_GROUP")
    expect(carmen.get_by_test_id("attempted-hotels")).to_contain_text("no tier policy for the whole group")
    expect(carmen.get_by_test_id("passengers").locator("tbody tr")).to_have_count(2)
    expect(carmen.get_by_test_id("state")).to_have_text("OPEN")

    carmen.click("#claim")
    expect(carmen.get_by_test_id("state")).to_have_text("CLAIMED")
    expect(carmen.get_by_test_id("holder")).to_contain_text("you")

    # A second supervisor, in Spanish, tries to claim it: a 409 naming Carmen, with a reload.
    federico = browser_pages.new_page(expect_errors=True)
    sign_in(federico, base, second_supervisor, next_path=f"/console/review/{item_urn}")
    expect(federico.get_by_test_id("holder")).to_contain_text("Carmen Supervisora")
    expect(federico.locator("#ask-agent")).to_have_text("Pedir al agente")
    federico.click("#claim")
    message = federico.locator("#review-message")
    expect(message.get_by_test_id("problem")).to_have_attribute("data-status", "409")
    expect(message.get_by_test_id("problem-holder")).to_contain_text("Carmen Supervisora tiene este elemento")
    expect(message.get_by_test_id("reload")).to_have_text("Recargar")
    expect(message.locator(".correlation code")).to_contain_text("urn:nexa:correlation:")
    screenshot(federico, "review-item-claimed-by-another")
    federico.close()

    # Carmen asks the agent: its first proposal splits the group by tier.
    carmen.click("#ask-agent")
    split = carmen.locator('[data-proposal][data-action="split"]')
    expect(split).to_have_attribute("data-state", "PROPOSED")
    expect(split).to_contain_text("split by tier")
    split.get_by_test_id("approve").click()
    expect(split).to_have_attribute("data-state", "APPROVED")
    expect(carmen.get_by_test_id("review-note")).to_contain_text("approved")
    carmen.evaluate("window.scrollTo(0, 0)")
    screenshot(carmen, "review-item")
    split.scroll_into_view_if_needed()
    screenshot(carmen, "review-item-agent")
    split.get_by_test_id("execute").click()
    expect(split).to_have_attribute("data-state", "EXECUTED")
    history = carmen.get_by_test_id("history").locator("tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("split")
    expect(history.first).to_contain_text("agent proposal")

    carmen.select_option("#resolution", "SPLIT")
    carmen.fill("#resolve-reason", "one group per tier; new demand for each")
    carmen.click("#resolve")
    expect(carmen.get_by_test_id("state")).to_have_text("RESOLVED")
    expect(carmen.get_by_test_id("review-actions")).to_have_count(0)
    expect(carmen.locator("#ask-agent")).to_have_count(0)
    # The queue holds unresolved items only: it is empty now.
    carmen.click("#nav-review")
    expect(carmen.get_by_test_id("review-queue").locator("tbody tr")).to_have_count(1)
    expect(carmen.get_by_test_id("review-queue")).to_contain_text("Nothing waits for review.")
    assert browser_pages.problems == []
    carmen.close()
    assert _in_thread(lambda: _written(item_urn, operator_urn(console_users["supervisor"]))) is None


def _in_thread(work):
    """Run ORM reads off this thread: Playwright's loop runs in it while the browser fixture is open."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_closing(work)).result()


def _closing(work):
    def run():
        try:
            return work()
        finally:
            connection.close()

    return run


def _written(item_urn: str, carmen: str) -> None:
    """What the page did is what the services recorded: the proposal executed by its approver, the item
    resolved by Carmen, the group split by tier and its passengers back to GROUPED for a new demand."""
    item = ReviewItem.objects.get(pk=parse_urn(item_urn, "review").id)
    assert (item.state, item.resolution, item.resolved_by) == (ReviewState.RESOLVED, ReviewResolution.SPLIT, carmen)
    action = AgentAction.objects.get(item=item, action="split")
    assert (action.state, action.approved_by, action.executed_by) == (AgentActionState.EXECUTED, carmen, carmen)
    assert item.accepted_agent_action_urn == action.urn
    passengers = SubCase.objects.filter(case=item.case)
    assert {p.status for p in passengers} == {SubCaseStatus.GROUPED}
    assert len({p.group_id for p in passengers}) == 2
    assert set(
        AuditEntry.objects.filter(entity_urn__in=[item.urn, action.urn], actor=carmen).values_list("action", flat=True)
    ) >= {"review.claimed", "agent.triaged", "agent.action_approved", "agent.action_executed", "review.split",
          "review.resolved"}  # fmt: skip


@pytest.mark.parametrize("who", ["finance", "operator"])
def test_below_ops_supervisor_sees_no_action_and_the_server_refuses(
    who, console_server, console_users, mixed_tier_item, browser_pages
):
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users[who])
    response = page.goto(f"{base}/console/review/{mixed_tier_item.urn}")
    assert response.status == 403
    expect(page.get_by_test_id("problem")).to_contain_text("OPS_SUPERVISOR")
    for control in ("#claim", "#ask-agent", "#resolve", '[data-testid="approve"]'):
        expect(page.locator(control)).to_have_count(0)
    # Forced anyway (the page's own CSRF token, the form's URL): refused, nothing changes.
    token = page.evaluate("document.body.getAttribute('hx-headers')")
    refused = page.request.post(
        f"{base}/console/review/{mixed_tier_item.urn}/claim",
        headers={"X-CSRFToken": json.loads(token)["X-CSRFToken"], "HX-Request": "true"},
    )
    assert refused.status == 403


# --- the server side of the page's forms, without a browser (Django's test client) ----------------------


def _signed_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _post(client: Client, path: str, data: dict | None = None):
    return client.post(path, data or {}, headers={"HX-Request": "true"})


def test_a_plan_hash_other_than_the_one_shown_is_a_readable_409(console_users, mixed_tier_item):
    action = proposal(
        mixed_tier_item, action="split", params={"into": [[u] for u in mixed_tier_item.affected_subcase_urns]}
    )
    answer = _post(
        _signed_in(console_users["supervisor"]), f"/console/agent/{action.urn}/approve", {"plan_hash": "0" * 64}
    )
    assert answer.status_code == 409
    assert answer["HX-Retarget"] == "#review-message"
    page = answer.content.decode()
    assert "ask the agent again" in page and 'data-testid="reload"' in page and "urn:nexa:correlation:" in page
    action.refresh_from_db()
    assert action.state == AgentActionState.PROPOSED


def test_an_expired_proposal_says_so(console_users, mixed_tier_item):
    action = proposal(mixed_tier_item, expires_in=dt.timedelta(minutes=-1))
    answer = _post(
        _signed_in(console_users["supervisor"]), f"/console/agent/{action.urn}/approve", {"plan_hash": action.plan_hash}
    )
    assert answer.status_code == 409
    assert "It is EXPIRED now." in answer.content.decode()


def test_only_the_approver_executes_and_the_page_names_them(console_users, second_supervisor, mixed_tier_item):
    action = proposal(mixed_tier_item, state=AgentActionState.APPROVED, approved_by=operator_urn(second_supervisor))
    answer = _post(_signed_in(console_users["supervisor"]), f"/console/agent/{action.urn}/execute")
    assert answer.status_code == 403
    assert "Approved by Federico Supervisor: only they may execute it." in answer.content.decode()
    action.refresh_from_db()
    assert action.state == AgentActionState.APPROVED


def test_the_split_form_is_the_api_into_and_checked_by_the_api_serializer(console_users, mixed_tier_item):
    client = _signed_in(console_users["supervisor"])
    economy, business = mixed_tier_item.affected_subcase_urns
    path = f"/console/review/{mixed_tier_item.urn}/split"
    refused = _post(client, path, {f"group:{economy}": "1", f"group:{business}": "1", "reason": "one group"})
    assert refused.status_code == 422 and "into" in refused.content.decode()
    done = _post(client, path, {f"group:{economy}": "1", f"group:{business}": "2", "reason": "one per tier"})
    assert done.status_code == 200, done.content
    item = ReviewItem.objects.get(pk=mixed_tier_item.pk)
    assert item.actions[-1]["params"] == {"into": [[economy], [business]]}
    assert item.assigned_to == operator_urn(console_users["supervisor"])


def test_another_airlines_item_is_a_404(console_users):
    other = ReviewItemFactory(case=CaseFactory(airline="UX"))
    client = _signed_in(console_users["supervisor"])
    assert client.get(f"/console/review/{other.urn}").status_code == 404
    assert _post(client, f"/console/review/{other.urn}/claim").status_code == 404
    assert client.get("/console/review/urn:nexa:review:nope").status_code == 404
    assert _post(client, "/console/agent/nope/approve", {"plan_hash": "0" * 64}).status_code == 404


def test_a_bad_field_is_named_as_the_api_names_it(console_users, mixed_tier_item):
    client = _signed_in(console_users["supervisor"])
    answer = _post(client, f"/console/review/{mixed_tier_item.urn}/rebook", {"hotel_urn": "not-a-urn", "reason": ""})
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "<code>hotelUrn</code>" in page and "<code>reason</code>" in page
    answer = _post(client, f"/console/review/{mixed_tier_item.urn}/relax", {"rule": "maxDistanceKm", "value": "2"})
    assert answer.status_code == 400 and "<code>reason</code>" in answer.content.decode()
    assert ReviewItem.objects.get(pk=mixed_tier_item.pk).state == ReviewState.OPEN
