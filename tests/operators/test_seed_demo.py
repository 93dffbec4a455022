"""``manage.py seed_demo`` is idempotent: a second run leaves exactly the same rows."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from nexa.platform.models import TenantSettings
from nexa.platform.roles import Role
from operators.models import Operator

pytestmark = pytest.mark.django_db


def snapshot():
    users = get_user_model().objects.order_by("username")
    return (
        list(Operator.objects.order_by("operator_urn").values_list("id", "operator_urn", "airline", "role", "user_id")),
        list(users.values_list("id", "username", "is_staff", "is_superuser", "password")),
        list(TenantSettings.objects.order_by("airline").values_list("airline", flat=True)),
    )


def test_seed_demo_twice_gives_the_same_rows():
    call_command("seed_demo")
    first = snapshot()
    call_command("seed_demo")
    assert snapshot() == first


def test_seed_demo_covers_both_airlines_and_every_role():
    call_command("seed_demo")
    assert set(TenantSettings.objects.values_list("airline", flat=True)) >= {"IB", "LH"}
    for airline in ("IB", "LH"):
        for role in Role:
            operators = Operator.objects.filter(airline=airline, role=role.value, active=True)
            assert operators.count() >= 2, (airline, role)
    supervisor = get_user_model().objects.get(username="ib-ops-supervisor")
    assert supervisor.is_staff
    assert supervisor.check_password("nexa-demo")
    assert supervisor.operator.operator_urn == "urn:nexa:user:ib-ops-supervisor"
    assert not get_user_model().objects.get(username="lh-airport-operator").is_staff
