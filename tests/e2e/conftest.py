"""Browser fixtures of the e2e tests: headless Chromium from Debian's ``chromium`` package (``make chromium``),
driven by Playwright pointed at it — never ``playwright install``, no browser download.

Playwright's sync API runs an event loop in the test's thread, and Django's ORM refuses to run in a thread
with a running loop: the browser fixtures come LAST in a test's arguments, so every row the test needs is
committed before the loop starts. While a browser is open, tests change state through the live server's
HTTP API with dev-issued tokens (real clients), not through the ORM."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import wait_until_live_sessions_closed

CHROMIUM = Path(os.environ.get("NEXA_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 800}


class BrowserPages:
    """Opens pages, each in its own browser context (its own cookies: one signed-in user each), and
    collects every failed request and every response >= 400 (``problems``)."""

    def __init__(self, browser):
        self.browser = browser
        self.problems: list[str] = []

    def new_page(self, *, expect_errors: bool = False, viewport: dict[str, int] | None = None):
        context = self.browser.new_context(viewport=viewport or VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        if not expect_errors:
            page.on("requestfailed", lambda request: self._failed(request))
            page.on(
                "response",
                lambda response: response.status >= 400 and self.problems.append(f"{response.status} {response.url}"),
            )
        return page

    def _failed(self, request) -> None:
        # A page closed (or navigated) while its socket was open aborts it: that is not a failure.
        if request.failure and "ERR_ABORTED" in request.failure:
            return
        self.problems.append(f"failed {request.url}: {request.failure}")


@pytest.fixture
def browser_pages() -> Iterator[BrowserPages]:
    """A headless Debian Chromium for one test (put it last among the test's arguments)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield BrowserPages(browser)
        finally:
            browser.close()


@pytest.fixture
def browser_page(browser_pages: BrowserPages):
    """One fresh page; yields ``(page, problems)``."""
    page = browser_pages.new_page()
    return page, browser_pages.problems


@pytest.fixture
def live_sessions_closed(transactional_db) -> Iterator[None]:
    """After a test's browsers are closed, wait until the live server has closed their operator sessions."""
    yield
    wait_until_live_sessions_closed()


# --- the console ------------------------------------------------------------------------------------------

CONSOLE_PASSWORD = "nexa-e2e-password"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# Short heartbeats: a closed page's socket is noticed at once either way, a vanished one within seconds.
CONSOLE_SERVER_ENV = {
    "NEXA_SOCKET_PING_INTERVAL_MS": "1000",
    "NEXA_SOCKET_PING_TIMEOUT_MS": "2000",
}


@pytest.fixture(scope="module")
def console_server(asgi_server_factory):
    return asgi_server_factory(extra_env=CONSOLE_SERVER_ENV)


@pytest.fixture
def console_users(transactional_db) -> dict[str, str]:
    """IB's console users as seed_demo makes them (a Django user linked to an operator profile), one per role,
    a second airport operator, and a UX operator; ``{key: username}``."""
    from django.contrib.auth import get_user_model

    from nexa.platform.roles import Role
    from operators.models import Operator

    people = {
        "operator": ("IB", Role.AIRPORT_OPERATOR, "Ana Operadora"),
        "operator2": ("IB", Role.AIRPORT_OPERATOR, "Bruno Operador"),
        "supervisor": ("IB", Role.OPS_SUPERVISOR, "Carmen Supervisora"),
        "finance": ("IB", Role.FINANCE_AUDIT, "Diego Finanzas"),
        "ux_operator": ("UX", Role.AIRPORT_OPERATOR, "Eva Air Europa"),
    }
    usernames = {}
    for key, (airline, role, name) in people.items():
        username = f"{airline.lower()}-{key}-e2e"
        user = get_user_model().objects.create_user(username=username, password=CONSOLE_PASSWORD)
        Operator.objects.create(
            operator_urn=f"urn:nexa:user:{username}", airline=airline, role=role.value, display_name=name, user=user
        )
        usernames[key] = username
    return usernames


def operator_urn(username: str) -> str:
    return f"urn:nexa:user:{username}"


def sign_in(page, base_url: str, username: str, *, next_path: str = "/console/") -> None:
    """Django's login form on the console's sign-in page, then wait for the page asked for."""
    page.goto(f"{base_url}/console/sign-in?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", CONSOLE_PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(f"{base_url}{next_path}")


def wait_live(page) -> None:
    """The page's presence channel is connected (the header says so)."""
    page.wait_for_selector('#live-status[data-state="online"]')


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
