"""Commands of the cases domain: every write to cases' tables goes through one of these.

Each runs in one transaction, takes the :class:`~nexa.platform.auth.Principal`, writes audit rows
(URNs, statuses and counts only — never names or contact details, because audit rows are
immutable and outlive the passengers' data) and publishes its events through the outbox.

Concurrency: every write locks the case row first (``SELECT … FOR UPDATE``), so writes to one
case are serialised and the derived case status is always computed from committed sub-case
states; sub-case writes are additionally guarded by their ``version`` (optimistic concurrency,
``UPDATE … WHERE version = expected``). The one exception is :func:`subcase_compensate`, which
changes no status and locks only its sub-case (its docstring says why and why it cannot deadlock).

One module per use case; callers import this package (``from cases import services``), which
re-exports every public name:

- :mod:`.guards` — the seam for entity locks (write guards ``operators`` registers);
- :mod:`.declare` — declaring a case; :mod:`.manifest` — appending passengers;
- :mod:`.transitions` — sub-case transitions, and the saga's failure path to review;
- :mod:`.groups` — passenger groups; :mod:`.group_split` — splitting groups (manual review's split);
  :mod:`.privacy` — anonymising passenger data;
- :mod:`.compensation` — compensation requests, saga retry and cancel;
- :mod:`.transfers` — transport transfers;
- :mod:`.entitlements` — the entitlement facts and the stored entitlement snapshots;
- :mod:`.demand` — demand waves: asking for rooms, approving or rejecting the request;
- :mod:`.allocation` — allocating an approved demand wave (issue 12); :mod:`.reallocate` — allocating again
  the passengers a review item holds, after a policy relaxation;
- :mod:`.booking` — book-rooms (room sagas), manual reservations, the room release sweep;
- :mod:`.rebook` — manual review's rebook (plan at one hotel, then its room sagas) and override (manual
  reservations of a confirmed offer);
- :mod:`._common` — the shared steps (problems, case lock, FSM transition with OCC, case status).
"""

from cases.services.allocation import allocation_create
from cases.services.booking import (
    MANUAL_BOOKING_PATHS,
    case_book_rooms,
    reservation_manual_book,
    reservations_release_sweep,
    subcases_advance_by_system,
)
from cases.services.compensation import (
    CANCELLABLE_RUN_STATUSES,
    NOT_COMPENSABLE_STATUSES,
    RETRYABLE_RUN_STATUSES,
    saga_run_cancel,
    saga_run_retry,
    subcase_compensate,
)
from cases.services.declare import DEPARTURE_DATE_TOLERANCE, DUPLICATE_CASE_CONSTRAINT, NOTE_MAX_LENGTH, case_declare
from cases.services.demand import (
    DEMAND_MAX_NIGHTS,
    DEMAND_REASON_MAX_LENGTH,
    RESOLVED_DEMAND_STATUSES,
    demand_approval_ttl,
    demand_approve,
    demand_reject,
    demand_request,
    estimated_rooms,
)
from cases.services.entitlements import (
    case_entitlement_facts_set,
    entitlement_snapshot_store,
    subcase_reroute_record,
)
from cases.services.group_split import SPLITTABLE_SUBCASE_STATUSES, passenger_group_split
from cases.services.groups import passenger_groups_create
from cases.services.guards import SubCaseWriteGuard, subcase_write_guard_register, subcase_write_guard_unregister
from cases.services.manifest import SUBCASE_INSERT_BATCH, manifest_append
from cases.services.privacy import REDACTED, case_passenger_data_purge
from cases.services.reallocate import Reallocation, subcases_reallocate
from cases.services.rebook import (
    HotelPlan,
    ManualOffer,
    subcases_book_at_hotel,
    subcases_book_manually,
    subcases_manual_offer_find,
    subcases_plan_at_hotel,
)
from cases.services.transfers import (
    TRANSFER_DEFAULT_PROVIDER,
    TRANSFER_MAX_SUBCASES,
    TRANSFER_SETTLED_RUN_STATUSES,
    transfers_request,
)
from cases.services.transitions import subcase_send_to_review_by_system, subcase_transition

__all__ = [
    "CANCELLABLE_RUN_STATUSES",
    "DEMAND_MAX_NIGHTS",
    "DEMAND_REASON_MAX_LENGTH",
    "DEPARTURE_DATE_TOLERANCE",
    "DUPLICATE_CASE_CONSTRAINT",
    "MANUAL_BOOKING_PATHS",
    "NOTE_MAX_LENGTH",
    "NOT_COMPENSABLE_STATUSES",
    "REDACTED",
    "RESOLVED_DEMAND_STATUSES",
    "RETRYABLE_RUN_STATUSES",
    "SPLITTABLE_SUBCASE_STATUSES",
    "SUBCASE_INSERT_BATCH",
    "TRANSFER_DEFAULT_PROVIDER",
    "TRANSFER_MAX_SUBCASES",
    "TRANSFER_SETTLED_RUN_STATUSES",
    "HotelPlan",
    "ManualOffer",
    "Reallocation",
    "SubCaseWriteGuard",
    "allocation_create",
    "case_book_rooms",
    "case_declare",
    "case_entitlement_facts_set",
    "case_passenger_data_purge",
    "demand_approval_ttl",
    "demand_approve",
    "demand_reject",
    "demand_request",
    "entitlement_snapshot_store",
    "estimated_rooms",
    "manifest_append",
    "passenger_group_split",
    "passenger_groups_create",
    "reservation_manual_book",
    "reservations_release_sweep",
    "saga_run_cancel",
    "saga_run_retry",
    "subcase_compensate",
    "subcase_reroute_record",
    "subcase_send_to_review_by_system",
    "subcase_transition",
    "subcase_write_guard_register",
    "subcase_write_guard_unregister",
    "subcases_advance_by_system",
    "subcases_book_at_hotel",
    "subcases_book_manually",
    "subcases_manual_offer_find",
    "subcases_plan_at_hotel",
    "subcases_reallocate",
    "transfers_request",
]
