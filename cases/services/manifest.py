"""Appending passengers to a case's manifest, all or nothing (also the insert step of :mod:`.declare`)."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import transaction

from audit import services as audit
from cases import selectors
from cases.manifest import ManifestValidation, PassengerRow, validate_rows
from cases.models import Case, CaseStatus, SubCase
from cases.services._common import _case_status_refresh, _lock_case
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, validation_problem

SUBCASE_INSERT_BATCH = 1000


def _case_closed(case: Case) -> Problem:
    return conflict_problem(
        slug="case-closed",
        title="The case is closed",
        detail=f"{case.urn} is CLOSED; declare a new case for new passengers.",
    )


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
