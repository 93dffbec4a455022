"""Shared fixtures: real PostgreSQL (pytest-django's test database), real Redis, dev-issued tokens."""

import pytest
from rest_framework.test import APIClient

from nexa.platform.auth import issue_token
from nexa.platform.redis import get_redis
from nexa.platform.roles import Role

pytest_plugins = ["tests.fixtures", "tests.audit.db_plugin"]


@pytest.fixture
def token_for():
    """``token_for(airline, role, operator=...)`` → a token the API accepts."""

    def make(airline: str = "IB", role: Role | str = Role.AIRPORT_OPERATOR, operator: str | None = None, **kw) -> str:
        operator = operator or f"urn:nexa:user:{airline.lower()}-{str(role).lower()}"
        return issue_token(airline=airline, role=role, operator_urn=operator, **kw)

    return make


@pytest.fixture
def client_for(token_for):
    """``client_for(airline, role)`` → an APIClient authenticated as that principal."""

    def make(airline: str = "IB", role: Role | str = Role.AIRPORT_OPERATOR, operator: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(airline, role, operator)}")
        return client

    return make


@pytest.fixture(autouse=True, scope="session")
def _event_schema_check():
    """Every event published in a test is checked against its declaration (nexa/platform/events.py)."""
    from django.conf import settings

    previous = settings.NEXA_EVENT_SCHEMA_CHECK
    settings.NEXA_EVENT_SCHEMA_CHECK = True
    yield
    settings.NEXA_EVENT_SCHEMA_CHECK = previous


@pytest.fixture(autouse=True)
def _fresh_tenant_settings_cache():
    """Tenant settings are cached in-process for 30 s; each test starts from the database."""
    from nexa.platform.idempotency import clear_tenant_settings_cache

    clear_tenant_settings_cache()
    yield
    clear_tenant_settings_cache()


@pytest.fixture
def redis_client():
    return get_redis()
