"""URNs: urn:nexa:<kind>:<time-ordered id>; malformed or wrong-kind URNs are 400 problems."""

import uuid

import pytest

from nexa.platform.urns import InvalidUrn, new_urn, parse_urn


def test_new_urns_parse_back_and_sort_by_creation_time():
    urns = [new_urn("case") for _ in range(50)]
    assert [parse_urn(u, "case").kind for u in urns] == ["case"] * 50
    ids = [parse_urn(u).id for u in urns]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)


def test_unknown_kind_cannot_be_minted():
    with pytest.raises(ValueError):
        new_urn("spaceship")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "case",
        "urn:nexa:case:",
        "urn:nexa:case:not-a-uuid",
        "urn:other:case:" + str(uuid.uuid4()),
        "urn:nexa:spaceship:" + str(uuid.uuid4()),
        "urn:nexa:case:" + str(uuid.uuid4()).upper(),
        "urn:nexa:case:" + str(uuid.uuid4()) + "x",
        " urn:nexa:case:" + str(uuid.uuid4()),
        123,
        None,
    ],
)
def test_malformed_urns_are_refused(value):
    with pytest.raises(InvalidUrn):
        parse_urn(value)


def test_wrong_kind_is_refused():
    with pytest.raises(InvalidUrn, match="expected a urn:nexa:case"):
        parse_urn(new_urn("subcase"), "case")


@pytest.mark.django_db
@pytest.mark.urls("tests.platform.contract_urls")
@pytest.mark.parametrize("value", ["garbage", "urn:nexa:subcase:" + str(uuid.uuid4())])
def test_api_answers_400_problem_for_bad_urns(client_for, value):
    response = client_for().get(f"/v1/_test/cases/{value}")
    assert response.status_code == 400
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"][0]["field"] == "urn"


@pytest.mark.django_db
@pytest.mark.urls("tests.platform.contract_urls")
def test_api_accepts_a_good_urn(client_for):
    urn = new_urn("case")
    response = client_for().get(f"/v1/_test/cases/{urn}")
    assert response.status_code == 200
    assert response.json() == {"kind": "case", "id": urn.rsplit(":", 1)[1]}
