"""HTTP routes of demand waves: ask for rooms for a case's passengers, the supervisors' approval queue, and
approving or rejecting a wave. Parse → call one service or selector → render."""

import datetime as dt
import re
import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from cases import selectors, services
from cases.api.serializers import MAX_PASSENGERS_PER_REQUEST
from cases.api.views import CASE_URN_PARAMETER, OPERATOR, SUPERVISOR
from cases.models import DemandKind, DemandStatus, DemandWave
from nexa.platform.filters import QueryFilters, UrnFilter
from nexa.platform.openapi import EMPTY_IS_ABSENT, NON_BLANK, problem, urn_schema, with_schema
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.problems import validation_problem
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn
from nexa.platform.views import NexaAPIView

# The hotel search takes check-in dates in the same window (a wave is allocated through it).
CHECK_IN_MAX_DAYS_AHEAD = 365
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REQUIRED = "This field is required."

DEMAND_URN_PARAMETER = OpenApiParameter(
    "demand_urn", urn_schema("demand"), OpenApiParameter.PATH, description="urn:nexa:demand:<uuid>"
)


# --- requests ---------------------------------------------------------------------------------------------


def _urn_ids(body: dict, field: str, kind: str, errors: list[dict[str, str]]) -> list[uuid.UUID] | None:
    """The ids of the URN list ``field`` (None when absent); each malformed or repeated one is named
    ``field[i]`` in ``errors``."""
    raw = body.get(field)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        errors.append({"field": field, "message": "must be a non-empty list of URNs (omit it to ask for everyone)"})
        return None
    if len(raw) > MAX_PASSENGERS_PER_REQUEST:
        errors.append({"field": field, "message": f"at most {MAX_PASSENGERS_PER_REQUEST} URNs"})
        return None
    ids: list[uuid.UUID] = []
    for index, value in enumerate(raw):
        try:
            id_ = parse_urn(value, kind).id
        except InvalidUrn as error:
            errors.append({"field": f"{field}[{index}]", "message": error.message})
            continue
        if id_ in ids:
            errors.append({"field": f"{field}[{index}]", "message": f"{value} is listed twice"})
            continue
        ids.append(id_)
    return ids


def _check_in(body: dict, errors: list[dict[str, str]], *, today: dt.date) -> dt.date | None:
    raw = body.get("checkIn")
    if raw is None:
        errors.append({"field": "checkIn", "message": _REQUIRED})
        return None
    try:
        if not isinstance(raw, str) or not _ISO_DATE.fullmatch(raw):
            raise ValueError
        value = dt.date.fromisoformat(raw)
    except ValueError:
        errors.append({"field": "checkIn", "message": "must be a date, YYYY-MM-DD"})
        return None
    if not today - dt.timedelta(days=1) <= value <= today + dt.timedelta(days=CHECK_IN_MAX_DAYS_AHEAD):
        errors.append({"field": "checkIn", "message": f"from yesterday to {CHECK_IN_MAX_DAYS_AHEAD} days ahead"})
        return None
    return value


def _nights(body: dict, errors: list[dict[str, str]]) -> int | None:
    raw = body.get("nights")
    if raw is None:
        errors.append({"field": "nights", "message": _REQUIRED})
        return None
    integral = isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())
    if isinstance(raw, bool) or not integral or not 1 <= raw <= services.DEMAND_MAX_NIGHTS:
        errors.append({"field": "nights", "message": f"must be an integer from 1 to {services.DEMAND_MAX_NIGHTS}"})
        return None
    return int(raw)


def reason_value(body: dict, errors: list[dict[str, str]]) -> str | None:
    """``reason``: a string with at least one non-blank character, at most 2000 characters (stored stripped)."""
    raw = body.get("reason")
    limit = services.DEMAND_REASON_MAX_LENGTH
    if raw is None:
        errors.append({"field": "reason", "message": _REQUIRED})
    elif not isinstance(raw, str) or not raw.strip():
        errors.append({"field": "reason", "message": "must be a non-blank string"})
    elif len(raw) > limit:
        errors.append({"field": "reason", "message": f"at most {limit} characters"})
    else:
        return raw.strip()
    return None


def _urn_list_schema(kind: str) -> dict:
    return {
        "type": "array",
        "items": urn_schema(kind),
        "minItems": 1,
        "maxItems": MAX_PASSENGERS_PER_REQUEST,
        "uniqueItems": True,
    }


def _reason_field():
    return with_schema(
        serializers.CharField(help_text="Why (audited with the decision)."),
        {"type": "string", "pattern": NON_BLANK, "minLength": 1, "maxLength": services.DEMAND_REASON_MAX_LENGTH},
    )


class DemandRequestSerializer(serializers.Serializer):
    """The body. Its fields document it; validation names every invalid field at once (``subCaseUrns[i]``,
    ``checkIn`` …) and gives the service typed values: ``kind``, ``subcase_ids`` or ``group_ids`` (UUIDs in
    the body's order, or None), ``check_in`` (a date), ``nights`` and ``reason`` (stripped)."""

    kind = serializers.ChoiceField(choices=DemandKind.choices)
    groupUrns = with_schema(  # noqa: N815
        serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="Ask for the grouped members of these groups. Give groupUrns or subCaseUrns, not both; "
            "neither: every grouped passenger of the case not yet in an open wave.",
        ),
        _urn_list_schema("group"),
    )
    subCaseUrns = with_schema(  # noqa: N815
        serializers.ListField(
            child=serializers.CharField(), required=False, help_text="Ask for these passengers (each GROUPED)."
        ),
        _urn_list_schema("subcase"),
    )
    checkIn = with_schema(  # noqa: N815
        serializers.CharField(help_text="First night, YYYY-MM-DD: from yesterday to a year ahead."),
        {"type": "string", "format": "date", "example": "2026-12-01"},
    )
    nights = serializers.IntegerField(min_value=1, max_value=services.DEMAND_MAX_NIGHTS)
    reason = _reason_field()

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        body = data if isinstance(data, dict) else {}
        errors: list[dict[str, str]] = []
        kind = body.get("kind")
        if kind is None:
            errors.append({"field": "kind", "message": _REQUIRED})
        elif kind not in DemandKind.values:
            errors.append({"field": "kind", "message": f"must be one of {', '.join(DemandKind.values)}"})
        group_ids = _urn_ids(body, "groupUrns", "group", errors)
        subcase_ids = _urn_ids(body, "subCaseUrns", "subcase", errors)
        if body.get("groupUrns") is not None and body.get("subCaseUrns") is not None:
            errors.append({"field": "groupUrns", "message": "give groupUrns or subCaseUrns, not both"})
        check_in = _check_in(body, errors, today=timezone.now().date())
        nights = _nights(body, errors)
        reason = reason_value(body, errors)
        if errors:
            raise validation_problem(errors)
        return {
            "kind": kind,
            "group_ids": group_ids,
            "subcase_ids": subcase_ids,
            "check_in": check_in,
            "nights": nights,
            "reason": reason,
        }


class DemandResolveSerializer(serializers.Serializer):
    reason = _reason_field()

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        reason = reason_value(data if isinstance(data, dict) else {}, errors)
        if errors:
            raise validation_problem(errors)
        return {"reason": reason}


class DemandPendingFilters(QueryFilters):
    caseUrn = UrnFilter("case", empty_is_absent=True)  # noqa: N815


# --- responses --------------------------------------------------------------------------------------------


class DemandWaveSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(), urn_schema("demand"))
    caseUrn = with_schema(serializers.CharField(), urn_schema("case"))  # noqa: N815
    kind = serializers.ChoiceField(choices=DemandKind.choices)
    status = serializers.ChoiceField(
        choices=DemandStatus.choices,
        help_text="As read now: a pending wave past expiresAt is EXPIRED (lazy expiry).",
    )
    rooms = serializers.IntegerField(
        min_value=1,
        help_text="Estimated rooms: per group, one per unaccompanied minor and one per two other passengers.",
    )
    people = serializers.IntegerField(min_value=1, help_text="Passengers in the wave.")
    checkIn = serializers.DateField()  # noqa: N815
    nights = serializers.IntegerField(min_value=1, max_value=services.DEMAND_MAX_NIGHTS)
    reason = serializers.CharField()
    requestedBy = serializers.CharField(help_text="Operator URN.")  # noqa: N815
    createdAt = serializers.DateTimeField()  # noqa: N815
    expiresAt = serializers.DateTimeField(help_text="A wave still pending at this instant is EXPIRED.")  # noqa: N815
    ageSeconds = serializers.IntegerField(min_value=0, help_text="Seconds since the wave was requested.")  # noqa: N815
    groupUrns = serializers.ListField(child=with_schema(serializers.CharField(), urn_schema("group")))  # noqa: N815
    subCaseUrns = serializers.ListField(child=with_schema(serializers.CharField(), urn_schema("subcase")))  # noqa: N815
    resolvedBy = serializers.CharField(allow_null=True, help_text="Operator URN of the approval or rejection.")  # noqa: N815
    resolvedAt = serializers.DateTimeField(allow_null=True)  # noqa: N815
    resolutionReason = serializers.CharField(allow_null=True)  # noqa: N815
    version = serializers.IntegerField()

    class Meta:
        ref_name = "DemandWave"


def demand_wave_data(wave: DemandWave, *, now: dt.datetime) -> dict[str, Any]:
    """The wave as the API answers it (members prefetched by the selector, or set by the service)."""
    members = list(wave.members.all())
    group_urns: list[str] = []
    for member in members:
        if member.group_id is not None and (urn := format_urn("group", member.group_id)) not in group_urns:
            group_urns.append(urn)
    resolved = wave.resolved_at is not None
    return DemandWaveSerializer(
        {
            "urn": wave.urn,
            "caseUrn": format_urn("case", wave.case_id),
            "kind": wave.kind,
            "status": wave.status_at(now),
            "rooms": wave.rooms,
            "people": wave.people,
            "checkIn": wave.check_in,
            "nights": wave.nights,
            "reason": wave.reason,
            "requestedBy": wave.requested_by,
            "createdAt": wave.created_at,
            "expiresAt": wave.expires_at,
            "ageSeconds": max(int((now - wave.created_at).total_seconds()), 0),
            "groupUrns": group_urns,
            "subCaseUrns": [format_urn("subcase", member.sub_case_id) for member in members],
            "resolvedBy": wave.resolved_by if resolved else None,
            "resolvedAt": wave.resolved_at,
            "resolutionReason": wave.resolution_reason if resolved else None,
            "version": wave.version,
        }
    ).data


# --- routes -----------------------------------------------------------------------------------------------


class DemandRequestView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="demand_request",
        summary="Ask for rooms for a case's passengers (a demand wave)",
        description=(
            "201 with a PENDING_APPROVAL wave that a supervisor approves or rejects before its expiresAt (the "
            "airline's approval TTL). Who: subCaseUrns, the grouped members of groupUrns, or neither: every "
            "grouped passenger of the case not yet in an open wave (pending, approved or allocated). One INITIAL "
            "wave per case (a second is a 409 naming it, existingDemandUrn); INCREMENTAL waves add passengers "
            "who arrive later, after the INITIAL one (before it: 409). 400: bad input, both lists, a URN not of "
            "this case. 422: a passenger who is not GROUPED, or is already in an open wave (named, with the "
            "wave), or nobody left to ask for. rooms is an estimate: per group one room per unaccompanied minor "
            "and one per two other passengers."
        ),
        parameters=[CASE_URN_PARAMETER],
        request=DemandRequestSerializer,
        responses={
            201: DemandWaveSerializer,
            409: problem("A second INITIAL wave (existingDemandUrn), or an INCREMENTAL wave before the INITIAL."),
            422: problem("A passenger not GROUPED or already in an open wave, or nobody left to ask for (errors)."),
        },
        examples=[
            OpenApiExample(
                "Every grouped passenger, one night",
                request_only=True,
                value={"kind": "INITIAL", "checkIn": "2026-12-01", "nights": 1, "reason": "IB3166 cancelled"},
            )
        ],
    )
    def post(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        body = DemandRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wave = services.demand_request(principal=request.auth, case=case, **body.validated_data)
        wave = selectors.demand_get(principal=request.auth, demand_urn=wave.urn)
        return Response(demand_wave_data(wave, now=timezone.now()), status=http_status.HTTP_201_CREATED)


class _DemandResolveView(NexaAPIView):
    permission_classes = [SUPERVISOR]
    resolve: Any = None  # the service: demand_approve or demand_reject

    def post(self, request, demand_urn: str):
        wave = selectors.demand_get(principal=request.auth, demand_urn=demand_urn)
        body = DemandResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.resolve(principal=request.auth, wave=wave, reason=body.validated_data["reason"])
        wave = selectors.demand_get(principal=request.auth, demand_urn=demand_urn)
        return Response(demand_wave_data(wave, now=timezone.now()))


_RESOLVE_409 = problem(
    "demand-expired: the wave passed its expiresAt (stored EXPIRED); demand-already-resolved: it is APPROVED, "
    "REJECTED or ALLOCATED already (currentStatus)."
)


class DemandApproveView(_DemandResolveView):
    resolve = staticmethod(services.demand_approve)

    @extend_schema(
        operation_id="demand_approve",
        summary="Approve a demand wave",
        description="200 with the APPROVED wave; its passengers may then be allocated. Once only (else 409).",
        parameters=[DEMAND_URN_PARAMETER],
        request=DemandResolveSerializer,
        responses={200: DemandWaveSerializer, 409: _RESOLVE_409},
    )
    def post(self, request, demand_urn: str):
        return super().post(request, demand_urn)


class DemandRejectView(_DemandResolveView):
    resolve = staticmethod(services.demand_reject)

    @extend_schema(
        operation_id="demand_reject",
        summary="Reject a demand wave",
        description="200 with the REJECTED wave; its passengers may be asked for again. Once only (else 409).",
        parameters=[DEMAND_URN_PARAMETER],
        request=DemandResolveSerializer,
        responses={200: DemandWaveSerializer, 409: _RESOLVE_409},
    )
    def post(self, request, demand_urn: str):
        return super().post(request, demand_urn)


class DemandPendingApprovalsView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema_paginated(
        DemandWaveSerializer,
        operation_id="demand_pending_approvals",
        summary="The approval queue: waves waiting for a supervisor",
        description=(
            "The airline's PENDING_APPROVAL waves not yet expired, oldest first, each with ageSeconds and its "
            "size (rooms, people)."
        ),
        parameters=[
            OpenApiParameter(
                "caseUrn",
                urn_schema("case"),
                description="Only this case's waves (urn:nexa:case:…).",
                extensions=EMPTY_IS_ABSENT,
            ),
        ],
    )
    def get(self, request):
        filters = DemandPendingFilters.parse(request)
        now = timezone.now()
        waves = selectors.demand_pending_approvals(principal=request.auth, now=now, case_urn=filters["caseUrn"])
        return paginate(
            request, waves, ordering=("created_at", "id"), serialize=lambda wave: demand_wave_data(wave, now=now)
        )
