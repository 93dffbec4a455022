"""What a newcomer opens after `make run`, in a real browser (issue 9 §7): headless Chromium from Debian's
``chromium`` package (``make chromium``), driven by Playwright pointed at it (no browser download).

Before WhiteNoise, ``/v1/docs`` was a blank page (its Swagger UI assets under ``/static/`` answered 404) and
Django admin was unstyled (``/static/admin/css/base.css`` 404). Every page here must load with no failed
request and no response >= 400."""

import pytest
from django.contrib.auth import get_user_model

from nexa.platform.roles import Role
from operators.models import Operator
from tests.admin_users import sync_role_permissions
from tests.cases.factories import CaseFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "nexa-e2e-password"


@pytest.fixture
def ib_supervisor():
    """An IB OPS_SUPERVISOR with a staff console user, as seed_demo makes ``ib-ops-supervisor``: admin
    permissions come from the role's group (``sync_role_permissions``), nothing granted by hand."""
    user = get_user_model().objects.create_user(
        username="ib-ops-supervisor-e2e", password=PASSWORD, is_staff=True, first_name="Iberia"
    )
    Operator.objects.create(
        operator_urn="urn:nexa:user:ib-ops-supervisor-e2e",
        airline="IB",
        role=Role.OPS_SUPERVISOR.value,
        display_name="Iberia Ops Supervisor (e2e)",
        user=user,
    )
    sync_role_permissions()
    return user


def test_api_docs_render_every_operation_with_no_failed_asset(asgi_server, browser_page):
    page, problems = browser_page
    assets = []
    page.on("response", lambda response: "/static/" in response.url and assets.append(response))
    page.goto(f"{asgi_server.base_url}/v1/docs")
    page.wait_for_selector(".opblock .opblock-summary-path", state="visible")
    paths = page.locator(".opblock .opblock-summary-path").all_inner_texts()
    assert len(paths) >= 20, paths
    assert any(path.startswith("/v1/cases") for path in paths), paths
    page.wait_for_load_state("networkidle")
    assert any(response.url.endswith("swagger-ui-bundle.js") and response.status == 200 for response in assets)
    assert any(response.url.endswith("swagger-ui.css") and response.status == 200 for response in assets)
    assert problems == []


@pytest.fixture
def ib_case():
    return CaseFactory(airline="IB", flight_number="IB3190")


# browser_page comes last in each test's arguments: the rows exist before Playwright's loop starts.
def test_admin_shows_a_supervisor_the_case_list_styled(asgi_server, ib_supervisor, ib_case, browser_page):
    page, problems = browser_page
    page.goto(f"{asgi_server.base_url}/admin/login/?next=/admin/cases/case/")
    page.fill("#id_username", ib_supervisor.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/cases/case/")
    page.wait_for_load_state("networkidle")
    assert ib_case.flight_number in page.locator("#result_list").inner_text()
    # Styled: admin's base.css is applied (its header colour and the changelist layout), not browser defaults.
    sheets = page.evaluate("[...document.styleSheets].map(sheet => sheet.href || '')")
    assert any(href.endswith("/static/admin/css/base.css") for href in sheets), sheets
    header_background = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header_background not in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)"), header_background
    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Times" not in body_font, body_font
    assert problems == []


def test_console_page_loads_with_no_failed_request(asgi_server, ib_supervisor, live_sessions_closed, browser_page):
    page, problems = browser_page
    page.goto(f"{asgi_server.base_url}/")
    page.wait_for_url("**/console/sign-in?next=/console/")
    assert page.locator("h1").inner_text() == "Sign in"
    page.fill("#id_username", ib_supervisor.username)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{asgi_server.base_url}/console/")
    page.wait_for_load_state("networkidle")
    assert "Iberia Ops Supervisor (e2e)" in page.get_by_test_id("who").inner_text()
    assert problems == []
