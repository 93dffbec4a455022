"""factory_boy factories for the policies domain."""

import factory

from policies.models import Policy, PolicyStatus, PolicyVersion

RULES = {
    "maxDistanceKm": 15,
    "minStars": 4,
    "maxNightlyRate": {"amount": "180.00", "currency": "EUR"},
    "mealAllowance": {"dinner": {"amount": "35.00", "currency": "EUR"}},
    "maxOccupancy": {"perRoom": 2, "familyException": True},
    "transport": True,
    "accessibleRoomForPrm": True,
    "regulation": "EU261",
}


class PolicyFactory(factory.django.DjangoModelFactory):
    """A DRAFT policy at version 1 with its version row."""

    class Meta:
        model = Policy
        skip_postgeneration_save = True

    airline = "IB"
    name = factory.Sequence(lambda n: f"Policy {n}")
    rules = factory.LazyFunction(lambda: dict(RULES))
    status = PolicyStatus.DRAFT
    created_by = "urn:nexa:user:factory"

    @factory.post_generation
    def with_version(self, create, extracted, **kwargs):
        if create:
            PolicyVersion.objects.create(
                policy=self,
                airline=self.airline,
                version=self.version,
                name=self.name,
                rules=self.rules,
                created_by=self.created_by,
            )


def active_policy(**fields) -> Policy:
    return PolicyFactory(status=PolicyStatus.ACTIVE, **fields)
