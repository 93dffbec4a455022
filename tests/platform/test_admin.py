"""The tenant wall in Django admin (nexa/platform/admin.py): every registered admin, walked with a
user of another airline, a staff user without an operator and one whose operator was deactivated,
shows none of the first airline's rows and lets them change nothing."""

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from booking.models import Contract, Reservation
from cases.models import Case, DemandWave, PassengerGroup, SubCase
from nexa.platform.models import OutboxEvent, TenantSettings
from nexa.platform.roles import Role
from notifications.models import Notification, WhatsAppOptIn
from operators import services as operator_services
from operators.models import EntityLock, OperatorSession
from policies.models import Policy
from review.models import ReviewItem
from tests.admin_users import staff_operator, staff_without_operator
from tests.audit.factories import AuditEntryFactory
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.operators.test_sessions import principal
from tests.policies.factories import PolicyFactory
from tests.review.factories import ReviewItemFactory

pytestmark = pytest.mark.django_db

# Strings only IB's rows carry: none may appear on a page another airline's user sees.
MARKERS = ("IB9911", "BIO", "Zuloaga", "ib-secret", "GRP-SECRET", "secret-kiosk", "web-secret:1")


@pytest.fixture
def ib_rows(django_user_model):
    """One IB row of every model registered in admin."""
    case = CaseFactory(flight_number="IB9911", airport="BIO")
    sub_case = SubCaseFactory(case=case, last_name="Zuloaga", pnr="SECRT1")
    group = PassengerGroupFactory(case=case, label="GRP-SECRET")
    ib_user, ib_operator = staff_operator("IB", Role.ADMIN, name="ib-secret")
    secret = principal("urn:nexa:user:ib-secret", Role.ADMIN)
    operator_services.operator_session_open(principal=secret, session_id="sid-secret", server_instance="web-secret:1")
    operator_services.subcase_lock(principal=secret, sub_case_urn=sub_case.urn)
    notification = Notification.objects.create(
        airline="IB",
        case=case,
        sub_case=sub_case,
        channel="EMAIL",
        recipient="zuloaga@example.com",
        masked_recipient="z***@example.com",
        template="hotel_booked",
        language="es",
        idempotency_key="secret-notification",
        requested_by="urn:nexa:user:ib-secret",
    )
    opt_in = WhatsAppOptIn.objects.create(
        sub_case=sub_case, airline="IB", source="secret-kiosk", recorded_by="urn:nexa:user:ib-secret"
    )
    contract = Contract.objects.create(
        airline="IB",
        hotel_urn="urn:nexa:hotel:01937a00-0000-7000-8000-0000000000aa",
        airport="BIO",
        valid_from=datetime.date(2030, 1, 1),
        valid_to=datetime.date(2030, 12, 31),
        allotment=9,
        rate_amount=99,
        rate_currency="EUR",
        release_hours=0,
        cancellation_terms="ib-secret terms",
        created_by="urn:nexa:user:ib-secret",
    )
    now = timezone.now()
    wave = DemandWave.objects.create(
        airline="IB",
        case=case,
        kind="INITIAL",
        check_in=datetime.date(2030, 1, 1),
        nights=1,
        rooms=1,
        people=1,
        reason="ib-secret reason",
        requested_by="urn:nexa:user:ib-secret",
        created_at=now,
        expires_at=now + datetime.timedelta(minutes=30),
    )
    reservation = Reservation.objects.create(
        airline="IB",
        case=case,
        hotel_name="Hotel Zuloaga BIO",
        source="MANUAL",
        check_in=datetime.date(2030, 1, 1),
        nights=1,
        rooms=[{"occupants": [sub_case.urn], "accessible": False}],
        status="CONFIRMED",
        confirmation_number="ib-secret-conf",
        created_by="urn:nexa:user:ib-secret",
    )
    return {
        DemandWave: wave,
        Reservation: reservation,
        Contract: contract,
        Case: case,
        SubCase: sub_case,
        PassengerGroup: group,
        ib_operator._meta.model: ib_operator,
        EntityLock: EntityLock.objects.get(entity_urn=sub_case.urn),
        OperatorSession: OperatorSession.objects.get(session_id="sid-secret"),
        AuditEntry: AuditEntryFactory(airline="IB", actor="urn:nexa:user:ib-secret"),
        Notification: notification,
        WhatsAppOptIn: opt_in,
        TenantSettings: TenantSettings.objects.get_or_create(airline="IB")[0],
        django_user_model: ib_user,
        Group: Group.objects.get(name="ADMIN"),
        Policy: PolicyFactory(name="ib-secret policy", scope_airport="BIO", created_by="urn:nexa:user:ib-secret"),
        ReviewItem: ReviewItemFactory(case=case, assigned_to="urn:nexa:user:ib-secret"),
    }


def _snapshot(rows):
    return {model: model_to_dict(model.objects.get(pk=obj.pk)) for model, obj in rows.items()}


def _attackers():
    lh_admin, _ = staff_operator("LH", Role.ADMIN, name="lh-attacker")
    nobody = staff_without_operator()
    deactivated, _ = staff_operator("IB", Role.ADMIN, name="ib-gone", active=False, all_permissions=True)
    return {"LH ADMIN": lh_admin, "staff without operator": nobody, "deactivated IB ADMIN": deactivated}


def _action_names(model_admin) -> list[str]:
    names = ["delete_selected"]
    for action in model_admin.actions or ():
        names.append(action if isinstance(action, str) else action.__name__)
    return names


def test_the_walk_covers_every_registered_admin(ib_rows):
    assert set(admin.site._registry) == set(ib_rows), "give the new admin a row in ib_rows"


def test_every_admin_shows_and_lets_another_airline_touch_nothing(client, ib_rows):
    before = _snapshot(ib_rows)
    audit_rows, events = AuditEntry.objects.count(), OutboxEvent.objects.count()
    seen_a_list = False
    for who, user in _attackers().items():
        client.force_login(user)
        for model, model_admin in admin.site._registry.items():
            opts = model._meta
            obj = ib_rows[model]
            where = f"{who} on {opts.label}"

            listing = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
            assert listing.status_code in (200, 403), where
            if listing.status_code == 200:
                seen_a_list = True
                rows = listing.context["cl"].queryset
                assert not rows.filter(pk=obj.pk).exists(), where
                assert who == "LH ADMIN" or not rows.exists(), where
                assert not [marker for marker in MARKERS if marker in listing.text], where
            searched = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"), {"q": "Zuloaga"})
            assert searched.status_code in (200, 403), where
            if searched.status_code == 200:
                assert not searched.context["cl"].queryset.filter(pk=obj.pk).exists(), where

            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            page = client.get(change)
            assert page.status_code in (302, 403, 404), where
            if page.status_code == 302:
                assert page["Location"] == reverse("admin:index"), where
            data = {**{k: v for k, v in model_to_dict(obj).items() if v is not None}, "airline": "LH", "role": "ADMIN"}
            assert client.post(change, data).status_code in (302, 403, 404), where
            for name in ("history", "delete"):
                url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{name}", args=[obj.pk])
                assert client.get(url).status_code in (302, 403, 404), f"{where} {name}"

            for action in _action_names(model_admin):
                client.post(
                    reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                    {"action": action, "_selected_action": [obj.pk], "post": "yes"},
                )
        client.logout()

    assert seen_a_list  # the LH ADMIN does get changelists: the walk tested the querysets, not just a 403
    assert _snapshot(ib_rows) == before
    assert (AuditEntry.objects.count(), OutboxEvent.objects.count()) == (audit_rows, events)


def test_a_staff_user_without_an_active_operator_sees_nothing_even_with_every_permission(client, ib_rows):
    for user in (staff_without_operator(), staff_operator("IB", Role.ADMIN, name="ib-off", active=False)[0]):
        client.force_login(user)
        index = client.get(reverse("admin:index"))
        assert index.status_code == 200
        assert "have permission to view or edit anything" in index.text
        listing = client.get(reverse("admin:cases_case_changelist"))
        assert listing.status_code == 403


def test_same_airline_admin_sees_the_rows_the_others_do_not(client, ib_rows):
    """The other side of the walk: the same rows are there for an ADMIN of their own airline."""
    user, _ = staff_operator("IB", Role.ADMIN, name="ib-boss")
    client.force_login(user)
    for model in (Case, SubCase, AuditEntry, Notification, WhatsAppOptIn, EntityLock):
        opts = model._meta
        listing = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert listing.status_code == 200 and listing.context["cl"].result_count >= 1, opts.label
    # Users and groups carry no airline: superusers only.
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_a_superuser_still_sees_every_airline(admin_client, ib_rows):
    CaseFactory(airline="LH", flight_number="LH4242")
    listing = admin_client.get(reverse("admin:cases_case_changelist"))
    assert "IB9911" in listing.text and "LH4242" in listing.text


def _settings_form(client, airline: str) -> dict:
    page = client.get(reverse("admin:platform_tenantsettings_change", args=[airline]))
    assert page.status_code == 200
    form = page.context["adminform"].form
    return {name: "" if form[name].value() is None else form[name].value() for name in form.fields}


def test_tenant_settings_are_changed_by_the_airlines_admin_only(client):
    TenantSettings.objects.create(airline="IB")
    TenantSettings.objects.create(airline="LH")
    change = reverse("admin:platform_tenantsettings_change", args=["IB"])

    supervisor, _ = staff_operator("IB", Role.OPS_SUPERVISOR, name="ib-sup")
    client.force_login(supervisor)
    assert client.get(change).status_code == 200  # view only
    assert client.post(change, {"idempotency_key_required": "on"}).status_code == 403

    boss, _ = staff_operator("IB", Role.ADMIN, name="ib-boss")
    client.force_login(boss)
    listing = client.get(reverse("admin:platform_tenantsettings_changelist"))
    assert [row.airline for row in listing.context["cl"].result_list] == ["IB"]
    data = {**_settings_form(client, "IB"), "idempotency_key_required": True, "airline": "LH"}
    assert client.post(change, data).status_code == 302
    assert TenantSettings.objects.get(airline="IB").idempotency_key_required is True
    assert TenantSettings.objects.get(airline="LH").idempotency_key_required is False
    assert client.get(reverse("admin:platform_tenantsettings_add")).status_code == 403


def test_tenant_settings_show_the_review_settings_and_never_the_webhook_secret(client):
    TenantSettings.objects.create(airline="IB", alert_webhook_secret="s3cret-value")
    change = reverse("admin:platform_tenantsettings_change", args=["IB"])
    boss, _ = staff_operator("IB", Role.ADMIN, name="ib-boss")
    client.force_login(boss)
    page = client.get(change)
    for field in ("sla_high_minutes", "sla_medium_minutes", "sla_low_minutes", "alert_webhook_url", "agent_enabled",
                  "demand_approval_ttl_minutes", "alert_webhook_secret"):  # fmt: skip
        assert field in page.context["adminform"].form.fields
    assert "s3cret-value" not in page.text
    # Saved with the secret left empty: kept; with a new one: replaced.
    data = {**_settings_form(client, "IB"), "sla_high_minutes": 10, "agent_enabled": True}
    data.pop("alert_webhook_secret", None)
    assert client.post(change, data).status_code == 302
    stored = TenantSettings.objects.get(airline="IB")
    assert (stored.sla_high_minutes, stored.agent_enabled, stored.alert_webhook_secret) == (10, True, "s3cret-value")
    assert client.post(change, {**data, "alert_webhook_secret": "rotated"}).status_code == 302
    assert TenantSettings.objects.get(airline="IB").alert_webhook_secret == "rotated"
