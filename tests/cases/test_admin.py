"""Django admin: browse with filters and search; FSM transitions as actions that go through the services."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from audit.models import AuditEntry
from cases.models import DemandStatus, PassengerGroup, SubCase
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from operators import services as operator_services
from operators.models import Operator
from tests.admin_users import staff_operator
from tests.cases.demand_helpers import grouped_case, make_wave
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.operators.test_sessions import principal

pytestmark = pytest.mark.django_db

SUBCASES = reverse("admin:cases_subcase_changelist")
CASES = reverse("admin:cases_case_changelist")


def test_transition_action_goes_through_the_service(admin_client, admin_user):
    sub_case = SubCaseFactory()
    response = admin_client.post(
        SUBCASES, {"action": "transition_mark_grouped", "_selected_action": [sub_case.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "1 sub-case(s) moved" in response.text
    sub_case.refresh_from_db()
    assert sub_case.status == "GROUPED" and sub_case.version == 2
    entry = AuditEntry.objects.get(entity_urn=sub_case.urn)
    assert entry.action == "subcase.mark_grouped" and entry.reason == "Django admin action"
    assert entry.actor == f"urn:nexa:system:django-admin:{admin_user.pk}" and entry.airline == "IB"
    assert OutboxEvent.objects.filter(event="subcase:state-changed").count() == 1


def test_illegal_transition_in_admin_is_reported_not_applied(admin_client):
    sub_case = SubCaseFactory()
    response = admin_client.post(
        SUBCASES, {"action": "transition_mark_booked", "_selected_action": [sub_case.pk]}, follow=True
    )
    assert "is PENDING" in response.text
    sub_case.refresh_from_db()
    assert sub_case.status == "PENDING" and not AuditEntry.objects.exists()


def test_operator_linked_admin_acts_as_that_operator_and_sees_only_their_airline(client):
    user = get_user_model().objects.create_user("ib-sup", password="pw", is_staff=True, is_superuser=False)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="cases"))
    Operator.objects.create(
        operator_urn="urn:nexa:user:ib-sup", airline="IB", role="OPS_SUPERVISOR", display_name="Sup", user=user
    )
    client.force_login(user)
    mine = SubCaseFactory(last_name="Iberia")
    theirs = SubCaseFactory(case=CaseFactory(airline="LH"), airline="LH", last_name="Lufthansa")

    listing = client.get(SUBCASES)
    assert "Iberia" in listing.text and "Lufthansa" not in listing.text

    client.post(SUBCASES, {"action": "transition_cancel", "_selected_action": [mine.pk, theirs.pk]})
    assert SubCase.objects.get(pk=mine.pk).status == "CANCELLED"
    assert SubCase.objects.get(pk=theirs.pk).status == "PENDING"
    assert AuditEntry.objects.get(entity_urn=mine.urn).actor == "urn:nexa:user:ib-sup"


def test_group_action_on_cases(admin_client):
    case = CaseFactory()
    SubCaseFactory.create_batch(2, case=case, pnr="FAM001")
    admin_client.post(CASES, {"action": "group_passengers_automatically", "_selected_action": [case.pk]})
    assert PassengerGroup.objects.filter(case=case).count() == 1
    assert AuditEntry.objects.filter(action="subcase.mark_grouped").count() == 2


def test_filters_and_search(admin_client):
    madrid = SubCaseFactory(pnr="MAD001", last_name="Ruiz", case=CaseFactory(airport="MAD", flight_number="IB3166"))
    barcelona = SubCaseFactory(pnr="BCN001", last_name="Puig", case=CaseFactory(airport="BCN"), status="GROUPED")

    def shows(url, params):
        text = admin_client.get(url, params).text
        return [name for name in ("Ruiz", "Puig") if name in text]

    assert shows(SUBCASES, {"q": "MAD001"}) == ["Ruiz"]
    assert shows(SUBCASES, {"q": "puig"}) == ["Puig"]
    assert shows(SUBCASES, {"q": "IB3166"}) == ["Ruiz"]
    assert shows(SUBCASES, {"status": "GROUPED"}) == ["Puig"]
    assert shows(SUBCASES, {"case__airport": "BCN"}) == ["Puig"]
    case_list = admin_client.get(CASES, {"q": "IB3166"}).text
    assert str(madrid.case) in case_list and str(barcelona.case) not in case_list
    assert str(barcelona.case) in admin_client.get(CASES, {"airport": "BCN"}).text


def test_records_are_read_only(admin_client):
    sub_case = SubCaseFactory()
    assert admin_client.get(reverse("admin:cases_subcase_add")).status_code == 403
    page = admin_client.get(reverse("admin:cases_subcase_change", args=[sub_case.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.text
    admin_client.post(reverse("admin:cases_subcase_change", args=[sub_case.pk]), {"status": "CLOSED", "version": 9})
    sub_case.refresh_from_db()
    assert (sub_case.status, sub_case.version) == ("PENDING", 1)


def test_demand_waves_are_listed_read_only_with_filters(admin_client):
    case, _, members = grouped_case(flight_number="IB7777")
    wave = make_wave(case, members[0])
    approved_case, _, approved_members = grouped_case(flight_number="IB8888")
    make_wave(approved_case, approved_members[0], status=DemandStatus.APPROVED)
    changelist = reverse("admin:cases_demandwave_changelist")
    pending = admin_client.get(changelist, {"status__exact": "PENDING_APPROVAL"})
    assert pending.status_code == 200
    assert "IB7777" in pending.text and "IB8888" not in pending.text
    detail = admin_client.get(reverse("admin:cases_demandwave_change", args=[wave.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.text
    assert admin_client.get(reverse("admin:cases_demandwave_add")).status_code == 403


def test_a_transition_on_a_sub_case_locked_by_someone_else_is_refused_with_a_message(client):
    user, _ = staff_operator("IB", Role.OPS_SUPERVISOR)
    client.force_login(user)
    sub_case = SubCaseFactory()
    operator_services.subcase_lock(principal=principal("urn:nexa:user:alice"), sub_case_urn=sub_case.urn)
    response = client.post(SUBCASES, {"action": "transition_cancel", "_selected_action": [sub_case.pk]}, follow=True)
    assert response.status_code == 200 and 'class="error"' in response.text and sub_case.urn in response.text
    sub_case.refresh_from_db()
    assert (sub_case.status, sub_case.version) == ("PENDING", 1)
    assert not AuditEntry.objects.filter(action="subcase.cancel").exists()


def test_a_finance_auditor_gets_no_sub_case_action(client):
    user, _ = staff_operator("IB", Role.FINANCE_AUDIT)
    client.force_login(user)
    sub_case = SubCaseFactory()
    assert client.get(SUBCASES).status_code == 403
    client.post(SUBCASES, {"action": "transition_cancel", "_selected_action": [sub_case.pk]})
    sub_case.refresh_from_db()
    assert sub_case.status == "PENDING"
