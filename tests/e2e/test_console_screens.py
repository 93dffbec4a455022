"""The operator console in a real browser (issue 14): sign-in per role, what each role is offered, the
tenant wall, the Spanish UI and the case screen's manifest, groups and demand approval.

Headless Debian Chromium driven by Playwright against a live uvicorn (``console_server``) with the real
channel layer; the screenshots in docs/console/ are taken here."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cases import services as case_services
from cases.models import DemandKind, SpecialNeed, SubCaseStatus, Tier
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from review.models import ReviewCategory, ReviewPriority
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.e2e.conftest import operator_urn, screenshot, sign_in, wait_live
from tests.review.factories import ReviewItemFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_sessions_closed")]

PASSENGERS = 300


@pytest.fixture
def disruption(console_users):
    """IB3190 at MAD, cancelled: 300 passengers (every tenth in BUSINESS, two with a wheelchair), two families
    grouped, and an INITIAL demand wave for them waiting for a supervisor."""
    case = CaseFactory(airline="IB", airport="MAD", flight_number="IB3190")
    families = [PassengerGroupFactory(case=case, label=label) for label in ("GRP-1", "GRP-2")]
    for n in range(PASSENGERS):
        grouped = n < 6
        SubCaseFactory(
            case=case,
            first_name=f"Pax{n:03d}",
            last_name="Lopez" if n else "Zamora",
            tier=Tier.BUSINESS if n % 10 == 0 else Tier.ECONOMY,
            special_needs=[SpecialNeed.WHEELCHAIR] if n in (7, 8) else [],
            group=families[n % 2] if grouped else None,
            status=SubCaseStatus.GROUPED if grouped else SubCaseStatus.PENDING,
        )
    supervisor = Principal(
        airline="IB",
        role=Role.OPS_SUPERVISOR,
        operator_urn=operator_urn(console_users["supervisor"]),
        subject="e2e",
    )
    wave = case_services.demand_request(
        principal=supervisor,
        case=case,
        kind=DemandKind.INITIAL,
        check_in=dt.date.today(),
        nights=1,
        reason="Flight cancelled, crew out of hours",
        group_ids=[family.pk for family in families],
    )
    # Two items in the review queue: one due in 15 minutes, one already past its SLA.
    ReviewItemFactory(case=case, priority=ReviewPriority.HIGH, sla_due_at=timezone.now() + dt.timedelta(minutes=15))
    ReviewItemFactory(
        case=case,
        category=ReviewCategory.PAYMENT_FAILED,
        priority=ReviewPriority.MEDIUM,
        sla_due_at=timezone.now() - dt.timedelta(minutes=5),
    )
    return case, wave


@pytest.fixture
def ux_case():
    return CaseFactory(airline="UX", airport="MAD", flight_number="UX1099")


def test_an_airport_operator_works_the_manifest_but_approves_nothing(
    console_server, console_users, disruption, browser_pages
):
    case, wave = disruption
    base = console_server.base_url
    page = browser_pages.new_page()
    page.goto(f"{base}/console/sign-in")
    screenshot(page, "sign-in")
    sign_in(page, base, console_users["operator"])
    wait_live(page)
    expect(page.get_by_test_id("who")).to_contain_text("Ana Operadora · IB · AIRPORT_OPERATOR")
    cases = page.get_by_test_id("open-cases")
    expect(cases).to_contain_text("IB3190")
    expect(cases.locator('[data-status="PENDING"] b')).to_have_text(str(PASSENGERS - 6))
    expect(cases.locator('[data-status="GROUPED"] b')).to_have_text("6")
    # The review queue is OPS_SUPERVISOR+ in the API: an operator's dashboard has no such section.
    expect(page.locator("#h-review")).to_have_count(0)
    expect(page.get_by_test_id("online")).to_contain_text("Ana Operadora")

    page.click("text=IB3190")
    page.wait_for_url(f"{base}/console/cases/{case.urn}")
    wait_live(page)
    header = page.get_by_test_id("case-header")
    expect(header).to_contain_text("IB3190 · MAD")
    expect(header).to_contain_text("CANCELLATION")
    rows = page.locator("#manifest-rows tr[data-urn]")
    expect(rows).to_have_count(PASSENGERS)
    # Operators see the wave but no approve/reject button (the server refuses it anyway: test below).
    expect(page.get_by_test_id("waves")).to_contain_text("PENDING_APPROVAL")
    expect(page.locator("button.approve")).to_have_count(0)
    screenshot(page, "case")

    # Filters go through the manifest selector (status, group) and narrow it (tier, needs).
    page.select_option("#filter-tier", "BUSINESS")
    expect(rows).to_have_count(PASSENGERS // 10)
    page.select_option("#filter-tier", "")
    page.select_option("#filter-need", "WHEELCHAIR")
    expect(rows).to_have_count(2)
    page.select_option("#filter-need", "")
    page.select_option("#filter-status", "GROUPED")
    expect(rows).to_have_count(6)
    page.select_option("#filter-group", label="GRP-1")
    expect(rows).to_have_count(3)
    page.select_option("#filter-status", "")
    page.select_option("#filter-group", "")
    expect(rows).to_have_count(PASSENGERS)

    # Keyboard: focus the first row, ↓ moves to the next, Enter opens it for editing (takes its lock).
    rows.first.focus()
    page.keyboard.press("ArrowDown")
    second = rows.nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("editor")).to_contain_text("You hold this passenger's lock.")
    expect(second.get_by_test_id("lock")).to_contain_text("you")

    # The server refuses an approval from this role even without the button.
    csrf = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    answer = page.request.post(f"{base}/console/demand/{wave.urn}/approve", headers={"X-CSRFToken": csrf})
    assert answer.status == 403
    assert browser_pages.problems == []


def test_a_supervisor_approves_a_demand_wave(console_server, console_users, disruption, browser_pages):
    case, wave = disruption
    base = console_server.base_url
    page = browser_pages.new_page()
    sign_in(page, base, console_users["supervisor"], next_path=f"/console/cases/{case.urn}")
    wait_live(page)
    row = page.locator(f'li.wave[data-demand="{wave.urn}"]')
    expect(row).to_contain_text("PENDING_APPROVAL")
    expect(row).to_contain_text("6 people")
    page.click("#h-demand")  # nothing to do with the wave: makes sure the screenshot shows the aside
    screenshot(page, "case-supervisor")
    row.locator("button.approve").click()
    expect(page.locator("#waves-note")).to_have_text("INITIAL wave of 6 people: APPROVED.")
    expect(row).to_have_count(0)  # no longer waiting for approval
    page.goto(f"{base}/console/")
    # The review queue by priority, each item with its SLA clock counting down (or past due, in red).
    high = page.locator('ul.review[data-priority="HIGH"] li')
    expect(high).to_contain_text("BOOKING_FAILED · IB3190")
    expect(high.locator("time[data-countdown]")).to_have_text(re.compile(r"^1[45]:\d\d$"))
    breached = page.locator('ul.review[data-priority="MEDIUM"] time.breached')
    expect(breached).to_have_text(re.compile(r"^\u22120[56]:\d\d$"))  # U+2212, the minus sign
    screenshot(page, "dashboard")
    assert browser_pages.problems == []


def test_finance_audit_reads_no_case_and_is_offered_nothing(console_server, console_users, disruption, browser_pages):
    case, _ = disruption
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["finance"])
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.locator("button.edit, button.approve")).to_have_count(0)
    # The case routes are AIRPORT_OPERATOR+ in the API; the console says so instead of showing the case.
    response = page.goto(f"{base}/console/cases/{case.urn}")
    assert response.status == 403
    expect(page.get_by_test_id("problem")).to_contain_text("FINANCE_AUDIT")
    expect(page.get_by_test_id("problem")).to_contain_text("urn:nexa:correlation:")


def test_another_airlines_case_is_not_found(console_server, console_users, ux_case, browser_pages):
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["operator"])
    response = page.goto(f"{base}/console/cases/{ux_case.urn}")
    assert response.status == 404
    expect(page.get_by_test_id("problem")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("UX1099")


def test_an_operator_switches_to_spanish_and_keeps_it(console_server, console_users, disruption, browser_pages):
    case, _ = disruption
    base = console_server.base_url
    page = browser_pages.new_page()
    sign_in(page, base, console_users["operator"])
    page.select_option("#language", "es")
    expect(page.locator("h1")).to_have_text("Panel")
    expect(page.locator("#h-cases")).to_have_text("Disrupciones abiertas")
    page.goto(f"{base}/console/cases/{case.urn}")
    expect(page.locator("#h-manifest")).to_have_text("Manifiesto")
    screenshot(page, "case-es")
    # Stored for the operator: a new session (sign out, sign in) is in Spanish too.
    page.click("#sign-out")
    page.wait_for_url("**/console/sign-in")
    sign_in(page, base, console_users["operator"])
    expect(page.locator("h1")).to_have_text("Panel")
    assert browser_pages.problems == []


def test_a_supervisor_reads_the_review_queue_by_sla(console_server, console_users, disruption, browser_pages):
    base = console_server.base_url
    page = browser_pages.new_page()
    sign_in(page, base, console_users["supervisor"])
    page.click("#nav-review")
    page.wait_for_url(f"{base}/console/review")
    rows = page.get_by_test_id("review-queue").locator("tbody tr")
    expect(rows).to_have_count(2)
    # The item past its SLA comes first (GET /v1/booking/manual-review's order), its clock negative and red.
    expect(rows.nth(0)).to_contain_text("PAYMENT_FAILED")
    expect(rows.nth(0).locator("time.breached")).to_have_text(re.compile(r"^\u22120[56]:\d\d$"))
    expect(rows.nth(1)).to_contain_text("BOOKING_FAILED")
    expect(rows.nth(1).locator("time[data-countdown]")).to_have_text(re.compile(r"^1[45]:\d\d$"))
    screenshot(page, "review-queue")
    page.select_option("#filter-priority", "HIGH")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("BOOKING_FAILED")
    assert browser_pages.problems == []


def test_an_operator_has_no_review_queue(console_server, console_users, browser_pages):
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["operator"])
    expect(page.locator("#nav-review")).to_have_count(0)
    response = page.goto(f"{base}/console/review")
    assert response.status == 403
    expect(page.get_by_test_id("problem")).to_contain_text("OPS_SUPERVISOR")


TABLET = {"width": 800, "height": 1280}


def test_the_case_screen_fits_a_tablet(console_server, console_users, disruption, browser_pages):
    case, _ = disruption
    base = console_server.base_url
    page = browser_pages.new_page(viewport=TABLET)
    sign_in(page, base, console_users["operator"], next_path=f"/console/cases/{case.urn}")
    wait_live(page)
    # Nothing is wider than the screen: the manifest scrolls inside its own box, the side panel goes below it.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    editor_box = page.get_by_test_id("editor").bounding_box()
    manifest_box = page.get_by_test_id("manifest").bounding_box()
    assert editor_box["y"] > manifest_box["y"]
    # Every passenger's Edit button can be reached with the keyboard alone.
    first = page.locator("#manifest-rows tr[data-urn]").first
    first.focus()
    page.keyboard.press("Tab")
    expect(first.locator("button.edit")).to_be_focused()
    # Opening it brings the editor (below the manifest here) into view, with the keyboard in it.
    page.keyboard.press("Enter")
    expect(page.locator("#transition")).to_be_focused()
    expect(page.get_by_test_id("editor")).to_be_in_viewport()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "case-tablet")
    assert browser_pages.problems == []
