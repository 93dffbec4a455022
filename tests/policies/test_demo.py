"""Demo policies: seeded through the services, idempotent, and they resolve for both demo disruptions."""

import pytest

from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from policies import selectors, services
from policies.models import Policy

pytestmark = pytest.mark.django_db


def _admin(airline):
    return Principal(
        airline=airline, role=Role.ADMIN, operator_urn=f"urn:nexa:user:{airline.lower()}-admin", subject="t"
    )


def test_demo_policies_are_active_idempotent_and_resolve_for_the_demo_disruptions():
    assert services.demo_policies_seed(principal_for=_admin) == [
        "policies IB: 3 active (3 new)",
        "policies LH: 3 active (3 new)",
    ]
    assert services.demo_policies_seed(principal_for=_admin) == [
        "policies IB: 3 active (0 new)",
        "policies LH: 3 active (0 new)",
    ]
    assert Policy.objects.count() == 6
    ib = selectors.policy_resolve(principal=_admin("IB"), airport="MAD", tier="ECONOMY", cause="CANCELLATION")
    assert ib.policy.name == "Iberia Madrid"
    lh = selectors.policy_resolve(principal=_admin("LH"), airport="FRA", tier="ECONOMY", cause="DELAY")
    assert lh.policy.name == "Lufthansa Frankfurt overnight delay" and len(lh.candidates) == 2
