"""Manual sends (``POST /v1/notifications/{case_urn}/send``), capped per request and per case per hour."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, validation_problem
from nexa.platform.throttling import SlidingWindowBudget
from nexa.platform.urns import InvalidUrn, new_id, parse_urn
from notifications.models import Channel, Notification
from notifications.selectors import Case, SubCase, case_manifest, last_context_for
from notifications.services._common import MANUAL_SEND_WINDOW_SECONDS, _notification_create, template_spec


def _manual_sub_cases(*, principal: Principal, case: Case, sub_case_urns: list | None) -> list[SubCase]:
    if sub_case_urns is None:
        return list(case_manifest(principal=principal, case=case).order_by("created_at", "id"))
    errors, ids = [], []
    for index, value in enumerate(sub_case_urns):
        try:
            ids.append(parse_urn(value, "subcase").id)
        except InvalidUrn as error:
            errors.append({"field": f"subCaseUrns[{index}]", "message": error.message})
    if errors:
        raise validation_problem(errors)
    found = {sc.id: sc for sc in case_manifest(principal=principal, case=case).filter(id__in=ids)}
    errors = [
        {"field": f"subCaseUrns[{index}]", "message": "Not a sub-case of this case."}
        for index, id_ in enumerate(ids)
        if id_ not in found
    ]
    if errors:
        raise validation_problem(errors)
    return [found[id_] for id_ in dict.fromkeys(ids)]


def notifications_send_manual(
    *, principal: Principal, case: Case, sub_case_urns: list | None, channel: str, template: str
) -> list[Notification]:
    """Send (or resend) ``template`` on ``channel`` to the chosen sub-cases of ``case`` (None: all).

    Each passenger gets a new notification (a resend is a new message), rendered with the values the
    last notification of that template to them carried. Passengers without the contact, opt-in or
    approved template are SKIPPED with a reason. Unknown template or channel, or a sub-case not in
    the case, are 400 problems.

    Every message may cost money (SMS), so a send reaches at most
    ``NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS`` passengers (more: 422 naming ``subCaseUrns``) and a case
    gets at most ``NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR`` manual sends in any sliding hour (more: 429
    ``notification-send-limit`` with ``Retry-After``). Refused sends do not count.
    """
    spec = template_spec(template)
    if channel not in Channel.values:
        raise validation_problem([{"field": "channel", "message": f"One of {', '.join(Channel.values)}."}])
    with transaction.atomic():
        if sub_case_urns is None:  # the whole manifest: count it before loading it
            _manual_recipients_check(count=case_manifest(principal=principal, case=case).count(), named=False)
        sub_cases = _manual_sub_cases(principal=principal, case=case, sub_case_urns=sub_case_urns)
        _manual_recipients_check(count=len(sub_cases), named=sub_case_urns is not None)
        budget, token = _manual_send_budget(case), new_id().hex
        _manual_send_take(budget, token)
        try:
            created = []
            for sub_case in sub_cases:
                sub_case.case = case
                key = f"manual:{new_id()}"
                notification, _ = _notification_create(
                    actor=principal,
                    sub_case=sub_case,
                    channel=channel,
                    spec=spec,
                    context=last_context_for(sub_case=sub_case, template=spec.name),
                    idempotency_key=key,
                    audit_reason="Manual send",
                )
                created.append(notification)
        except BaseException:
            budget.give_back(token)  # nothing was sent: the send does not count
            raise
    return created


def _manual_recipients_check(*, count: int, named: bool) -> None:
    """At most ``NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS`` passengers per manual send (422)."""
    cap = settings.NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS
    if count <= cap:
        return
    message = (
        f"At most {cap} passengers per send; {count} named."
        if named
        else f"At most {cap} passengers per send; the case has {count}: name them in batches in subCaseUrns."
    )
    raise validation_problem([{"field": "subCaseUrns", "message": message}], status=422)


def _manual_send_budget(case: Case) -> SlidingWindowBudget:
    return SlidingWindowBudget(
        f"nexa:notifications:manual-sends:{case.airline}:{case.pk}",
        limit=settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR,
        window_seconds=MANUAL_SEND_WINDOW_SECONDS,
    )


def _manual_send_take(budget: SlidingWindowBudget, token: str) -> None:
    """One of the case's ``NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR`` manual sends, or a 429 problem
    with ``Retry-After`` (seconds until the oldest send of the last hour leaves the window)."""
    taken, retry_after = budget.take(token)
    if taken:
        return
    limit = settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR
    raise Problem(
        status=429,
        slug="notification-send-limit",
        title="Too many manual sends for this case",
        detail=f"At most {limit} manual sends per case per hour; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )
