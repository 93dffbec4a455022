"""The console live (issue 14): the dashboard follows ``case:updated`` without a reload, and two operators on
one case see each other's locks (spec 000 § Lock state in the UI) over the presence channel.

Two browsers are two browser contexts of headless Debian Chromium (two cookie jars: two signed-in users),
each page with its own socket.io-client connection to /ws/cases on the live uvicorn; the channel layer is the
tests' real Redis. While the browsers are open, the other actors (a supervisor, a second operator) act through
the live server's HTTP API with dev-issued tokens: real clients, no ORM in the browser's thread."""

import httpx
import pytest
from playwright.sync_api import expect

from cases.models import SubCaseStatus
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.e2e.conftest import operator_urn, screenshot, sign_in, wait_live

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_sessions_closed")]

# "Within a fraction of a second" (issue 14): Playwright waits for the 🔒 at most this long.
LOCK_SEEN_WITHIN_MS = 1_000
# The lock's release on disconnect has a 200 ms budget (ARCHITECTURE §4); the page close itself takes time.
RELEASE_SEEN_WITHIN_MS = 2_000


@pytest.fixture
def night_case(console_users):
    case = CaseFactory(airline="IB", airport="MAD", flight_number="IB6251")
    passengers = [
        SubCaseFactory(case=case, first_name=f"Luz{n}", last_name="Martin", status=SubCaseStatus.PENDING)
        for n in range(12)
    ]
    return case, passengers


def api(base_url: str, token_for, username: str, role: Role) -> httpx.Client:
    token = token_for("IB", role, operator_urn(username))
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def two_operators_watching(base: str, console_users, case, browser_pages):
    """Ana (A) and Bruno (B), each in their own browser context, on the case screen with its room subscribed."""
    pages = []
    for key in ("operator", "operator2"):
        page = browser_pages.new_page()
        sign_in(page, base, console_users[key], next_path=f"/console/cases/{case.urn}")
        wait_live(page)
        pages.append(page)
    return pages


def test_the_dashboard_follows_case_updates_without_reload(
    console_server, console_users, night_case, token_for, browser_pages
):
    case, passengers = night_case
    base = console_server.base_url
    page = browser_pages.new_page()
    sign_in(page, base, console_users["operator"])
    wait_live(page)
    counts = page.locator(f'tr[data-case="{case.urn}"] td.counts')
    expect(counts.locator('[data-status="PENDING"] b')).to_have_text("12")
    expect(counts.locator('[data-status="GROUPED"]')).to_have_count(0)
    marker = page.evaluate("window.nexaPageMarker = 'not reloaded'")  # noqa: F841 - set on this page

    with api(base, token_for, console_users["supervisor"], Role.OPS_SUPERVISOR) as supervisor:
        answer = supervisor.post(
            f"/v1/subcases/{passengers[0].urn}/transition",
            json={"transition": "mark_grouped", "version": passengers[0].version, "reason": "family of one"},
        )
        assert answer.status_code == 200, answer.text

    expect(counts.locator('[data-status="GROUPED"] b')).to_have_text("1")
    expect(counts.locator('[data-status="PENDING"] b')).to_have_text("11")
    assert page.evaluate("window.nexaPageMarker") == "not reloaded"
    assert browser_pages.problems == []


def test_b_sees_as_lock_live_and_sees_it_vanish_when_a_closes_the_page(
    console_server, console_users, night_case, browser_pages
):
    _, passengers = night_case
    page_a, page_b = two_operators_watching(console_server.base_url, console_users, night_case[0], browser_pages)
    target = passengers[3].urn
    row_b = page_b.locator(f'#manifest-rows tr[data-urn="{target}"]')
    expect(row_b.get_by_test_id("lock")).to_have_text("")

    # A opens the passenger to edit: A's page holds the lock and its fencing token.
    page_a.locator(f'#manifest-rows tr[data-urn="{target}"] button.edit').click()
    editor = page_a.get_by_test_id("editor")
    expect(editor).to_contain_text("You hold this passenger's lock.")
    assert int(editor.locator(".editor").get_attribute("data-fencing-token")) >= 1

    # B, watching the case, sees the 🔒 with A's name on that row, pushed (no reload, no poll).
    expect(row_b.get_by_test_id("lock")).to_have_text("🔒 Ana Operadora", timeout=LOCK_SEEN_WITHIN_MS)
    expect(row_b.locator("button.edit")).to_be_hidden()
    screenshot(page_b, "case-locked-by-another")

    # A closes its page: A's last socket drops, the server frees A's locks, B's 🔒 vanishes.
    page_a.close()
    expect(row_b.get_by_test_id("lock")).to_have_text("", timeout=RELEASE_SEEN_WITHIN_MS)
    expect(row_b.locator("button.edit")).to_be_visible()
    assert browser_pages.problems == []


def test_a_release_clears_the_lock_for_the_watcher(console_server, console_users, night_case, browser_pages):
    _, passengers = night_case
    page_a, page_b = two_operators_watching(console_server.base_url, console_users, night_case[0], browser_pages)
    target = passengers[5].urn
    row_b = page_b.locator(f'#manifest-rows tr[data-urn="{target}"]')
    page_a.locator(f'#manifest-rows tr[data-urn="{target}"] button.edit').click()
    expect(row_b.get_by_test_id("lock")).to_have_text("🔒 Ana Operadora", timeout=LOCK_SEEN_WITHIN_MS)

    # A saves a move with its fencing token: B sees the new status; then A releases and B's 🔒 goes.
    page_a.select_option("#transition", "mark_grouped")
    page_a.fill("#reason", "travels alone")
    page_a.click("#save")
    expect(page_a.get_by_test_id("editor")).to_contain_text("Saved.")
    expect(row_b.locator("td.status")).to_have_text("GROUPED")
    page_a.click("#release")
    expect(page_a.get_by_test_id("editor")).to_contain_text("Released")
    expect(row_b.get_by_test_id("lock")).to_have_text("", timeout=LOCK_SEEN_WITHIN_MS)
    assert browser_pages.problems == []


def test_a_stale_write_shows_who_holds_the_lock_and_offers_to_reload(
    console_server, console_users, night_case, token_for, browser_pages
):
    case, passengers = night_case
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)  # the refused write answers 409, on purpose
    sign_in(page, base, console_users["operator"], next_path=f"/console/cases/{case.urn}")
    wait_live(page)
    target = passengers[7]
    row = page.locator(f'#manifest-rows tr[data-urn="{target.urn}"]')
    row.locator("button.edit").click()
    expect(page.get_by_test_id("editor")).to_contain_text("You hold this passenger's lock.")

    # Behind A's back a supervisor force-unlocks the passenger and Bruno takes the lock.
    with api(base, token_for, console_users["supervisor"], Role.OPS_SUPERVISOR) as supervisor:
        answer = supervisor.post(f"/v1/subcases/{target.urn}/force-unlock", json={"reason": "A went home"})
        assert answer.status_code == 200, answer.text
    with api(base, token_for, console_users["operator2"], Role.AIRPORT_OPERATOR) as bruno:
        answer = bruno.post(f"/v1/subcases/{target.urn}/lock")
        assert answer.status_code == 200, answer.text
    # A's own page shows the new holder on the row, and warns in the open editor, live.
    expect(row.get_by_test_id("lock")).to_have_text("🔒 Bruno Operador")
    expect(page.get_by_test_id("lock-lost")).to_contain_text("Bruno Operador holds this passenger now")

    # A saves with its old fencing token: refused, never a silent overwrite; the page says who and offers a reload.
    page.select_option("#transition", "mark_grouped")
    page.click("#save")
    problem = page.get_by_test_id("problem")
    expect(problem).to_contain_text("Locked by Bruno Operador")
    expect(problem).to_contain_text("urn:nexa:correlation:")
    expect(problem.get_by_test_id("reload")).to_be_visible()
    assert problem.get_attribute("data-status") == "409"
    screenshot(page, "case-conflict")
    problem.get_by_test_id("reload").click()
    page.wait_for_load_state("load")
    expect(page.locator(f'#manifest-rows tr[data-urn="{target.urn}"] td.status')).to_have_text("PENDING")


@pytest.fixture
def grouped_case(console_users):
    """A case whose four passengers are grouped (two families) and not yet in any demand wave."""
    case = CaseFactory(airline="IB", airport="MAD", flight_number="IB0431")
    families = [PassengerGroupFactory(case=case, label=label) for label in ("GRP-1", "GRP-2")]
    for n in range(4):
        SubCaseFactory(case=case, first_name=f"Sol{n}", group=families[n % 2], status=SubCaseStatus.GROUPED)
    return case


def test_an_operator_asks_for_rooms_and_the_supervisor_approves_live(
    console_server, console_users, grouped_case, browser_pages
):
    base = console_server.base_url
    case_path = f"/console/cases/{grouped_case.urn}"
    operator = browser_pages.new_page(expect_errors=True)  # the refused request answers 400, on purpose
    supervisor = browser_pages.new_page()
    sign_in(operator, base, console_users["operator"], next_path=case_path)
    sign_in(supervisor, base, console_users["supervisor"], next_path=case_path)
    wait_live(operator)
    wait_live(supervisor)
    expect(supervisor.get_by_test_id("waves")).to_contain_text("No wave is waiting.")

    # The operator asks for rooms for every grouped passenger (POST /v1/demand/case/{urn}'s validation and service).
    operator.click("summary:has-text('Ask for rooms')")
    operator.evaluate("document.getElementById('demand-form').noValidate = true")  # let the server judge
    operator.fill("#demand-nights", "40")
    operator.fill("#demand-reason", "Cancelled, last connection gone")
    operator.click("#demand-submit")
    # The API's validation, shown field by field: nights is 1..14. Nothing was asked for.
    expect(operator.get_by_test_id("problem")).to_contain_text("nights")
    operator.fill("#demand-nights", "1")
    operator.click("#demand-submit")
    expect(operator.locator("#waves-note")).to_have_text("Rooms asked for.")
    expect(operator.get_by_test_id("waves")).to_contain_text("4 people")
    expect(operator.locator("button.approve")).to_have_count(0)  # operators do not approve

    # The supervisor's page shows the new wave without a reload (case:updated), and approves it.
    wave = supervisor.locator("li.wave")
    expect(wave).to_contain_text("PENDING_APPROVAL")
    wave.locator("button.approve").click()
    expect(supervisor.locator("#waves-note")).to_have_text("INITIAL wave of 4 people: APPROVED.")
    # ... and the wave leaves the operator's list of waves waiting, live.
    expect(operator.get_by_test_id("waves")).to_contain_text("No wave is waiting.")
    assert browser_pages.problems == []
