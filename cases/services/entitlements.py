"""Entitlement writes: the facts the computation reads (audited), and the stored snapshot.

The facts are few and change rarely (an operator learns the flight's final delay, or that the cause
was extraordinary; a passenger is re-routed), so they are set here rather than through a new route:
``manage.py shell``, the backfill's tests and a later admin action or route call these functions
(docs/booking.md "Entitlements").
"""

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from audit import services as audit
from booking.selectors import airport_get
from cases.models import Case, Entitlement, Regulation, SubCase
from cases.services._common import _lock_case
from nexa.platform.auth import Principal
from nexa.platform.problems import validation_problem

UNCHANGED: Any = object()


def case_entitlement_facts_set(
    *,
    principal: Principal,
    case: Case,
    destination: str = UNCHANGED,
    regulation: str = UNCHANGED,
    extraordinary_circumstances: bool = UNCHANGED,
    arrival_delay_minutes: int | None = UNCHANGED,
    reason: str = "",
) -> Case:
    """Set the case's entitlement facts (only those given); audited as ``case.entitlement_facts_set``
    with the values before and after, and the case's version bumped."""
    changes: dict[str, Any] = {}
    errors = []
    if destination is not UNCHANGED:
        code = (destination or "").strip().upper()
        if code and airport_get(iata=code) is None:
            errors.append({"field": "destination", "message": f"{destination!r} is not an IATA code in the catalog"})
        changes["destination"] = code
    if regulation is not UNCHANGED:
        if regulation and regulation not in Regulation.values:
            errors.append({"field": "regulation", "message": f"must be one of {', '.join(Regulation.values)}"})
        changes["regulation"] = regulation or ""
    if extraordinary_circumstances is not UNCHANGED:
        changes["extraordinary_circumstances"] = bool(extraordinary_circumstances)
    if arrival_delay_minutes is not UNCHANGED:
        if arrival_delay_minutes is not None and not (0 <= arrival_delay_minutes <= 7 * 24 * 60):
            errors.append({"field": "arrivalDelayMinutes", "message": "must be 0 to 10080 minutes, or null"})
        changes["arrival_delay_minutes"] = arrival_delay_minutes
    if errors:
        raise validation_problem(errors)
    if not changes:
        return case
    with transaction.atomic():
        locked = _lock_case(principal=principal, case_id=case.pk)
        before = {name: getattr(locked, name) for name in changes}
        Case.objects.filter(pk=locked.pk).update(**changes, version=F("version") + 1, updated_at=Now())
        audit.record(
            principal=principal,
            action="case.entitlement_facts_set",
            entity_urn=locked.urn,
            case_urn=locked.urn,
            reason=reason,
            before=before,
            after=changes,
        )
    case.refresh_from_db()
    return case


def subcase_reroute_record(
    *, principal: Principal, sub_case: SubCase, rerouted_arrival_delay_minutes: int | None, reason: str = ""
) -> SubCase:
    """Record how late the re-routed passenger reaches the final destination (Art. 7(2)); audited as
    ``subcase.reroute_recorded``. Not a state transition, so the sub-case's version is not bumped."""
    value = rerouted_arrival_delay_minutes
    if value is not None and not (0 <= value <= 7 * 24 * 60):
        raise validation_problem(
            [{"field": "reroutedArrivalDelayMinutes", "message": "must be 0 to 10080 minutes, or null"}]
        )
    with transaction.atomic():
        _lock_case(principal=principal, case_id=sub_case.case_id)
        before = SubCase.objects.filter(pk=sub_case.pk).values_list("rerouted_arrival_delay_minutes", flat=True).get()
        SubCase.objects.filter(pk=sub_case.pk).update(rerouted_arrival_delay_minutes=value, updated_at=Now())
        audit.record(
            principal=principal,
            action="subcase.reroute_recorded",
            entity_urn=sub_case.urn,
            case_urn=sub_case.case.urn,
            reason=reason,
            before={"reroutedArrivalDelayMinutes": before},
            after={"reroutedArrivalDelayMinutes": value},
        )
    sub_case.refresh_from_db()
    return sub_case


def entitlement_snapshot_store(
    *, principal: Principal, sub_case: SubCase, data: dict[str, Any], computed_at: dt.datetime, dry_run: bool = False
) -> str:
    """Upsert the sub-case's snapshot: ``created``, ``updated`` or ``unchanged``. ``data`` is stored
    without ``computedAt``, so an unchanged entitlement is not rewritten (a re-run writes nothing and
    ``computed_at`` keeps the time the content was first stored). Created and updated snapshots are
    audited (``entitlement.snapshot_stored``, the amounts only — no names)."""
    content = {key: value for key, value in data.items() if key != "computedAt"}
    with transaction.atomic():
        existing = Entitlement.objects.select_for_update().filter(sub_case_id=sub_case.pk).first()
        if existing is not None and existing.data == content:
            return "unchanged"
        outcome = "created" if existing is None else "updated"
        if dry_run:
            return outcome
        if existing is None:
            Entitlement.objects.create(
                airline=sub_case.airline,
                case_id=sub_case.case_id,
                sub_case=sub_case,
                data=content,
                computed_at=computed_at,
            )
        else:
            Entitlement.objects.filter(pk=existing.pk).update(data=content, computed_at=computed_at)
        audit.record(
            principal=principal,
            action="entitlement.snapshot_stored",
            entity_urn=sub_case.urn,
            case_urn=content.get("caseUrn"),
            after={"compensation": content.get("compensation"), "open": content.get("open"), "outcome": outcome},
        )
    return outcome
