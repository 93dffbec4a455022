"""Passenger grouping rules (pure functions; :func:`cases.services.passenger_groups_create` applies them).

A passenger group is the unit rooms are allocated to. The rules:

* Automatic grouping puts everyone on the same PNR together and never mixes PNRs. That keeps a
  passenger with special needs with their PNR companions, and an unaccompanied minor either alone
  or with the other passengers of their own PNR — never with strangers.
* Explicit groups are the operator's choice, with one hard rule: a group holding an unaccompanied
  minor may hold only passengers of that minor's PNR.
* A group whose passengers span more than one tier is flagged ``mixed_tier``.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from cases.models import SpecialNeed

LABEL_PREFIX = "GRP-"


@dataclass(frozen=True, slots=True)
class Traveller:
    """What grouping needs to know about a sub-case."""

    key: Hashable
    pnr: str
    tier: str
    special_needs: frozenset[str] = frozenset()

    @property
    def is_unaccompanied_minor(self) -> bool:
        return SpecialNeed.UNACCOMPANIED_MINOR in self.special_needs


def automatic_groups(travellers: Sequence[Traveller]) -> list[list[Traveller]]:
    """One group per PNR, in the order each PNR first appears."""
    by_pnr: dict[str, list[Traveller]] = {}
    for traveller in travellers:
        by_pnr.setdefault(traveller.pnr, []).append(traveller)
    return list(by_pnr.values())


def unaccompanied_minor_with_strangers(group: Sequence[Traveller]) -> Traveller | None:
    """The first unaccompanied minor in ``group`` who shares it with someone of another PNR."""
    for traveller in group:
        if traveller.is_unaccompanied_minor and any(other.pnr != traveller.pnr for other in group):
            return traveller
    return None


def is_mixed_tier(group: Sequence[Traveller]) -> bool:
    return len({traveller.tier for traveller in group}) > 1


def group_label(number: int) -> str:
    return f"{LABEL_PREFIX}{number}"


def label_number(label: str) -> int:
    """``"GRP-7"`` → 7 (0 for a label not made by :func:`group_label`)."""
    suffix = label.removeprefix(LABEL_PREFIX)
    return int(suffix) if label.startswith(LABEL_PREFIX) and suffix.isdigit() else 0
