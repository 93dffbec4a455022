"""Passenger groups: the automatic rules, explicit groups, regrouping, and the transitions they cause."""

import pytest

from audit.models import AuditEntry
from cases import services
from cases.grouping import Traveller, automatic_groups, is_mixed_tier, unaccompanied_minor_with_strangers
from cases.models import PassengerGroup, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

PRINCIPAL = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:ib-op", subject="op")
UM = ["UNACCOMPANIED_MINOR"]


# --- the pure rules ----------------------------------------------------------------------------------


def test_automatic_groups_are_one_per_pnr_in_first_seen_order():
    travellers = [
        Traveller(key=1, pnr="AAA111", tier="ECONOMY"),
        Traveller(key=2, pnr="BBB222", tier="ECONOMY", special_needs=frozenset({"WHEELCHAIR"})),
        Traveller(key=3, pnr="AAA111", tier="BUSINESS"),
        Traveller(key=4, pnr="BBB222", tier="ECONOMY"),
        Traveller(key=5, pnr="CCC333", tier="ECONOMY", special_needs=frozenset(UM)),
    ]
    assert [[t.key for t in group] for group in automatic_groups(travellers)] == [[1, 3], [2, 4], [5]]


def test_unaccompanied_minor_rule_and_mixed_tier():
    minor = Traveller(key=1, pnr="AAA111", tier="ECONOMY", special_needs=frozenset(UM))
    sibling = Traveller(key=2, pnr="AAA111", tier="ECONOMY", special_needs=frozenset(UM))
    stranger = Traveller(key=3, pnr="ZZZ999", tier="BUSINESS")
    assert unaccompanied_minor_with_strangers([minor, sibling]) is None
    assert unaccompanied_minor_with_strangers([stranger, minor]) == minor
    assert not is_mixed_tier([minor, sibling]) and is_mixed_tier([minor, stranger])


# --- over HTTP ------------------------------------------------------------------------------------------


@pytest.fixture
def operator(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-op")


def group(client, case, body=None):
    return client.post(f"/v1/cases/{case.urn}/passenger-groups", body if body is not None else {}, format="json")


def memberships(response) -> list[set[str]]:
    assert response.status_code == 201, response.content
    return [set(g["subCaseUrns"]) for g in response.json()["groups"]]


def test_automatic_grouping_keeps_pnrs_together_and_never_mixes_them(operator):
    case = CaseFactory()
    family = SubCaseFactory.create_batch(3, case=case, pnr="FAM001")
    wheelchair = SubCaseFactory(case=case, pnr="PRM001", special_needs=["WHEELCHAIR"])
    companion = SubCaseFactory(case=case, pnr="PRM001")
    minor = SubCaseFactory(case=case, pnr="UMN001", special_needs=UM)
    solo = SubCaseFactory(case=case, pnr="SOL001", tier="BUSINESS")

    response = group(operator, case)
    assert memberships(response) == [
        {s.urn for s in family},
        {wheelchair.urn, companion.urn},  # special needs keep their PNR companions
        {minor.urn},  # an unaccompanied minor alone, never with strangers
        {solo.urn},
    ]
    labels = [g["label"] for g in response.json()["groups"]]
    assert labels == ["GRP-1", "GRP-2", "GRP-3", "GRP-4"]
    assert all(not g["mixedTier"] for g in response.json()["groups"])

    for sub_case in SubCase.objects.filter(case=case):
        assert sub_case.status == SubCaseStatus.GROUPED and sub_case.version == 2 and sub_case.group_id
    case.refresh_from_db()
    assert case.status == "IN_PROGRESS"


def test_each_grouped_sub_case_is_audited_and_published(operator):
    case = CaseFactory()
    members = SubCaseFactory.create_batch(2, case=case, pnr="FAM001")
    response = group(operator, case)
    group_urn = response.json()["groups"][0]["urn"]
    for sub_case in members:
        entry = AuditEntry.objects.get(entity_urn=sub_case.urn)
        assert entry.action == "subcase.mark_grouped"
        assert entry.after == {"status": "GROUPED", "version": 2, "transition": "mark_grouped", "groupUrn": group_urn}
    assert AuditEntry.objects.get(action="group.created").after["subCaseUrns"] == [s.urn for s in members]
    events = OutboxEvent.objects.filter(event="subcase:state-changed")
    assert sorted(e.payload["subCaseUrn"] for e in events) == sorted(s.urn for s in members)
    assert OutboxEvent.objects.filter(event="case:updated").count() == 1


def test_mixed_tier_group_is_flagged(operator):
    case = CaseFactory()
    SubCaseFactory(case=case, pnr="MIX001", tier="BUSINESS")
    SubCaseFactory(case=case, pnr="MIX001", tier="ECONOMY")
    body = group(operator, case).json()["groups"][0]
    assert body["mixedTier"] is True and body["tiers"] == ["BUSINESS", "ECONOMY"]
    assert PassengerGroup.objects.get().mixed_tier is True


def test_explicit_groups_are_kept_and_the_rest_grouped_automatically(operator):
    case = CaseFactory()
    a1, a2 = SubCaseFactory.create_batch(2, case=case, pnr="AAA111")
    b1 = SubCaseFactory(case=case, pnr="BBB222", tier="FIRST")
    response = group(operator, case, {"groups": [[a1.urn, b1.urn]]})
    assert memberships(response) == [{a1.urn, b1.urn}, {a2.urn}]
    assert response.json()["groups"][0]["mixedTier"] is True


@pytest.mark.parametrize(
    ("make_groups", "field"),
    [
        (lambda own, foreign, other_case: [[own.urn, foreign.urn]], "groups[0][1]"),  # another airline's
        (lambda own, foreign, other_case: [[own.urn], [other_case.urn]], "groups[1][0]"),  # another case's
        (lambda own, foreign, other_case: [[own.urn], [own.urn]], "groups[1][0]"),  # twice
        (lambda own, foreign, other_case: [[own.urn, "urn:nexa:case:x"]], "groups[0][1]"),  # not a URN
        (lambda own, foreign, other_case: [[]], "groups[0]"),
        (lambda own, foreign, other_case: [own.urn], "groups[0]"),
    ],
)
def test_invalid_explicit_groups_are_400_naming_the_entry(operator, make_groups, field):
    case = CaseFactory()
    own = SubCaseFactory(case=case)
    foreign = SubCaseFactory(case=CaseFactory(airline="LH"), airline="LH")
    other_case = SubCaseFactory(case=CaseFactory())
    response = group(operator, case, {"groups": make_groups(own, foreign, other_case)})
    assert response.status_code == 400, response.content
    assert field in [error["field"] for error in response.json()["errors"]]
    assert not PassengerGroup.objects.exists()
    own.refresh_from_db()
    assert own.status == "PENDING" and own.version == 1


def test_unaccompanied_minor_with_a_stranger_is_refused(operator):
    case = CaseFactory()
    minor = SubCaseFactory(case=case, pnr="UMN001", special_needs=UM)
    stranger = SubCaseFactory(case=case, pnr="ADU001")
    response = group(operator, case, {"groups": [[minor.urn, stranger.urn]]})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "groups[0]",
            "message": (
                f"{minor.urn} is an unaccompanied minor and may only be grouped with passengers of their own PNR"
            ),
        }
    ]


def test_regrouping_replaces_previous_groups(operator):
    case = CaseFactory()
    a1, a2 = SubCaseFactory.create_batch(2, case=case, pnr="AAA111")
    group(operator, case)
    first_group = PassengerGroup.objects.get()
    response = group(operator, case, {"groups": [[a1.urn], [a2.urn]]})
    assert memberships(response) == [{a1.urn}, {a2.urn}]
    assert not PassengerGroup.objects.filter(pk=first_group.pk).exists()
    assert [g["label"] for g in response.json()["groups"]] == ["GRP-1", "GRP-2"]
    a1.refresh_from_db()
    assert a1.status == "GROUPED" and a1.version == 3
    assert AuditEntry.objects.filter(action="group.dissolved", entity_urn=first_group.urn).exists()


def test_regrouping_after_allocation_is_409(operator):
    case = CaseFactory()
    a1, a2 = SubCaseFactory.create_batch(2, case=case, pnr="AAA111")
    group(operator, case)
    a1.refresh_from_db()
    services.subcase_transition(principal=PRINCIPAL, sub_case=a1, transition="mark_allocated", expected_version=2)

    # Naming the allocated passenger, or dissolving the group it belongs to, are both refused.
    for body in ({"groups": [[a1.urn]]}, {"groups": [[a2.urn]]}, {}):
        response = group(operator, case, body)
        assert response.status_code == 409, body
        assert response.json()["type"].endswith("/regroup-not-allowed")
        assert response.json()["subCaseUrns"] == [a1.urn]
    a2.refresh_from_db()
    assert a2.version == 2 and PassengerGroup.objects.count() == 1


def test_late_passengers_are_grouped_without_touching_allocated_groups(operator):
    case = CaseFactory()
    early = SubCaseFactory(case=case, pnr="AAA111")
    group(operator, case)
    early.refresh_from_db()
    services.subcase_transition(principal=PRINCIPAL, sub_case=early, transition="mark_allocated", expected_version=2)
    late = SubCaseFactory(case=case, pnr="LAT001")
    response = group(operator, case)
    assert memberships(response) == [{early.urn}, {late.urn}]
    assert [g["label"] for g in response.json()["groups"]] == ["GRP-1", "GRP-2"]


def test_nothing_to_group_is_409(operator):
    case = CaseFactory()
    SubCaseFactory(case=case, status="CANCELLED")
    response = group(operator, case)
    assert response.status_code == 409 and response.json()["type"].endswith("/nothing-to-group")
