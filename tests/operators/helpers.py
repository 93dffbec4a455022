"""Shared helpers of the operators tests: tokens per operator, lock calls, problem assertions."""

from datetime import timedelta

from django.db.models.functions import Now
from rest_framework.test import APIClient

from nexa.platform.models import OutboxEvent
from operators.models import EntityLock


def lock(client: APIClient, sub_case_urn: str):
    return client.post(f"/v1/subcases/{sub_case_urn}/lock", format="json")


def unlock(client: APIClient, sub_case_urn: str):
    return client.post(f"/v1/subcases/{sub_case_urn}/unlock", format="json")


def force_unlock(client: APIClient, sub_case_urn: str, body: dict | None = None):
    return client.post(f"/v1/subcases/{sub_case_urn}/force-unlock", body if body is not None else {}, format="json")


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"https://api.nexa/problems/{slug}", body
    assert body["status"] == status
    return body


def expire_lease(entity_urn: str, seconds_ago: float = 1.0) -> None:
    """Move the lease end into the past on the database clock (what a lease looks like once it ran out)."""
    EntityLock.objects.filter(entity_urn=entity_urn).update(expires_at=Now() - timedelta(seconds=seconds_ago))


def lock_events(sub_case_urn: str) -> list[dict]:
    """Payloads of ``subcase:state-changed`` for the sub-case, oldest first."""
    return [
        row.payload
        for row in OutboxEvent.objects.filter(event="subcase:state-changed", payload__subCaseUrn=sub_case_urn).order_by(
            "created_at", "id"
        )
    ]
