"""``manage.py seed_demo`` is idempotent: a second run leaves exactly the same rows. It loads two
realistic open disruptions (operators/management/commands/_demo.py) through the cases services, grouped."""

import datetime as dt
import re
from collections import Counter, defaultdict
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from audit.models import AuditEntry
from cases.manifest import validate_rows
from cases.models import Case, CaseStatus, PassengerGroup, SubCase, SubCaseStatus
from nexa.platform.models import TenantSettings
from nexa.platform.roles import Role
from operators.management.commands._demo import DEMO_DISRUPTIONS, demo_disruptions_ensure, demo_manifest
from operators.management.commands.seed_demo import demo_supervisor
from operators.models import Operator

pytestmark = pytest.mark.django_db

EXPECTED = {("IB", "IB3190", "MAD"): (180, "CANCELLATION"), ("LH", "LH1190", "FRA"): (300, "DELAY")}
UM = "UNACCOMPANIED_MINOR"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """seed_demo sets and checks 16 console passwords per run; the default PBKDF2 costs seconds."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot():
    users = get_user_model().objects.order_by("username")
    return (
        list(Operator.objects.order_by("operator_urn").values_list("id", "operator_urn", "airline", "role", "user_id")),
        list(users.values_list("id", "username", "is_staff", "is_superuser", "password")),
        list(TenantSettings.objects.order_by("airline").values_list("airline", flat=True)),
        list(Case.objects.order_by("id").values_list("id", "flight_number", "flight_date", "status", "version")),
        list(SubCase.objects.order_by("id").values_list("id", "pnr", "status", "version", "group_id")),
        list(PassengerGroup.objects.order_by("id").values_list("id", "label", "mixed_tier")),
        AuditEntry.objects.count(),
    )


def demo_case(airline: str) -> Case:
    return Case.objects.get(airline=airline, flight_number={"IB": "IB3190", "LH": "LH1190"}[airline])


def test_seed_demo_twice_gives_the_same_rows():
    first_output = seed()
    first = snapshot()
    second_output = seed()
    assert snapshot() == first
    assert "(180 new)" in first_output and "(300 new)" in first_output
    assert "180 passengers (0 new)" in second_output and "300 passengers (0 new)" in second_output


def test_seed_demo_covers_both_airlines_and_every_role():
    seed()
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


def test_seed_demo_loads_two_grouped_open_disruptions():
    output = seed()
    cases = Case.objects.order_by("airline")
    assert {(c.airline, c.flight_number, c.airport): (c.subcases.count(), c.cause) for c in cases} == EXPECTED
    for case in cases:
        assert case.status != CaseStatus.CLOSED
        assert case.declared_by == f"urn:nexa:user:{case.airline.lower()}-ops-supervisor"
        assert case.urn in output
        # Declared, appended and grouped through the services: audited like an operator's work.
        actions = set(AuditEntry.objects.filter(case_urn=case.urn).values_list("action", flat=True))
        assert {"case.declared", "case.manifest_appended", "group.created", "subcase.mark_grouped"} <= actions

        passengers = list(case.subcases.all())
        assert {p.status for p in passengers} == {SubCaseStatus.GROUPED}
        members = defaultdict(list)
        for passenger in passengers:
            members[passenger.group_id].append(passenger)
        groups = list(case.groups.all())
        assert len(groups) == len(members) > 1
        assert any(group.mixed_tier for group in groups), case.flight_number
        for group in groups:
            group_passengers = members[group.pk]
            assert group.mixed_tier == (len({p.tier for p in group_passengers}) > 1)
            assert len({p.pnr for p in group_passengers}) == 1  # automatic grouping: one PNR per group
            minors = [p for p in group_passengers if UM in p.special_needs]
            # An unaccompanied minor is never grouped with strangers.
            assert all(p.pnr == minor.pnr for minor in minors for p in group_passengers)
        assert sum(UM in p.special_needs for p in passengers) >= 2
        assert any(len(m) >= 3 for m in members.values())  # families
        assert any(len(m) == 1 for m in members.values())  # solo travellers


def test_a_rerun_on_another_day_reuses_the_open_cases_and_keeps_operators_work():
    seed()
    before = snapshot()
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    results = demo_disruptions_ensure(principal_for=demo_supervisor, today=tomorrow)
    assert [(r.added, r.declared) for r in results] == [(0, False), (0, False)]
    assert [r.case.urn for r in results] == [demo_case("IB").urn, demo_case("LH").urn]
    assert [r.passengers for r in results] == [180, 300]
    assert snapshot() == before


def test_missing_demo_passengers_are_topped_up_and_grouped():
    seed()
    case = demo_case("IB")
    gone = list(case.subcases.order_by("pnr").values_list("pnr", flat=True).distinct()[:3])
    SubCase.objects.filter(case=case, pnr__in=gone).delete()
    left = case.subcases.count()
    assert left < 180

    (ib, lh) = demo_disruptions_ensure(principal_for=demo_supervisor)
    assert ib.case.urn == case.urn and not ib.declared and ib.added == 180 - left
    assert case.subcases.count() == 180 and ib.passengers == 180
    assert set(case.subcases.values_list("status", flat=True)) == {SubCaseStatus.GROUPED}
    assert set(case.subcases.filter(pnr__in=gone).values_list("group__label", flat=True)) != {None}
    assert lh.added == 0


def test_demo_manifests_are_deterministic_valid_and_realistic():
    for disruption in DEMO_DISRUPTIONS:
        rows = demo_manifest(disruption)
        assert rows == demo_manifest(disruption)
        assert len(rows) == disruption.passengers
        validation = validate_rows(rows)
        assert validation.valid, validation.errors[:5]
        assert len(validation.rows) == disruption.passengers  # every passenger unique

        by_pnr = defaultdict(list)
        for row in rows:
            by_pnr[row["pnr"]].append(row)
        sizes = Counter(len(party) for party in by_pnr.values())
        assert sizes[1] and sizes[2] and any(sizes[n] for n in (3, 4, 5)) and max(sizes) <= 5
        assert any(len({r["tier"] for r in party}) > 1 for party in by_pnr.values())  # mixed tiers in a PNR
        families = [p for p in by_pnr.values() if len(p) >= 3 and len({r["lastName"] for r in p}) == 1]
        assert families
        needs = Counter(need for row in rows for need in row.get("specialNeeds", []))
        assert set(needs) == {"WHEELCHAIR", "MEDICAL", "SERVICE_ANIMAL", "INFANT", UM}
        assert {row["language"] for row in rows} == {"en", "es", "de"}
        assert any(row.get("loyaltyTier") for row in rows)
        for row in rows:
            if "email" in row:
                assert row["email"].rsplit("@", 1)[1] in ("example.com", "example.org"), row
            if "phone" in row:
                assert re.fullmatch(r"\+(34600000|493023125|447700900)\d{3}", row["phone"]), row
        # Unaccompanied minors travel alone or with siblings on their own PNR, never with adults.
        for party in by_pnr.values():
            if any(UM in row.get("specialNeeds", []) for row in party):
                assert all(UM in row.get("specialNeeds", []) for row in party)

    bigger = demo_manifest(DEMO_DISRUPTIONS[0], passengers=2000)
    assert len(bigger) == 2000 and validate_rows(bigger).valid


def test_seed_demo_makes_no_superuser_and_puts_everyone_in_their_roles_group():
    # An older seed_demo made each airline's ADMIN a superuser: a re-run takes that back.
    get_user_model().objects.create_user("ib-admin", is_staff=True, is_superuser=True)

    output = seed()

    users = get_user_model().objects.filter(operator__airline__in=["IB", "LH"])
    assert users.count() == 16
    assert not get_user_model().objects.filter(is_superuser=True).exists()
    for user in users:
        role = user.operator.role
        assert user.is_staff == (role in ("ADMIN", "OPS_SUPERVISOR")), user.username
        assert list(user.groups.values_list("name", flat=True)) == [role], user.username
    assert "Role permissions:" in output
    assert "nothing to change" in seed().splitlines()[1]


def test_the_seeded_supervisor_works_their_airlines_cases_in_admin(client):
    seed()
    client.force_login(get_user_model().objects.get(username="ib-ops-supervisor"))

    cases = client.get("/admin/cases/case/")
    assert cases.status_code == 200
    assert [case.flight_number for case in cases.context["cl"].result_list] == ["IB3190"]
    sub_cases = client.get("/admin/cases/subcase/", {"status": "GROUPED"})
    assert sub_cases.context["cl"].result_count == 180 and "transition_mark_allocated" in sub_cases.text
    assert client.get("/admin/audit/auditentry/").status_code == 200
    lh_case = demo_case("LH")
    assert client.get(f"/admin/cases/case/{lh_case.pk}/change/").status_code == 302
