"""Commands of the cases domain: every write to cases' tables goes through one of these.

Each runs in one transaction, takes the :class:`~nexa.platform.auth.Principal`, writes audit rows
(URNs, statuses and counts only — never names or contact details, because audit rows are
immutable and outlive the passengers' data) and publishes its events through the outbox.

Concurrency: every write locks the case row first (``SELECT … FOR UPDATE``), so writes to one
case are serialised and the derived case status is always computed from committed sub-case
states; sub-case writes are additionally guarded by their ``version`` (optimistic concurrency,
``UPDATE … WHERE version = expected``). The one exception is :func:`subcase_compensate`, which
changes no status and locks only its sub-case (its docstring says why and why it cannot deadlock).
"""

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.db.models.functions import Now
from django_fsm import can_proceed

from audit import services as audit
from booking.selectors import airport_get
from cases import events, grouping, selectors
from cases.manifest import (
    ManifestValidation,
    PassengerRow,
    normalise_flight_number,
    validate_rows,
)
from cases.models import (
    GROUPABLE_SUBCASE_STATUSES,
    SUBCASE_TRANSITIONS,
    Case,
    CaseStatus,
    Cause,
    PassengerGroup,
    SubCase,
    SubCaseStatus,
    derive_case_status,
)
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, not_found_problem, validation_problem
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn

DUPLICATE_CASE_CONSTRAINT = "case_one_open_per_flight"
SUBCASE_INSERT_BATCH = 1000
NOTE_MAX_LENGTH = 4000
# A declared departure may sit one day either side of the flight date: flight dates are local,
# clients often send UTC, and an overnight departure crosses midnight.
DEPARTURE_DATE_TOLERANCE = dt.timedelta(days=1)


# --- the seam for entity locks ------------------------------------------------------------------------


class SubCaseWriteGuard(Protocol):
    """Asked before any sub-case changes, inside the writing transaction, with the case row locked.

    Raise a :class:`~nexa.platform.problems.Problem` to refuse the write — e.g. 409 with
    ``lockedBy``/``expiresInSeconds`` when another operator holds the sub-case's lock, or when
    ``fencing_token`` is older than the lock's current token. ``fencing_token`` is what the caller
    presented (``None`` when it presented none, e.g. automatic grouping).
    """

    def __call__(self, *, principal: Principal, sub_case: SubCase, fencing_token: int | None) -> None: ...


_subcase_write_guards: list[SubCaseWriteGuard] = []


def subcase_write_guard_register(guard: SubCaseWriteGuard) -> SubCaseWriteGuard:
    """Install a guard (the entity-lock module calls this from its ``AppConfig.ready``). Idempotent."""
    if guard not in _subcase_write_guards:
        _subcase_write_guards.append(guard)
    return guard


def subcase_write_guard_unregister(guard: SubCaseWriteGuard) -> None:
    if guard in _subcase_write_guards:
        _subcase_write_guards.remove(guard)


def _guard_subcase_write(*, principal: Principal, sub_case: SubCase, fencing_token: int | None) -> None:
    for guard in tuple(_subcase_write_guards):
        guard(principal=principal, sub_case=sub_case, fencing_token=fencing_token)


# --- problems ----------------------------------------------------------------------------------------


def _version_conflict(*, sub_case_urn: str, current_version: int | None, expected_version: int) -> Problem:
    return conflict_problem(
        slug="version-conflict",
        title="The sub-case changed since you read it",
        detail=(
            f"{sub_case_urn} is at version {current_version}, not {expected_version}; "
            "reload it and retry with the current version."
        ),
        version=current_version,
    )


def _illegal_transition(*, sub_case: SubCase, transition: str) -> Problem:
    allowed = sorted(t.name for t in sub_case.get_available_status_transitions())
    return conflict_problem(
        slug="illegal-transition",
        title="Transition not allowed from the current status",
        detail=(
            f"{sub_case.urn} is {sub_case.status}; {transition!r} is not possible from there. "
            f"Allowed: {', '.join(allowed) or 'none (final status)'}."
        ),
        currentStatus=sub_case.status,
        allowedTransitions=allowed,
        version=sub_case.version,
    )


def _duplicate_case(existing: Case) -> Problem:
    return conflict_problem(
        slug="duplicate-case",
        title="An open case already exists for this flight",
        detail=(
            f"{existing.flight_number} on {existing.flight_date} at {existing.airport} already has an open case "
            f"({existing.urn}); add passengers to it instead."
        ),
        existingCaseUrn=existing.urn,
    )


def _case_closed(case: Case) -> Problem:
    return conflict_problem(
        slug="case-closed",
        title="The case is closed",
        detail=f"{case.urn} is CLOSED; declare a new case for new passengers.",
    )


# --- shared steps --------------------------------------------------------------------------------------


def _lock_case(*, principal: Principal, case_id) -> Case:
    """The case row, locked for this transaction; 404 unless it belongs to the principal's airline."""
    try:
        return Case.objects.select_for_update().get(pk=case_id, airline=principal.airline)
    except Case.DoesNotExist:
        raise not_found_problem() from None


def _subcase_counts(case_id) -> dict[str, int]:
    counts = {status.value: 0 for status in SubCaseStatus}
    for row in SubCase.objects.filter(case_id=case_id).order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def _case_status_refresh(*, principal: Principal, case: Case, reason: str = "") -> Case:
    """Re-derive the locked case's status from its sub-cases; bump its version when the status
    changes (audited), and announce ``case:updated`` with the current counts either way."""
    counts = _subcase_counts(case.pk)
    status = derive_case_status(counts)
    if status != case.status:
        previous_status, previous_version = case.status, case.version
        Case.objects.filter(pk=case.pk).update(status=status, version=F("version") + 1, updated_at=Now())
        case.status, case.version = status, case.version + 1
        audit.record(
            principal=principal,
            action="case.status_changed",
            entity_urn=case.urn,
            case_urn=case.urn,
            reason=reason,
            before={"status": previous_status, "version": previous_version},
            after={"status": status, "version": case.version},
        )
    events.publish_case_updated(
        case_urn=case.urn, airline=case.airline, status=case.status, version=case.version, counts=counts
    )
    return case


def _transition_locked(
    *,
    principal: Principal,
    case: Case,
    sub_case: SubCase,
    transition: str,
    expected_version: int,
    reason: str = "",
    fencing_token: int | None = None,
    group: PassengerGroup | None = None,
    guarded: bool = True,
) -> SubCase:
    """Apply one FSM transition with an OCC version check; the caller holds the case row lock and
    re-derives the case status afterwards. ``group`` (for ``mark_grouped``) sets the membership.
    ``guarded=False`` skips the write guards (entity locks): only the saga's failure-to-review path
    passes it (docs/decisions.md)."""
    if sub_case.version != expected_version:
        raise _version_conflict(
            sub_case_urn=sub_case.urn, current_version=sub_case.version, expected_version=expected_version
        )
    if not can_proceed(getattr(sub_case, transition)):
        raise _illegal_transition(sub_case=sub_case, transition=transition)
    if guarded:
        _guard_subcase_write(principal=principal, sub_case=sub_case, fencing_token=fencing_token)

    before = {"status": sub_case.status, "version": sub_case.version}
    getattr(sub_case, transition)()  # the FSM method: sets the new status in memory
    changes: dict[str, Any] = {"status": sub_case.status}
    if group is not None:
        before["groupUrn"] = format_urn("group", sub_case.group_id) if sub_case.group_id else None
        changes["group"] = group
    updated = SubCase.objects.filter(pk=sub_case.pk, version=expected_version).update(
        **changes, version=F("version") + 1, updated_at=Now()
    )
    if not updated:
        current = SubCase.objects.filter(pk=sub_case.pk).values_list("version", flat=True).first()
        raise _version_conflict(sub_case_urn=sub_case.urn, current_version=current, expected_version=expected_version)
    sub_case.version = expected_version + 1
    after: dict[str, Any] = {"status": sub_case.status, "version": sub_case.version, "transition": transition}
    if group is not None:
        sub_case.group = group
        after["groupUrn"] = group.urn
    audit.record(
        principal=principal,
        action=f"subcase.{transition}",
        entity_urn=sub_case.urn,
        case_urn=case.urn,
        reason=reason,
        before=before,
        after=after,
    )
    events.publish_subcase_state_changed(
        sub_case_urn=sub_case.urn,
        case_urn=case.urn,
        airline=case.airline,
        status=sub_case.status,
        version=sub_case.version,
    )
    return sub_case


def _insert_subcases(
    *, case: Case, rows: Sequence[PassengerRow], on_progress: Callable[[int], None] | None = None
) -> list[SubCase]:
    created: list[SubCase] = []
    for start in range(0, len(rows), SUBCASE_INSERT_BATCH):
        batch = [
            SubCase(
                case=case,
                airline=case.airline,
                first_name=row.first_name,
                last_name=row.last_name,
                pnr=row.pnr,
                tier=row.tier,
                loyalty_tier=row.loyalty_tier,
                special_needs=list(row.special_needs),
                email=row.email,
                phone=row.phone,
                language=row.language,
                onward_flight=row.onward_flight,
            )
            for row in rows[start : start + SUBCASE_INSERT_BATCH]
        ]
        created.extend(SubCase.objects.bulk_create(batch))
        if on_progress is not None:
            on_progress(len(batch))
    return created


def _record_manifest_append(*, principal: Principal, case: Case, added: int, skipped: int) -> None:
    audit.record(
        principal=principal,
        action="case.manifest_appended",
        entity_urn=case.urn,
        case_urn=case.urn,
        after={"added": added, "skippedExisting": skipped},
    )


def _raise_if_invalid(validation: ManifestValidation) -> None:
    if validation.valid:
        return
    shown = len(validation.errors)
    detail = f"{validation.error_count} problem(s) in the passenger rows; nothing was added."
    if shown < validation.error_count:
        detail += f" The first {shown} are listed."
    raise validation_problem(validation.errors, detail=detail)


# --- cases ---------------------------------------------------------------------------------------------


def _declaration_errors(
    *, airport: str, flight_number: str, flight_date: dt.date, scheduled_departure: dt.datetime, cause: str, note: str
) -> tuple[list[dict[str, str]], str, str | None]:
    """Validate a declaration; returns (errors, normalised airport, normalised flight number)."""
    errors: list[dict[str, str]] = []
    airport_code = airport.strip().upper() if isinstance(airport, str) else ""
    catalog_airport = airport_get(iata=airport_code) if len(airport_code) == 3 else None
    if catalog_airport is None:
        errors.append({"field": "airport", "message": f"{airport!r} is not an IATA code in the airport catalog"})
    number = normalise_flight_number(flight_number)
    if number is None:
        errors.append({"field": "flightNumber", "message": "must be a flight number such as IB3166"})
    if cause not in Cause.values:
        errors.append({"field": "cause", "message": f"must be one of {', '.join(Cause.values)}"})
    if not isinstance(flight_date, dt.date) or isinstance(flight_date, dt.datetime):
        errors.append({"field": "flightDate", "message": "must be a date (YYYY-MM-DD)"})
    if not isinstance(scheduled_departure, dt.datetime) or scheduled_departure.tzinfo is None:
        errors.append({"field": "scheduledDeparture", "message": "must be a date-time with a UTC offset"})
    elif catalog_airport is not None and isinstance(flight_date, dt.date):
        local = scheduled_departure.astimezone(ZoneInfo(catalog_airport.time_zone))
        if abs(dt.datetime.combine(local.date(), dt.time()) - dt.datetime.combine(flight_date, dt.time())) > (
            DEPARTURE_DATE_TOLERANCE
        ):
            errors.append(
                {
                    "field": "scheduledDeparture",
                    "message": f"is {local.date()} local time at {catalog_airport.iata}, "
                    f"more than a day from flightDate {flight_date}",
                }
            )
    if len(note) > NOTE_MAX_LENGTH:
        errors.append({"field": "note", "message": f"at most {NOTE_MAX_LENGTH} characters"})
    return errors, airport_code, number


def case_declare(
    *,
    principal: Principal,
    airport: str,
    flight_number: str,
    flight_date: dt.date,
    scheduled_departure: dt.datetime,
    cause: str,
    note: str = "",
    passengers: Sequence[Mapping[str, Any]] = (),
) -> Case:
    """Declare a disruption, optionally with its manifest. Invalid input is a 400 problem naming
    every bad field (``passengers[3].email`` …); a second open case for the same flight, date and
    airport is a 409 problem carrying ``existingCaseUrn``."""
    errors, airport_code, number = _declaration_errors(
        airport=airport,
        flight_number=flight_number,
        flight_date=flight_date,
        scheduled_departure=scheduled_departure,
        cause=cause,
        note=note,
    )
    validation = validate_rows(list(passengers), field_prefix="passengers")
    errors.extend(validation.errors)
    if errors:
        raise validation_problem(errors)

    with transaction.atomic():
        duplicate_of = Case.objects.filter(
            airline=principal.airline, flight_number=number, flight_date=flight_date, airport=airport_code
        ).exclude(status=CaseStatus.CLOSED)
        existing = duplicate_of.first()
        if existing is not None:
            raise _duplicate_case(existing)
        case = Case(
            airline=principal.airline,
            airport=airport_code,
            flight_number=number,
            flight_date=flight_date,
            scheduled_departure=scheduled_departure,
            cause=cause,
            note=note,
            declared_by=principal.operator_urn,
            retention_until=flight_date + dt.timedelta(days=settings.NEXA_PASSENGER_DATA_RETENTION_DAYS),
        )
        try:
            with transaction.atomic():
                case.save(force_insert=True)
        except IntegrityError as error:
            # Lost the race against a concurrent declaration of the same flight.
            existing = duplicate_of.first() if DUPLICATE_CASE_CONSTRAINT in str(error) else None
            if existing is None:
                raise
            raise _duplicate_case(existing) from None
        audit.record(
            principal=principal,
            action="case.declared",
            entity_urn=case.urn,
            case_urn=case.urn,
            after={
                "airport": case.airport,
                "flightNumber": case.flight_number,
                "flightDate": case.flight_date.isoformat(),
                "scheduledDeparture": case.scheduled_departure.isoformat(),
                "cause": case.cause,
                "status": case.status,
                "retentionUntil": case.retention_until.isoformat(),
            },
        )
        if validation.rows:
            _insert_subcases(case=case, rows=validation.rows)
            _record_manifest_append(principal=principal, case=case, added=len(validation.rows), skipped=0)
        _case_status_refresh(principal=principal, case=case)
    return case


def manifest_append(
    *,
    principal: Principal,
    case: Case,
    rows: Sequence[Mapping[str, Any]],
    skip_existing: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> list[SubCase]:
    """Append passengers to the case's manifest, all or nothing.

    Every row is validated first; any invalid row (or a passenger already on the manifest, or
    twice in ``rows``) is a 400 problem listing each error, and nothing is inserted.
    ``skip_existing`` (re-running an import) skips passengers already on the manifest instead.
    ``on_progress(n)`` is called after each inserted batch of ``n`` rows.
    """
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        if case.status == CaseStatus.CLOSED:
            raise _case_closed(case)
        validation = validate_rows(
            list(rows),
            existing=selectors.case_passenger_identities(principal=principal, case=case),
            skip_existing=skip_existing,
            field_prefix="passengers",
        )
        _raise_if_invalid(validation)
        created = _insert_subcases(case=case, rows=validation.rows, on_progress=on_progress)
        _record_manifest_append(principal=principal, case=case, added=len(created), skipped=validation.skipped)
        _case_status_refresh(principal=principal, case=case)
    return created


# --- sub-cases -----------------------------------------------------------------------------------------


def subcase_transition(
    *,
    principal: Principal,
    sub_case: SubCase,
    transition: str,
    expected_version: int,
    reason: str = "",
    fencing_token: int | None = None,
) -> SubCase:
    """Move a sub-case along its state machine if it is still at ``expected_version``.

    409 ``illegal-transition`` (with ``status`` and ``allowedTransitions``) when the FSM forbids it,
    409 ``version-conflict`` (with the current ``version``) when someone moved it first. Then the
    case status is re-derived (its version bumps when it changes), and ``subcase:state-changed``
    and ``case:updated`` are published.
    """
    if transition not in SUBCASE_TRANSITIONS:
        raise validation_problem(
            [{"field": "transition", "message": f"must be one of {', '.join(SUBCASE_TRANSITIONS)}"}]
        )
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=sub_case.case_id)
        try:
            current = SubCase.objects.get(pk=sub_case.pk, airline=principal.airline)
        except SubCase.DoesNotExist:
            raise not_found_problem() from None
        current = _transition_locked(
            principal=principal,
            case=case,
            sub_case=current,
            transition=transition,
            expected_version=expected_version,
            reason=reason,
            fencing_token=fencing_token,
        )
        current.case = _case_status_refresh(principal=principal, case=case, reason=reason)
        current.refresh_from_db(fields=["updated_at"])
    return current


# --- passenger groups ---------------------------------------------------------------------------------


def _explicit_groups(groups: object, *, by_id: dict, case: Case) -> tuple[list[list[SubCase]], list[dict[str, str]]]:
    """Parse ``[[subcase_urn, …], …]`` against the case's sub-cases; (groups, errors)."""
    errors: list[dict[str, str]] = []
    if not isinstance(groups, list) or not groups:
        return [], [{"field": "groups", "message": "must be a non-empty list of lists of sub-case URNs"}]
    parsed: list[list[SubCase]] = []
    seen: dict = {}
    for index, members in enumerate(groups):
        where = f"groups[{index}]"
        if not isinstance(members, list) or not members:
            errors.append({"field": where, "message": "must be a non-empty list of sub-case URNs"})
            continue
        group: list[SubCase] = []
        for position, raw in enumerate(members):
            field_name = f"{where}[{position}]"
            try:
                urn = parse_urn(raw, "subcase")
            except InvalidUrn as error:
                errors.append({"field": field_name, "message": error.message})
                continue
            sub_case = by_id.get(urn.id)
            if sub_case is None:
                errors.append({"field": field_name, "message": f"{raw} is not a passenger of {case.urn}"})
            elif urn.id in seen:
                errors.append({"field": field_name, "message": f"{raw} is already in {seen[urn.id]}"})
            else:
                seen[urn.id] = where
                group.append(sub_case)
        parsed.append(group)
    return parsed, errors


def _traveller(sub_case: SubCase) -> grouping.Traveller:
    return grouping.Traveller(
        key=sub_case.pk, pnr=sub_case.pnr, tier=sub_case.tier, special_needs=frozenset(sub_case.special_needs)
    )


def passenger_groups_create(
    *, principal: Principal, case: Case, groups: Sequence[Sequence[str]] | None = None
) -> list[PassengerGroup]:
    """(Re)group the case's passengers; returns the groups created, in label order.

    ``groups=None`` groups automatically (one group per PNR, see :mod:`cases.grouping`). Explicit
    ``[[subcase_urn, …], …]`` groups are taken as given (each URN of this case, each passenger
    once, an unaccompanied minor only with their own PNR); every other passenger still PENDING or
    GROUPED is grouped automatically. Previous groups of the affected passengers are replaced.
    Only PENDING/GROUPED passengers may be (re)grouped: touching anyone further along — directly
    or by dissolving a group they belong to — is a 409. Each grouped sub-case goes through the
    ``mark_grouped`` transition (version bump, audit row, ``subcase:state-changed``).
    """
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        sub_cases = list(
            SubCase.objects.filter(case_id=case.pk)
            .exclude(status=SubCaseStatus.CANCELLED)
            .order_by("created_at", "id")
            .only("id", "case_id", "airline", "group_id", "pnr", "tier", "special_needs", "status", "version")
        )
        by_id = {sub_case.pk: sub_case for sub_case in sub_cases}

        explicit: list[list[SubCase]] = []
        if groups is not None:
            explicit, errors = _explicit_groups(groups, by_id=by_id, case=case)
            for index, group in enumerate(explicit):
                minor = grouping.unaccompanied_minor_with_strangers([_traveller(s) for s in group])
                if minor is not None:
                    errors.append(
                        {
                            "field": f"groups[{index}]",
                            "message": f"{format_urn('subcase', minor.key)} is an unaccompanied minor and may "
                            "only be grouped with passengers of their own PNR",
                        }
                    )
            if errors:
                raise validation_problem(errors)

        named = [sub_case for group in explicit for sub_case in group]
        too_late = [s for s in named if s.status not in GROUPABLE_SUBCASE_STATUSES]
        named_ids = {s.pk for s in named}
        rest = [s for s in sub_cases if s.status in GROUPABLE_SUBCASE_STATUSES and s.pk not in named_ids]
        scope_ids = named_ids | {s.pk for s in rest}
        replaced_group_ids = {by_id[pk].group_id for pk in scope_ids if by_id[pk].group_id}
        # Dissolving a group also regroups its other members: they must still be groupable too.
        too_late += [s for s in sub_cases if s.group_id in replaced_group_ids and s.pk not in scope_ids]
        if too_late:
            listed = ", ".join(f"{s.urn} ({s.status})" for s in too_late[:10])
            raise conflict_problem(
                slug="regroup-not-allowed",
                title="Passengers past grouping cannot be regrouped",
                detail=f"Regrouping is allowed only while passengers are PENDING or GROUPED: {listed}.",
                subCaseUrns=[s.urn for s in too_late],
            )
        if not scope_ids:
            raise conflict_problem(
                slug="nothing-to-group",
                title="No passenger can be grouped",
                detail=f"{case.urn} has no passengers that are PENDING or GROUPED.",
            )

        partition = explicit + [
            [by_id[t.key] for t in group] for group in grouping.automatic_groups([_traveller(s) for s in rest])
        ]
        for replaced in PassengerGroup.objects.filter(pk__in=replaced_group_ids).order_by("created_at", "id"):
            audit.record(
                principal=principal,
                action="group.dissolved",
                entity_urn=replaced.urn,
                case_urn=case.urn,
                before={"label": replaced.label, "mixedTier": replaced.mixed_tier},
            )
        PassengerGroup.objects.filter(pk__in=replaced_group_ids).delete()
        remaining_labels = PassengerGroup.objects.filter(case_id=case.pk).values_list("label", flat=True)
        next_number = max((grouping.label_number(label) for label in remaining_labels), default=0) + 1

        created = PassengerGroup.objects.bulk_create(
            PassengerGroup(
                case=case,
                airline=case.airline,
                label=grouping.group_label(next_number + index),
                mixed_tier=grouping.is_mixed_tier([_traveller(s) for s in members]),
            )
            for index, members in enumerate(partition)
        )
        for group, members in zip(created, partition, strict=True):
            audit.record(
                principal=principal,
                action="group.created",
                entity_urn=group.urn,
                case_urn=case.urn,
                after={"label": group.label, "mixedTier": group.mixed_tier, "subCaseUrns": [s.urn for s in members]},
            )
            for sub_case in members:
                _transition_locked(
                    principal=principal,
                    case=case,
                    sub_case=sub_case,
                    transition="mark_grouped",
                    expected_version=sub_case.version,
                    group=group,
                )
        _case_status_refresh(principal=principal, case=case)
    return created


# --- personal data ------------------------------------------------------------------------------------

REDACTED = "REDACTED"


def _pnr_pseudonym(*, case: Case, pnr: str) -> str:
    """A stable 6-character stand-in for a PNR within one case: who travelled together stays
    visible, the real booking reference does not."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{case.pk}:{pnr}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:6]


def case_passenger_data_purge(*, principal: Principal, case: Case, today: dt.date) -> int:
    """Anonymise the passengers of a CLOSED case whose ``retention_until`` is before ``today``:
    names become ``REDACTED``; email, phone, onward flight and special needs are emptied; the PNR is
    replaced by a pseudonym. Tier, loyalty tier, language, status and the audit trail (which never
    held personal data) stay. Returns how many sub-cases were anonymised (0 when nothing is due,
    so re-running is harmless)."""
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        if case.status != CaseStatus.CLOSED or case.retention_until >= today:
            return 0
        pending = SubCase.objects.filter(case_id=case.pk, anonymised_at__isnull=True)
        anonymised = 0
        for pnr in sorted(set(pending.values_list("pnr", flat=True))):
            anonymised += pending.filter(pnr=pnr).update(
                first_name=REDACTED,
                last_name=REDACTED,
                email="",
                phone="",
                onward_flight="",
                special_needs=[],
                pnr=_pnr_pseudonym(case=case, pnr=pnr),
                anonymised_at=Now(),
                version=F("version") + 1,
                updated_at=Now(),
            )
        # Notification rows keep full addresses for sending and retries; they go with the rest.
        from notifications.services import notification_recipients_purge  # notifications builds on cases

        notification_recipients_purge(case=case)
        if anonymised:
            audit.record(
                principal=principal,
                action="case.passenger_data_purged",
                entity_urn=case.urn,
                case_urn=case.urn,
                after={"anonymisedSubCases": anonymised, "retentionUntil": case.retention_until.isoformat()},
            )
    return anonymised


# --- demo data ----------------------------------------------------------------------------------------


def demo_disruptions_seed(*, principal_for: Callable[[str], Principal], today: dt.date | None = None) -> list:
    """Declare (or top up) the realistic demo disruptions of :mod:`cases.demo` — open cases with
    grouped manifests — for ``manage.py seed_demo``; ``principal_for(airline)`` declares them.
    Idempotent: re-running adds nothing twice. Returns one ``cases.demo.DemoSeedResult`` per case."""
    from cases import demo  # cases.demo builds on the services above

    return demo.demo_disruptions_ensure(principal_for=principal_for, today=today)


# --- compensation sagas -----------------------------------------------------------------------------

NOT_COMPENSABLE_STATUSES = frozenset({SubCaseStatus.CLOSED, SubCaseStatus.CANCELLED, SubCaseStatus.FAILED})
RETRYABLE_RUN_STATUSES = frozenset({"FAILED"})
CANCELLABLE_RUN_STATUSES = frozenset({"PENDING", "RUNNING", "COMPLETED"})


_COMPENSATE_LOCK_SQL = f"""
SELECT s.case_id, s.status, s.version
  FROM {SubCase._meta.db_table} s
 WHERE s.id = %s AND s.airline = %s
   AND EXISTS (SELECT 1 FROM {Case._meta.db_table} c WHERE c.id = s.case_id FOR KEY SHARE)
   FOR NO KEY UPDATE OF s
"""  # noqa: S608 (table names from the models)


def subcase_compensate(
    *,
    principal: Principal,
    sub_case_urn: str,
    expected_version: int,
    items: Any,
    reason: Any,
    fencing_token: int | None = None,
):
    """Accept a compensation request: validate it, check the version (OCC) and the write guards (entity
    locks, fencing token), and in ONE transaction bump the sub-case's version, create the saga run and
    its steps and write the outbox rows (``subcase:state-changed``, ``saga:requested``) that make a worker
    execute it.

    Returns ``(run, created)``. The same request again (same body, same version: same payload hash)
    returns the existing run with ``created=False`` and changes nothing. Invalid items are a 400/422
    problem (:mod:`cases.compensation`); an unknown sub-case (or another airline's) a 404; a stale
    version a 409 with the current ``version``.

    Concurrency: this is the hot path of a disruption (every passenger of a flight at once), so unlike
    the other commands it does not lock the case row ``FOR UPDATE`` — that would serialise a whole
    flight's compensations. It locks only the sub-case row (``FOR NO KEY UPDATE``: its status does not
    change, so the derived case status cannot either) after taking the case row ``FOR KEY SHARE``, the
    lock the run's foreign key to the case needs anyway: taking it first keeps the lock order
    case → sub-case of every other command, so the two cannot deadlock.
    """
    from django.utils import timezone

    from cases import compensation, saga
    from cases.models import SagaRun
    from nexa.platform.context import current_correlation_urn
    from nexa.platform.urns import new_urn

    sub_case_id = parse_urn(sub_case_urn, "subcase").id  # malformed: 400 (nexa.platform.problems)
    request = compensation.validate_request(airline=principal.airline, items=items, reason=reason, now=timezone.now())
    digest = compensation.payload_hash(version=expected_version, items=items, reason=reason)
    limits = compensation.limits_for(principal.airline)
    with transaction.atomic():
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(_COMPENSATE_LOCK_SQL, [sub_case_id, principal.airline])
            row = cursor.fetchone()
        if row is None:
            raise not_found_problem()
        case_id, status, version = row
        current = SubCase(id=sub_case_id, case_id=case_id, airline=principal.airline, status=status, version=version)
        existing = SagaRun.objects.filter(sub_case_id=sub_case_id, payload_hash=digest).first()
        if existing is not None:
            return existing, False
        compensation.refuse_while_circuit_open(request)
        if version != expected_version:
            raise _version_conflict(
                sub_case_urn=current.urn, current_version=version, expected_version=expected_version
            )
        if status in NOT_COMPENSABLE_STATUSES:
            raise conflict_problem(
                slug="subcase-not-compensable",
                title="The sub-case cannot be compensated",
                detail=f"{current.urn} is {status}; compensation needs an open sub-case.",
                currentStatus=status,
                version=version,
            )
        _guard_subcase_write(principal=principal, sub_case=current, fencing_token=fencing_token)
        # Limits per passenger per disruption over every run, summed under this row lock: a concurrent
        # compensation (or retry) of the same passenger waits for it and then sees this run's steps.
        settlement = compensation.settle(request, limits)
        compensation.check_limits(
            limits=limits, granted=compensation.granted_for(sub_case_id), adding=settlement.totals
        )
        SubCase.objects.filter(pk=sub_case_id).update(version=F("version") + 1, updated_at=Now())
        current.version = expected_version + 1
        run = SagaRun.objects.create(
            airline=principal.airline,
            case_id=case_id,
            sub_case_id=sub_case_id,
            payload=request.as_payload(),
            payload_hash=digest,
            correlation_urn=current_correlation_urn() or new_urn("correlation"),
            requested_by=principal.operator_urn,
            reason=request.reason,
            fx=settlement.fx,
        )
        steps = saga.create_steps(run, request.items, settled=settlement.amounts)
        case_urn = format_urn("case", case_id)
        audit.record(
            principal=principal,
            action="subcase.compensation_requested",
            entity_urn=current.urn,
            case_urn=case_urn,
            reason=request.reason,
            before={"version": expected_version},
            after={
                "version": current.version,
                "sagaUrn": run.urn,
                "items": [
                    {k: item[k] for k in ("type", "amount", "currency", "provider", "regulation") if k in item}
                    for item in request.items
                ],
                "steps": [step.name for step in steps],
            },
        )
        events.publish_subcase_state_changed(
            sub_case_urn=current.urn,
            case_urn=case_urn,
            airline=principal.airline,
            status=status,
            version=current.version,
        )
        saga.publish_requested(run)
    return run, True


def _run_state_conflict(run, action: str, allowed: frozenset[str]) -> Problem:
    return conflict_problem(
        slug="saga-run-state",
        title=f"The saga run cannot be {action} in its current status",
        detail=f"{run.urn} is {run.status}; {action} needs one of {', '.join(sorted(allowed))}.",
        currentStatus=run.status,
    )


def _lock_run(*, principal: Principal, run):
    from cases.models import SagaRun

    try:
        return (
            SagaRun.objects.select_for_update(of=("self",))  # only the run: the sub-case is locked after it
            .select_related("case", "sub_case")
            .get(pk=run.pk, airline=principal.airline)
        )
    except SagaRun.DoesNotExist:
        raise not_found_problem() from None


def saga_run_retry(*, principal: Principal, run, reason: str = ""):
    """Retry a FAILED run from its failed step: every step that is not COMPLETED runs again — the
    failed one and those compensated when it failed — each under a fresh idempotency key (its URN
    plus ``/retry-<n>``), so the provider makes a new effect instead of replaying the refusal or the
    voided card. A step whose outcome is unknown (``outcome_unknown``: timeout, 5xx, crash) keeps its
    original key: the worker resolves it with the provider first (cases.saga). 409 unless the run is
    FAILED, or when a compensation failed (a human must resolve it)."""
    from decimal import Decimal

    from cases import compensation, saga
    from cases.models import SagaRunStatus, SagaStepStatus

    limits = compensation.limits_for(principal.airline)
    with transaction.atomic():
        run = _lock_run(principal=principal, run=run)
        if run.status not in RETRYABLE_RUN_STATUSES:
            raise _run_state_conflict(run, "retried", RETRYABLE_RUN_STATUSES)
        if run.steps.filter(status=SagaStepStatus.COMPENSATION_FAILED).exists():
            raise conflict_problem(
                slug="saga-run-compensation-failed",
                title="A compensation of this run failed",
                detail=f"{run.urn} has a step whose compensation failed; resolve it manually before retrying.",
                currentStatus=run.status,
            )
        before = {"status": run.status, "category": run.failure_category, "retries": run.retries}
        # A retry grants again what the failure undid: it counts against the passenger's limits, checked
        # under the sub-case's row lock like a new compensation (lock order: run, then sub-case).
        SubCase.objects.select_for_update(no_key=True).filter(pk=run.sub_case_id).values_list("pk").first()
        steps = list(run.steps.exclude(status=SagaStepStatus.COMPLETED))
        regranted: dict[str, Decimal] = {}
        for step in steps:
            released = step.status in (SagaStepStatus.COMPENSATED, SagaStepStatus.SKIPPED) or (
                step.status == SagaStepStatus.FAILED and not step.outcome_unknown
            )
            if released and step.settled_amount is not None:
                regranted[step.kind] = regranted.get(step.kind, Decimal("0")) + step.settled_amount
        compensation.check_limits(limits=limits, granted=compensation.granted_for(run.sub_case_id), adding=regranted)
        for step in steps:
            # A step in doubt keeps its key: the worker first asks the provider what became of it, and
            # only a step the provider confirms it never executed gets a new key (cases.saga).
            if not step.outcome_unknown and (step.status != SagaStepStatus.SKIPPED or step.attempts):
                step.generation += 1
            step.status = SagaStepStatus.PENDING
            step.attempts = 0
            step.result = step.error = step.compensation = None
            step.started_at = step.completed_at = step.compensated_at = step.next_attempt_at = None
            step.save()
        run.status = SagaRunStatus.PENDING
        run.failure_category, run.failure, run.finished_at = "", None, None
        run.retries += 1
        run.save(update_fields=["status", "failure_category", "failure", "finished_at", "retries", "updated_at"])
        audit.record(
            principal=principal,
            action="saga.retried",
            entity_urn=run.urn,
            case_urn=run.case.urn,
            reason=reason,
            before=before,
            after={"status": run.status, "retries": run.retries},
        )
        saga.publish_requested(run)
    return run


def saga_run_cancel(*, principal: Principal, run, reason: str = ""):
    """Cancel a run: it becomes CANCELLING and the worker undoes what was done (completed steps in
    reverse), then CANCELLED. 409 unless PENDING, RUNNING or COMPLETED."""
    from cases import saga
    from cases.models import SagaRunStatus

    with transaction.atomic():
        run = _lock_run(principal=principal, run=run)
        if run.status not in CANCELLABLE_RUN_STATUSES:
            raise _run_state_conflict(run, "cancelled", CANCELLABLE_RUN_STATUSES)
        before = run.status
        run.status = SagaRunStatus.CANCELLING
        run.save(update_fields=["status", "updated_at"])
        audit.record(
            principal=principal,
            action="saga.cancel_requested",
            entity_urn=run.urn,
            case_urn=run.case.urn,
            reason=reason,
            before={"status": before},
            after={"status": run.status},
        )
        saga.publish_requested(run)
    return run


def subcase_send_to_review_by_system(*, airline: str, sub_case_id, reason: str) -> SubCase | None:
    """The saga's failure path: move the sub-case to MANUAL_REVIEW as the system principal, through
    the normal transition (OCC, audit, events, case status). Entity locks do not stop it: an
    operator's lock must not hide a failed payment (docs/decisions.md). A sub-case that cannot go to
    review (already there, closed, cancelled) is left as it is; returns ``None`` then."""
    from cases import saga

    principal = saga.system_principal(airline)
    with transaction.atomic():
        current = SubCase.objects.filter(pk=sub_case_id, airline=airline).first()
        if current is None:
            return None
        case = _lock_case(principal=principal, case_id=current.case_id)
        current = SubCase.objects.get(pk=sub_case_id)
        if not can_proceed(current.send_to_review):
            return None
        current = _transition_locked(
            principal=principal,
            case=case,
            sub_case=current,
            transition="send_to_review",
            expected_version=current.version,
            reason=reason,
            guarded=False,
        )
        _case_status_refresh(principal=principal, case=case, reason=reason)
    return current


# --- transport transfers (POST /v1/transport/cases/{case_urn}/transfers/request) -----------------------

TRANSFER_MAX_SUBCASES = 1000
TRANSFER_DEFAULT_PROVIDER = "UBER"
TRANSFER_SETTLED_RUN_STATUSES = frozenset({"CANCELLED", "FAILED"})


def _transfer_urns(raw: Any, *, field: str, kind: str, errors: list[dict[str, str]]) -> list:
    """The ids of a list of URNs of ``kind``; each malformed one named in ``errors`` (``field[i]``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append({"field": field, "message": "must be a list of URNs"})
        return []
    if len(raw) > TRANSFER_MAX_SUBCASES:
        errors.append({"field": field, "message": f"at most {TRANSFER_MAX_SUBCASES} URNs"})
        return []
    ids = []
    for index, value in enumerate(raw):
        try:
            ids.append(parse_urn(value, kind).id)
        except InvalidUrn as error:
            errors.append({"field": f"{field}[{index}]", "message": error.message})
    return ids


def transfers_request(
    *,
    principal: Principal,
    case: Case,
    sub_case_urns: Any = None,
    group_urns: Any = None,
    pickup: Any = None,
    dropoff: Any = None,
    pickup_at: Any = None,
    provider: Any = None,
) -> tuple[str, list[dict[str, str]]]:
    """Request a ride for every named sub-case and every member of the named groups: one saga run per
    sub-case whose only step is ``transport.request_ride`` (the engine of :mod:`cases.saga`: exactly-once
    by the step URN, retries, circuit breaker, ``graph:step:*`` events, progress, retry and cancel).

    Returns ``(correlation_urn, [{transferUrn, subCaseUrn, sagaUrn}])``; a transfer's URN is its step's
    id as ``urn:nexa:transfer:…``. The same request for a sub-case again (same places, time and provider)
    returns its existing transfer unless that run was CANCELLED or FAILED. 400 names every invalid field
    (also URNs that are not of this case); 409 ``subcase-not-compensable`` for a named sub-case that is
    CLOSED, CANCELLED or FAILED (such group members are skipped) and ``subcase-locked`` when another
    operator holds one; 503 ``downstream-unavailable`` (``failedDomain``) while the provider's circuit is
    open. One transaction; sub-case versions do not change.
    """
    from django.utils import timezone

    from cases import compensation, saga
    from cases.models import SagaRun, SagaStep
    from nexa.platform.context import current_correlation_urn
    from nexa.platform.urns import new_urn

    now = timezone.now()
    errors: list[dict[str, str]] = []
    subcase_ids = _transfer_urns(sub_case_urns, field="subCaseUrns", kind="subcase", errors=errors)
    group_ids = _transfer_urns(group_urns, field="groupUrns", kind="group", errors=errors)
    if not errors and not subcase_ids and not group_ids:
        errors.append({"field": "subCaseUrns", "message": "give at least one sub-case or group (groupUrns)"})
    body = {"pickup": pickup, "dropoff": dropoff, "pickupAt": pickup_at}
    place_errors: list[dict[str, str]] = []
    places = {name: compensation._place(body, name, "", place_errors) for name in ("pickup", "dropoff")}
    when = compensation._future_datetime(body, "pickupAt", "", place_errors, now=now)
    errors += [{**error, "field": error["field"].lstrip(".")} for error in place_errors]
    provider = TRANSFER_DEFAULT_PROVIDER if provider is None else provider
    if provider not in compensation.TRANSPORT_PROVIDERS:
        errors.append({"field": "provider", "message": f"must be one of {', '.join(compensation.TRANSPORT_PROVIDERS)}"})
    if errors:
        raise validation_problem(errors)
    from nexa.platform.breakers import breaker_for
    from nexa.platform.problems import downstream_unavailable_problem

    breaker = f"transport-{provider.lower()}"
    if breaker_for(breaker).current_state == "open":
        raise downstream_unavailable_problem(breaker)  # 503: accepting rides that can only wait hides the outage

    item = {
        "type": "TRANSPORT",
        "provider": provider,
        "pickup": places["pickup"],
        "dropoff": places["dropoff"],
        "pickupAt": when or now.astimezone(dt.UTC).isoformat(),
    }
    request_hash = compensation.payload_hash(
        version="transfer",
        items=[{**item, "pickupAt": when}],  # an omitted time ("now") is the same request when repeated
        reason="",
    )
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        named = {
            s.id: s for s in SubCase.objects.filter(case_id=case.pk, airline=principal.airline, id__in=subcase_ids)
        }
        errors += [
            {"field": f"subCaseUrns[{index}]", "message": "is not a sub-case of this case"}
            for index, id_ in enumerate(subcase_ids)
            if id_ not in named
        ]
        groups = set(
            PassengerGroup.objects.filter(case_id=case.pk, airline=principal.airline, id__in=group_ids).values_list(
                "id", flat=True
            )
        )
        errors += [
            {"field": f"groupUrns[{index}]", "message": "is not a passenger group of this case"}
            for index, id_ in enumerate(group_ids)
            if id_ not in groups
        ]
        if errors:
            raise validation_problem(errors)
        closed = sorted(s.urn for s in named.values() if s.status in NOT_COMPENSABLE_STATUSES)
        if closed:
            raise conflict_problem(
                slug="subcase-not-compensable",
                title="A sub-case cannot get a transfer",
                detail=f"{', '.join(closed)} cannot get a transfer (CLOSED, CANCELLED or FAILED).",
                subCaseUrns=closed,
            )
        members = SubCase.objects.filter(case_id=case.pk, group_id__in=groups).exclude(
            status__in=NOT_COMPENSABLE_STATUSES
        )
        targets = sorted({**named, **{s.id: s for s in members}}.values(), key=lambda s: (s.created_at, s.id))
        if len(targets) > TRANSFER_MAX_SUBCASES:
            raise validation_problem(
                [{"field": "subCaseUrns", "message": f"at most {TRANSFER_MAX_SUBCASES} sub-cases per request"}]
            )
        for sub_case in targets:
            _guard_subcase_write(principal=principal, sub_case=sub_case, fencing_token=None)

        existing: dict = {}
        previous: dict = {}
        for run in (
            SagaRun.objects.filter(sub_case__in=[s.id for s in targets], payload__transferRequest=request_hash)
            .prefetch_related("steps")
            .order_by("created_at")
        ):
            previous[run.sub_case_id] = previous.get(run.sub_case_id, 0) + 1
            if run.status not in TRANSFER_SETTLED_RUN_STATUSES:
                existing[run.sub_case_id] = run
        fresh = [s for s in targets if s.id not in existing]
        correlation_urn = (
            (current_correlation_urn() or new_urn("correlation"))
            if fresh
            else next(iter(existing.values())).correlation_urn
        )
        runs = SagaRun.objects.bulk_create(
            SagaRun(
                airline=principal.airline,
                case=case,
                sub_case=sub_case,
                payload={"kind": "TRANSFER", "transferRequest": request_hash, "items": [item], "reason": ""},
                payload_hash=compensation.payload_hash(
                    version=previous.get(sub_case.id, 0), items=request_hash, reason="transfer"
                ),
                correlation_urn=correlation_urn,
                requested_by=principal.operator_urn,
            )
            for sub_case in fresh
        )
        steps = SagaStep.objects.bulk_create(
            SagaStep(
                run=run,
                airline=run.airline,
                position=0,
                name=saga.STEP_NAMES["TRANSPORT"],
                kind="TRANSPORT",
                item=item,
            )
            for run in runs
        )
        created = {run.sub_case_id: (run, step) for run, step in zip(runs, steps, strict=True)}
        transfers = []
        for sub_case in targets:
            if sub_case.id in created:
                run, step = created[sub_case.id]
            else:
                run = existing[sub_case.id]
                step = next(s for s in run.steps.all() if s.kind == "TRANSPORT")
            transfers.append(
                {
                    "transferUrn": format_urn("transfer", step.id),
                    "subCaseUrn": sub_case.urn,
                    "sagaUrn": run.urn,
                }
            )
        new_urns = {run.urn for run in runs}
        if runs:
            audit.record(
                principal=principal,
                action="transport.transfers_requested",
                entity_urn=case.urn,
                case_urn=case.urn,
                after={
                    "provider": provider,
                    "pickupAt": item["pickupAt"],
                    "transfers": [t for t in transfers if t["sagaUrn"] in new_urns],
                },
            )
        for run in runs:
            run.case = case
            saga.publish_requested(run)
    return correlation_urn, transfers
