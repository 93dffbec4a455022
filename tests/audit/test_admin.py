"""The audit admin is read-only: browse, filter, search; no add, change or delete."""

import pytest
from django.urls import reverse

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
