"""The shared API contract base can fail: a contract subclass whose ``check`` forgets its
``return``, returns something falsy, or declares the wrong status fails the generated test
(before issue 10, ``check(...) is not False`` let a check without ``return`` pass)."""

from functools import partial

import pytest

from nexa.platform.roles import Role
from tests.api_base import APIContractTests, RouteContract, client_with_token


def _forgets_to_return(response, objects):
    response.json()["items"] == ["never"]  # noqa: B015 - the bug under test: no return


def _returns_a_truthy_non_bool(response, objects):
    return response.json()["items"]  # a list, not a verdict


class _OperatorsContract(APIContractTests):
    """Deliberately not ``Test…``: never collected; its generated tests are called by hand below."""

    def make_objects(self, airline):
        return {}


def _contract(**route_kwargs) -> tuple[_OperatorsContract, RouteContract]:
    route = RouteContract("list operators", "GET", "/v1/operators", min_role=Role.AIRPORT_OPERATOR, **route_kwargs)
    contract = type("BrokenOperatorsContract", (_OperatorsContract,), {"routes": (route,)})()
    return contract, route


def _role_matrix(token_for, **route_kwargs):
    contract, route = _contract(**route_kwargs)
    client_as = partial(client_with_token, token_for)
    contract.test_role_matrix(route, Role.ADMIN, contract.make_objects("IB"), client_as)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "broken",
    [
        {"check": _forgets_to_return},
        {"check": lambda response, objects: False},
        {"check": _returns_a_truthy_non_bool},
        {"expect_status": 201},
    ],
    ids=["check-without-return", "check-false", "check-truthy-not-true", "wrong-status"],
)
def test_a_broken_contract_fails(token_for, broken):
    with pytest.raises(AssertionError):
        _role_matrix(token_for, **broken)


@pytest.mark.django_db
def test_a_sound_contract_passes(token_for):
    _role_matrix(token_for, check=lambda response, objects: isinstance(response.json()["items"], list))


@pytest.mark.django_db
def test_a_refused_role_must_be_a_403(token_for):
    contract, route = _contract()
    client_as = partial(client_with_token, token_for)
    # FINANCE_AUDIT may not list operators: the base expects the 403 and passes …
    contract.test_role_matrix(route, Role.FINANCE_AUDIT, {}, client_as)
    # … and a contract that wrongly allows it fails.
    wrong = RouteContract("list operators", "GET", "/v1/operators", any_of=(Role.FINANCE_AUDIT,))
    with pytest.raises(AssertionError):
        contract.test_role_matrix(wrong, Role.FINANCE_AUDIT, {}, client_as)
