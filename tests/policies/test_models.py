"""The database itself keeps one ACTIVE policy per airline and scope (absent fields collide too)."""

import pytest
from django.db import IntegrityError, transaction

from tests.policies.factories import PolicyFactory, active_policy

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("scope", [{}, {"scope_airport": "MAD"}, {"scope_airport": "MAD", "scope_tier": "FIRST"}])
def test_a_second_active_policy_for_one_scope_is_refused_by_the_index(scope):
    active_policy(**scope)
    with pytest.raises(IntegrityError, match="policy_one_active_per_scope"), transaction.atomic():
        active_policy(**scope)


def test_other_scopes_airlines_and_statuses_do_not_collide():
    active_policy(scope_airport="MAD")
    active_policy(scope_airport="MAD", scope_tier="FIRST")
    active_policy(scope_airport="MAD", airline="LH")
    PolicyFactory(scope_airport="MAD")
    PolicyFactory(scope_airport="MAD", status="ARCHIVED")
    PolicyFactory(scope_airport="MAD", status="ARCHIVED")
