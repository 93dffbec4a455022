"""What a newcomer opens after `make run`, in a real browser (issue 9 §7): headless Chromium from Debian's
``chromium`` package (``make chromium``), driven by Playwright pointed at it (no browser download).

Before WhiteNoise, ``/v1/docs`` was a blank page (its Swagger UI assets under ``/static/`` answered 404) and
Django admin was unstyled (``/static/admin/css/base.css`` 404). Every page here must load with no failed
request and no response >= 400."""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from nexa.platform.roles import Role
from operators.models import Operator
from tests.admin_users import sync_role_permissions
from tests.cases.factories import CaseFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = Path(os.environ.get("NEXA_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "nexa-e2e-password"
TIMEOUT_MS = 30_000


@pytest.fixture
def browser_page():
    """A fresh page of headless Debian Chromium; yields ``(page, problems)`` where ``problems`` collects every
    failed request and every response >= 400. Playwright runs only inside this fixture, after the test's
    database rows exist (its event loop would make Django's ORM refuse to run in this thread)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            problems: list[str] = []
            page.on("requestfailed", lambda request: problems.append(f"failed {request.url}: {request.failure}"))
            page.on(
                "response",
                lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}"),
            )
            yield page, problems
        finally:
            browser.close()


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


def test_console_page_loads_with_no_failed_request(asgi_server, ib_supervisor, browser_page):
    page, problems = browser_page
    page.goto(f"{asgi_server.base_url}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "Nexa operations console"
    # Signed in, the console links to the docs and the admin.
    page.goto(f"{asgi_server.base_url}/admin/login/?next=/")
    page.fill("#id_username", ib_supervisor.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{asgi_server.base_url}/")
    page.wait_for_load_state("networkidle")
    assert f"Signed in as {ib_supervisor.username}" in page.locator("body").inner_text()
    assert problems == []
