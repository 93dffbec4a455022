"""The audit admin is read-only: browse, filter, search; no add, change or delete."""

import csv
import io

import pytest
from django.urls import reverse

from audit.export import COLUMNS
from nexa.platform.roles import Role
from tests.admin_users import staff_operator
from tests.audit.factories import AuditEntryFactory

pytestmark = pytest.mark.django_db


def test_changelist_lists_filters_and_searches(admin_client):
    mine = AuditEntryFactory(action="subcase.locked")
    other = AuditEntryFactory(airline="BA", action="policy.activated")
    url = reverse("admin:audit_auditentry_changelist")

    response = admin_client.get(url)
    assert response.status_code == 200
    assert mine.entity_urn in response.text and other.entity_urn in response.text

    response = admin_client.get(url, {"airline": "BA"})
    assert other.entity_urn in response.text and mine.entity_urn not in response.text

    response = admin_client.get(url, {"action": "subcase.locked"})
    assert mine.entity_urn in response.text and other.entity_urn not in response.text

    for term in (mine.entity_urn, mine.case_urn):
        response = admin_client.get(url, {"q": term})
        assert mine.entity_urn in response.text and other.entity_urn not in response.text

    response = admin_client.get(url, {"q": "ib-ops"})  # substring of the actor URN
    assert mine.entity_urn in response.text


def test_no_add_change_or_delete(admin_client):
    entry = AuditEntryFactory(reason="original")
    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert admin_client.get(reverse("admin:audit_auditentry_delete", args=[entry.pk])).status_code == 403

    change_url = reverse("admin:audit_auditentry_change", args=[entry.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200  # view-only
    assert 'name="_save"' not in page.text
    assert admin_client.post(change_url, {"reason": "rewritten"}).status_code == 403

    changelist = admin_client.get(reverse("admin:audit_auditentry_changelist"))
    assert "delete_selected" not in changelist.text
    entry.refresh_from_db()
    assert entry.reason == "original"


# --- the CSV export action (the API's export) -------------------------------------------------------------

AUDIT = reverse("admin:audit_auditentry_changelist")


def _export(client, *entries):
    return client.post(AUDIT, {"action": "export_csv", "_selected_action": [entry.pk for entry in entries]})


@pytest.mark.parametrize("role", [Role.OPS_SUPERVISOR, Role.FINANCE_AUDIT])
def test_export_writes_the_selected_rows_of_the_airline_as_the_apis_csv(client, role):
    user, _ = staff_operator("IB", role)
    client.force_login(user)
    mine = AuditEntryFactory(action="subcase.locked", reason="=HYPERLINK(1)")
    theirs = AuditEntryFactory(airline="LH", action="policy.activated")
    response = _export(client, mine, theirs)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-IB-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(COLUMNS)
    assert [row[3] for row in rows[1:]] == [mine.entity_urn]  # LH's row never leaves the wall
    assert rows[1][5] == "'=HYPERLINK(1)"  # the API's formula guard


def test_export_above_the_cap_is_an_error_message(client, settings):
    settings.NEXA_AUDIT_EXPORT_MAX_ROWS = 1
    user, _ = staff_operator("IB", Role.OPS_SUPERVISOR)
    client.force_login(user)
    entries = AuditEntryFactory.create_batch(2)
    response = client.post(
        AUDIT, {"action": "export_csv", "_selected_action": [entry.pk for entry in entries]}, follow=True
    )
    assert response.status_code == 200 and "text/html" in response["Content-Type"]
    assert 'class="error"' in response.text and "More than 1 audit rows match" in response.text


def test_an_airport_operator_gets_no_audit_admin_and_no_export(client):
    user, _ = staff_operator("IB", Role.AIRPORT_OPERATOR)
    client.force_login(user)
    entry = AuditEntryFactory()
    assert client.get(AUDIT).status_code == 403
    response = _export(client, entry)
    assert response.status_code == 403 and "text/csv" not in response.get("Content-Type", "")
