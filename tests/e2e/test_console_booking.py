"""The case screen's booking flow in a real browser (issue 14 "work a case from demand to vouchers"): a
supervisor (in Spanish) asks for rooms, approves the wave, allocates it and books the rooms; the room sagas run
on a REAL Celery worker against the hotel and PSP simulators, and the timelines, the manifest and the
reservations fill live from the presence channel's events — in the supervisor's browser and in an airport
operator's, who is offered neither Allocate nor Book rooms. Then the printable voucher opens in a new tab.

The allocation is the real engine (policies, the demo hotel catalog, the hotel vendors' simulators)."""

import pytest
from playwright.sync_api import expect

from booking.hotels import hotels_seed_demo
from cases.models import SubCaseStatus
from nexa.console.models import ConsolePreference
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.cases.test_allocation import GENEROUS_RULES
from tests.e2e.conftest import screenshot, sign_in, wait_live
from tests.policies.factories import active_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_sessions_closed")]

# The room saga's steps (cases/saga/hotel.py), in the order the timeline shows them.
ROOM_STEPS = ["hotel.hold", "hotel.pay", "hotel.confirm", "hotel.voucher", "hotel.notify"]
# Long enough for a cold worker to run two room sagas (holds, payments, confirmations, notices) end to end.
SAGA_TIMEOUT_MS = 90_000


@pytest.fixture
def grouped_case(console_users):
    """IB0612 at MAD, cancelled: two families of two, grouped and in no wave yet; the demo hotels and a
    generous active policy; the supervisor reads the console in Spanish."""
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules=dict(GENEROUS_RULES))
    case = CaseFactory(airline="IB", airport="MAD", flight_number="IB0612")
    families = [PassengerGroupFactory(case=case, label=label) for label in ("FAM-GARCIA", "FAM-ROSSI")]
    sub_cases = [
        SubCaseFactory(
            case=case,
            first_name=first,
            last_name=family.label.split("-")[1].title(),
            group=family,
            status=SubCaseStatus.GROUPED,
            language="es",
        )
        for family in families
        for first in ("Lucia", "Mateo")
    ]
    user = ConsolePreference._meta.get_field("user").related_model.objects.get(username=console_users["supervisor"])
    ConsolePreference.objects.create(user=user, language="es")
    return case, sub_cases


def test_a_case_from_demand_to_printed_vouchers_live(
    console_server, console_users, grouped_case, simulator_control, celery_worker_process, browser_pages
):
    case, sub_cases = grouped_case
    base = console_server.base_url
    case_path = f"/console/cases/{case.urn}"
    supervisor = browser_pages.new_page()
    operator = browser_pages.new_page()
    sign_in(supervisor, base, console_users["supervisor"], next_path=case_path)
    sign_in(operator, base, console_users["operator"], next_path=case_path)
    wait_live(supervisor)
    wait_live(operator)
    booking = supervisor.get_by_test_id("booking")
    expect(supervisor.locator("#h-booking")).to_have_text("Habitaciones y bonos")
    expect(booking).to_contain_text("Ninguna oleada aprobada espera asignación.")

    # Ask for rooms for every grouped passenger, then approve the wave.
    supervisor.click("summary:has-text('Pedir habitaciones')")
    supervisor.fill("#demand-reason", "Vuelo cancelado, tripulación fuera de horas")
    supervisor.click("#demand-submit")
    supervisor.locator("li.wave button.approve").click()
    expect(supervisor.locator("#waves-note")).to_contain_text("APPROVED")

    # The approved wave is offered for allocation (supervisors only): the real engine places both families.
    wave = booking.locator("li.wave")
    expect(wave).to_contain_text("4 personas")
    expect(operator.get_by_test_id("booking").locator("li.wave")).to_contain_text("4 people")  # live, no reload
    expect(operator.locator("button.allocate")).to_have_count(0)
    wave.locator("button.allocate").click()
    expect(supervisor.locator("#booking-note")).to_have_text(
        "Asignado: 4 pasajeros con habitación, 0 grupos sin colocar."
    )
    plan = booking.locator("article.plan")
    expect(plan).to_have_attribute("data-status", "PLANNED")
    rows = plan.locator("tbody tr")
    expect(rows).to_have_count(2)
    for family, names in (("FAM-GARCIA", "Lucia Garcia"), ("FAM-ROSSI", "Lucia Rossi")):
        row = rows.filter(has_text=family)
        expect(row).to_contain_text(names)
        expect(row.locator("td.hotel")).not_to_be_empty()
        expect(row.locator("td.why")).not_to_be_empty()
    expect(supervisor.locator(f'#manifest-rows tr[data-urn="{sub_cases[0].urn}"] td.status')).to_have_text("ALLOCATED")
    # The operator's screen shows the plan too, live, without a Book rooms button.
    expect(operator.get_by_test_id("booking").locator("article.plan")).to_have_attribute("data-status", "PLANNED")
    expect(operator.locator("button.book-rooms")).to_have_count(0)
    booking.scroll_into_view_if_needed()
    screenshot(supervisor, "case-allocation")

    # Book rooms: one room saga per family; their timelines fill from graph:step:* as the worker runs them.
    plan.locator("button.book-rooms").click()
    expect(supervisor.locator("#booking-note")).to_have_text("Reservando: 2 sagas de habitación en marcha.")
    runs = booking.locator("li.run")
    expect(runs).to_have_count(2)
    expect(runs.first.locator("li[data-step] .step-name")).to_have_text(ROOM_STEPS)
    for page in (supervisor, operator):
        for sub_case in sub_cases:
            expect(page.locator(f'#manifest-rows tr[data-urn="{sub_case.urn}"] td.status')).to_have_text(
                "NOTIFIED", timeout=SAGA_TIMEOUT_MS
            )
        steps = page.get_by_test_id("booking").locator("li.run li[data-step]")
        expect(steps).to_have_count(2 * len(ROOM_STEPS))
        for index in range(2 * len(ROOM_STEPS)):
            expect(steps.nth(index)).to_have_attribute("data-status", "COMPLETED", timeout=SAGA_TIMEOUT_MS)
    expect(supervisor.locator('#case-counts [data-status="NOTIFIED"] b')).to_have_text("4")

    # The reservations, each with a printable voucher opening in a new tab.
    reservations = booking.get_by_test_id("reservations").locator("tbody tr")
    expect(reservations).to_have_count(2)
    expect(reservations.first.locator("td.status")).to_have_text("CONFIRMED")
    booking.scroll_into_view_if_needed()
    screenshot(supervisor, "case-booking")
    garcia = reservations.filter(has_text="Lucia Garcia")
    with supervisor.expect_popup() as popup:
        garcia.locator("a.voucher").click()
    voucher = popup.value
    voucher.wait_for_load_state()
    expect(voucher.locator("body")).to_contain_text("Lucia Garcia")
    expect(voucher.locator("body")).to_contain_text("Confirmación")  # the guests' language (es)
    screenshot(voucher, "voucher")
    assert browser_pages.problems == [], celery_worker_process.log_tail()


def test_the_server_refuses_an_operator_forcing_allocate(console_server, console_users, grouped_case, browser_pages):
    case, _ = grouped_case
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["operator"], next_path=f"/console/cases/{case.urn}")
    csrf = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    answer = page.request.post(
        f"{base}/console/cases/{case.urn}/allocate",
        headers={"X-CSRFToken": csrf, "HX-Request": "true"},
        form={"demand": "urn:nexa:demand:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"},
    )
    assert answer.status == 403
    assert "OPS_SUPERVISOR" in answer.text() and "urn:nexa:correlation:" in answer.text()
