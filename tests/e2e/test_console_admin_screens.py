"""The console's manifest upload, audit and policies screens in a real browser (issue 14).

Headless Debian Chromium driven by Playwright against a live uvicorn (``console_server``); the screenshots in
docs/console/ are taken here. Rows are made before the browser starts (conftest.py: the ORM cannot run while
Playwright's loop does); after that the tests look only through the browser."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from audit import services as audit_services
from cases.models import Tier
from nexa.console.models import ConsolePreference
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from operators.models import Operator
from policies import services as policy_services
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.e2e.conftest import CONSOLE_PASSWORD, operator_urn, screenshot, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("live_sessions_closed")]

HEADER = "firstName,lastName,pnr,tier,email,specialNeeds\n"


def _csrf(page) -> str:
    return next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")


def _csv_file(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


@pytest.fixture
def admin_user(console_users) -> str:
    username = "ib-admin-e2e"
    user = get_user_model().objects.create_user(username=username, password=CONSOLE_PASSWORD)
    Operator.objects.create(
        operator_urn=operator_urn(username), airline="IB", role=Role.ADMIN.value, display_name="Fede Admin", user=user
    )
    return username


@pytest.fixture
def small_case(console_users):
    case = CaseFactory(airline="IB", airport="MAD", flight_number="IB3456")
    for n in range(2):
        SubCaseFactory(case=case, first_name=f"Old{n}", last_name="Garcia", pnr=f"OLD00{n}", tier=Tier.ECONOMY)
    return case


# --- manifest upload -------------------------------------------------------------------------------------


def test_a_supervisor_uploads_a_manifest_csv_a_bad_row_refuses_the_file(
    console_server, console_users, small_case, browser_pages
):
    case = small_case
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["supervisor"], next_path=f"/console/cases/{case.urn}")
    rows = page.locator("#manifest-rows tr[data-urn]")
    expect(rows).to_have_count(2)
    expect(page.locator("#case-audit")).to_be_visible()

    # Row 2's e-mail is not an address and row 3 has no last name: the whole file is refused, each error named.
    bad = HEADER + (
        "Lucia,Perez,NEW001,BUSINESS,lucia@example.com,\n"
        "Mario,Ruiz,NEW002,ECONOMY,not-an-email,WHEELCHAIR\n"
        "Sofia,,NEW003,ECONOMY,sofia@example.com,\n"
    )
    page.set_input_files("#manifest-file", files=[_csv_file("bad.csv", bad)])
    page.click("#upload-submit")
    errors = page.get_by_test_id("upload-errors")
    expect(errors).to_be_visible()
    expect(errors.locator("tbody tr")).to_have_count(2)
    expect(errors.locator("tbody tr").nth(0)).to_contain_text("2")
    expect(errors.locator("tbody tr").nth(0)).to_contain_text("email")
    expect(errors.locator("tbody tr").nth(1)).to_contain_text("3")
    expect(errors.locator("tbody tr").nth(1)).to_contain_text("lastName")
    expect(page.get_by_test_id("upload-problem")).to_contain_text("urn:nexa:correlation:")
    errors.scroll_into_view_if_needed()
    screenshot(page, "manifest-upload-errors")
    # Nothing was imported: the manifest still has its two passengers, also after a reload.
    page.reload()
    expect(rows).to_have_count(2)

    good = HEADER + (
        "Lucia,Perez,NEW001,BUSINESS,lucia@example.com,\n"
        "Mario,Ruiz,NEW002,ECONOMY,mario@example.com,WHEELCHAIR\n"
        "Sofia,Diaz,NEW003,ECONOMY,sofia@example.com,\n"
    )
    page.set_input_files("#manifest-file", files=[_csv_file("good.csv", good)])
    page.click("#upload-submit")
    expect(page.get_by_test_id("upload-ok")).to_have_attribute("data-added", "3")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    # The manifest table refreshes by itself.
    expect(rows).to_have_count(5)
    expect(page.locator("#manifest-rows")).to_contain_text("Mario")
    screenshot(page, "manifest-upload")


def test_an_operator_is_offered_no_upload_and_the_server_refuses_it(
    console_server, console_users, small_case, browser_pages
):
    case = small_case
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["operator"], next_path=f"/console/cases/{case.urn}")
    expect(page.locator("#manifest-rows tr[data-urn]")).to_have_count(2)
    # POST /v1/cases/{urn}/manifest is OPS_SUPERVISOR+: no upload form for an airport operator …
    expect(page.locator("#manifest-upload")).to_have_count(0)
    expect(page.locator("#case-audit")).to_have_count(0)  # nor the audit (FINANCE_AUDIT or OPS_SUPERVISOR+)
    # … and the server refuses the upload anyway.
    answer = page.request.post(
        f"{base}/console/cases/{case.urn}/manifest/upload",
        headers={"X-CSRFToken": _csrf(page)},
        multipart={"file": _csv_file("m.csv", HEADER + "Lucia,Perez,NEW001,BUSINESS,lucia@example.com,\n")},
    )
    assert answer.status == 403
    page.reload()
    expect(page.locator("#manifest-rows tr[data-urn]")).to_have_count(2)


# --- audit -----------------------------------------------------------------------------------------------


@pytest.fixture
def audit_trail(console_users, small_case):
    case = small_case
    supervisor = Principal(
        airline="IB", role=Role.OPS_SUPERVISOR, operator_urn=operator_urn(console_users["supervisor"]), subject="e2e"
    )
    operator = Principal(
        airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn=operator_urn(console_users["operator"]), subject="e2e"
    )
    for sub_case in case.subcases.all():
        audit_services.record(
            principal=operator, action="subcase.locked", entity_urn=sub_case.urn, case_urn=case.urn, reason="editing"
        )
    audit_services.record(
        principal=supervisor,
        action="case.manifest_appended",
        entity_urn=case.urn,
        case_urn=case.urn,
        after={"added": 2, "skippedExisting": 0},
    )
    # Another airline's entry never shows.
    audit_services.record(
        airline="UX", actor="urn:nexa:user:ux-someone", action="subcase.locked", entity_urn="urn:nexa:case:ux"
    )
    return case


def test_finance_audit_filters_the_log_and_downloads_the_csv(console_server, console_users, audit_trail, browser_pages):
    base = console_server.base_url
    page = browser_pages.new_page()
    sign_in(page, base, console_users["finance"])
    page.click("#nav-audit")
    entries = page.locator('[data-testid="audit-entries"] tbody tr[data-action]')
    expect(entries).to_have_count(3)
    expect(page.locator('tr[data-action="case.manifest_appended"] pre.json')).to_have_text(
        '{"added": 2, "skippedExisting": 0}'
    )
    screenshot(page, "audit")

    page.fill("#audit-action", "subcase.locked")
    page.click("#audit-submit")
    expect(entries).to_have_count(2)
    expect(page.locator('tr[data-action="case.manifest_appended"]')).to_have_count(0)

    with page.expect_download() as download_info:
        page.click("#audit-export")
    download = download_info.value
    assert download.suggested_filename.startswith("audit-IB-")
    with open(download.path(), encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0][:3] == ["created_at", "action", "actor"]
    assert [row[1] for row in rows[1:]] == ["subcase.locked", "subcase.locked"]
    assert {row[2] for row in rows[1:]} == {operator_urn(console_users["operator"])}

    # A case's trail: everything recorded under it.
    page.fill("#audit-action", "")
    page.fill("#audit-case", audit_trail.urn)
    page.click("#audit-submit")
    expect(entries).to_have_count(3)
    expect(page.locator('tr[data-action="subcase.locked"]')).to_have_count(2)
    expect(page.locator("#audit-export")).to_have_count(0)  # the API exports the filtered log only
    assert browser_pages.problems == []


@pytest.fixture
def spanish_supervisor(console_users) -> str:
    username = console_users["supervisor"]
    ConsolePreference.objects.create(user=get_user_model().objects.get(username=username), language="es")
    return username


def test_a_bad_audit_filter_is_named_and_an_operator_may_not_read_the_audit(
    console_server, console_users, spanish_supervisor, audit_trail, browser_pages
):
    base = console_server.base_url
    supervisor = browser_pages.new_page(expect_errors=True)
    sign_in(supervisor, base, spanish_supervisor, next_path="/console/audit")  # in Spanish
    expect(supervisor.locator("h1")).to_have_text("Auditoría")
    expect(supervisor.locator("#audit-export")).to_have_text("Exportar CSV")
    expect(supervisor.get_by_test_id("audit-count")).to_have_text("3 entradas, las más recientes primero.")
    supervisor.fill("#audit-from", "yesterday")
    supervisor.click("#audit-submit")
    expect(supervisor.get_by_test_id("problem")).to_contain_text("from")

    operator = browser_pages.new_page(expect_errors=True)
    sign_in(operator, base, console_users["operator"])
    expect(operator.locator("#nav-audit")).to_have_count(0)
    response = operator.goto(f"{base}/console/audit")
    assert response.status == 403
    assert operator.request.get(f"{base}/console/audit/export.csv").status == 403


# --- policies --------------------------------------------------------------------------------------------


@pytest.fixture
def ib_policies(admin_user):
    """IB's demo policies (default, Madrid, Madrid business: active) and a DRAFT for Madrid business
    cancellations."""

    def admin(airline: str) -> Principal:
        return Principal(airline=airline, role=Role.ADMIN, operator_urn=operator_urn(admin_user), subject="e2e")

    policy_services.demo_policies_seed(principal_for=admin)
    return policy_services.policy_create(
        principal=admin("IB"),
        name="Iberia Madrid business cancellations",
        scope={"airport": "MAD", "tier": "BUSINESS", "cause": "CANCELLATION"},
        rules={"maxDistanceKm": 10, "minStars": 5},
    )


def _resolve(page, *, airport: str, tier: str, cause: str) -> None:
    page.fill("#resolve-airport", airport)
    page.select_option("#resolve-tier", tier)
    page.select_option("#resolve-cause", cause)
    page.click("#resolve-submit")


def test_an_operator_previews_which_policy_applies_and_why(console_server, console_users, ib_policies, browser_pages):
    base = console_server.base_url
    page = browser_pages.new_page(expect_errors=True)
    sign_in(page, base, console_users["operator"])
    page.click("#nav-policies")
    active = page.locator('[data-testid="active-policies"] tbody tr[data-policy]')
    expect(active).to_have_count(3)
    expect(active.first).to_contain_text("Iberia Madrid business")  # the most specific scope first

    _resolve(page, airport="MAD", tier="BUSINESS", cause="CANCELLATION")
    resolution = page.get_by_test_id("resolution")
    expect(resolution.locator("h3").first).to_have_text("Iberia Madrid business")
    expect(page.get_by_test_id("why")).to_contain_text("airport+tier")
    expect(page.get_by_test_id("why")).to_contain_text("ahead of 2 less specific candidates")
    expect(resolution.locator("tr.chosen")).to_contain_text("Iberia Madrid business")
    expect(resolution).to_contain_text("minStars")
    screenshot(page, "policies")

    # The draft is listed, but activating it is ADMIN: no button, and the server refuses it.
    expect(page.get_by_test_id("draft-policies")).to_contain_text("Iberia Madrid business cancellations")
    expect(page.locator("button.activate")).to_have_count(0)
    answer = page.request.post(
        f"{base}/console/policies/{ib_policies.urn}/activate", headers={"X-CSRFToken": _csrf(page)}
    )
    assert answer.status == 403

    # A bad airport is named; a context no policy matches says so (the API's no-policy-matches).
    _resolve(page, airport="mad", tier="", cause="")
    expect(page.get_by_test_id("resolve-result")).to_contain_text("airport")


def test_an_admin_activates_a_draft_and_the_preview_follows(console_server, admin_user, ib_policies, browser_pages):
    base = console_server.base_url
    page = browser_pages.new_page()
    sign_in(page, base, admin_user, next_path="/console/policies")
    draft = page.locator(f'[data-testid="draft-policies"] tr[data-policy="{ib_policies.urn}"]')
    draft.locator("input[name=reason]").fill("New cancellation terms")
    draft.locator("button.activate").click()
    expect(page.get_by_test_id("policy-note")).to_contain_text("Iberia Madrid business cancellations")
    active = page.locator('[data-testid="active-policies"] tbody tr[data-policy]')
    expect(active).to_have_count(4)
    expect(active.first).to_contain_text("airport+tier+cause")

    _resolve(page, airport="MAD", tier="BUSINESS", cause="CANCELLATION")
    expect(page.get_by_test_id("resolution").locator("h3").first).to_have_text("Iberia Madrid business cancellations")
    expect(page.get_by_test_id("why")).to_contain_text("airport+tier+cause")
    assert browser_pages.problems == []
