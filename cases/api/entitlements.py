"""``GET /v1/subcases/{sub_case_urn}/entitlements``: what the passenger is owed, granted and still owed.

Roles: AIRPORT_OPERATOR+ (the desk tells the passenger) and FINANCE_AUDIT (spec 000 gives finance audit
the read-only money routes — the audit log; what is owed and paid is money). docs/booking.md
"Entitlements" describes the body; cases/entitlements.py the rules.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from cases import selectors
from cases.api.views import SUB_CASE_URN_PARAMETER
from cases.entitlements import CARE_TYPES
from cases.models import Cause, Regulation
from nexa.platform.openapi import with_schema
from nexa.platform.roles import AnyOf, Role
from nexa.platform.views import NexaAPIView

BANDS = ("UP_TO_1500_KM", "INTRA_EU_OVER_1500_KM", "1500_TO_3500_KM", "OVER_3500_KM")
GRANT_TYPES = ("MEAL", "CASH", "TRANSPORT", "HOTEL")


def _enum(values, **extra) -> serializers.CharField:
    """A string stated as an inline enum: several components have a ``type`` member with different
    values, and one component per choice set would need settings-wide ENUM_NAME_OVERRIDES."""
    return with_schema(serializers.CharField(**extra), {"type": "string", "enum": list(values)})


class _MoneySerializer(serializers.Serializer):
    amount = serializers.CharField(help_text='Decimal string, "250.00".')
    currency = serializers.CharField()

    class Meta:
        ref_name = "EntitlementMoney"


class _RouteSerializer(serializers.Serializer):
    origin = serializers.CharField(help_text="IATA code (the case's origin, else its airport).")
    destination = serializers.CharField(allow_null=True, help_text="IATA code; null when the case has none.")
    intraEu = serializers.BooleanField(help_text="Both ends in the EU/EEA/CH (Art. 7(1)(b)).")  # noqa: N815

    class Meta:
        ref_name = "EntitlementRoute"


class _CompensationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["OWED", "NOT_OWED", "UNKNOWN"])
    amount = serializers.CharField(allow_null=True, help_text="Owed after any reduction; null when unknown.")
    currency = serializers.CharField(allow_null=True)
    fullAmount = serializers.CharField(allow_null=True, help_text="The band's Art. 7(1) amount.")  # noqa: N815
    reduced = serializers.BooleanField(help_text="Halved under Art. 7(2).")
    reason = serializers.CharField()
    basis = serializers.CharField(help_text="The article(s) the answer rests on.")

    class Meta:
        ref_name = "EntitlementCompensation"


class _GrantSerializer(serializers.Serializer):
    type = _enum(GRANT_TYPES)
    urn = serializers.CharField(help_text="The saga step (MEAL/CASH/TRANSPORT) or the reservation (HOTEL).")
    at = serializers.DateTimeField(allow_null=True)
    amount = _MoneySerializer(allow_null=True)
    settledAmount = _MoneySerializer(allow_null=True, help_text="In the run's settlement currency.")  # noqa: N815
    nights = serializers.IntegerField(allow_null=True, help_text="HOTEL: the passenger's active nights in it.")
    runUrn = serializers.CharField(required=False, help_text="Saga steps: their run.")  # noqa: N815
    provider = serializers.CharField(required=False, allow_null=True, help_text="TRANSPORT: the ride provider.")
    hotelName = serializers.CharField(required=False, help_text="HOTEL.")  # noqa: N815
    checkIn = serializers.DateField(required=False, help_text="HOTEL.")  # noqa: N815
    status = serializers.CharField(required=False, help_text="HOTEL: HELD or CONFIRMED.")

    class Meta:
        ref_name = "EntitlementGrant"


class _CareSerializer(serializers.Serializer):
    # A pattern, not an enum: the same values as ``open.care``'s enum under another member name would make
    # drf-spectacular name one choice set twice (W001, which check --deploy refuses).
    type = with_schema(
        serializers.CharField(),
        {"type": "string", "pattern": f"^(?:{'|'.join(CARE_TYPES)})$", "description": " | ".join(CARE_TYPES)},
    )
    owed = serializers.BooleanField()
    reason = serializers.CharField()
    basis = serializers.CharField()
    amount = _MoneySerializer(allow_null=True, help_text="MEAL: the policy's allowance over the days of waiting.")
    nights = serializers.IntegerField(allow_null=True, help_text="HOTEL: nights owed.")
    granted = _GrantSerializer(many=True)
    open = serializers.BooleanField(allow_null=True, help_text="Still owed; null when Nexa does not record it.")
    openAmount = _MoneySerializer(allow_null=True)  # noqa: N815
    openNights = serializers.IntegerField(allow_null=True)  # noqa: N815

    class Meta:
        ref_name = "EntitlementCare"


class _GrantedSerializer(serializers.Serializer):
    compensation = _GrantSerializer(many=True, help_text="Completed CASH steps.")
    meals = _GrantSerializer(many=True)
    transport = _GrantSerializer(many=True)
    reservations = _GrantSerializer(many=True, help_text="Active reservations holding the passenger.")
    walletBalances = serializers.DictField(  # noqa: N815
        child=serializers.CharField(), help_text="The passenger wallet's balance per currency."
    )

    class Meta:
        ref_name = "EntitlementGranted"


class _OpenSerializer(serializers.Serializer):
    compensation = _MoneySerializer(allow_null=True, help_text="Owed minus paid; null when unknown.")
    care = with_schema(
        serializers.ListField(child=serializers.CharField()),
        {"type": "array", "items": {"type": "string", "enum": list(CARE_TYPES)}, "description": "Care types open."},
    )

    class Meta:
        ref_name = "EntitlementOpen"


class _SnapshotSerializer(serializers.Serializer):
    computedAt = serializers.DateTimeField()  # noqa: N815
    current = serializers.BooleanField(help_text="The stored snapshot equals the live computation.")

    class Meta:
        ref_name = "EntitlementSnapshot"


class EntitlementsSerializer(serializers.Serializer):
    subCaseUrn = serializers.CharField()  # noqa: N815
    caseUrn = serializers.CharField()  # noqa: N815
    regulation = serializers.ChoiceField(choices=Regulation.choices)
    cause = serializers.ChoiceField(choices=Cause.choices)
    route = _RouteSerializer()
    distanceKm = serializers.IntegerField(allow_null=True, help_text="Great-circle, whole km.")  # noqa: N815
    band = serializers.ChoiceField(choices=list(BANDS), allow_null=True)
    compensation = _CompensationSerializer()
    care = _CareSerializer(many=True)
    granted = _GrantedSerializer()
    open = _OpenSerializer()
    computedAt = serializers.DateTimeField()  # noqa: N815
    snapshot = _SnapshotSerializer(allow_null=True, help_text="The stored snapshot (entitlements_backfill).")

    class Meta:
        ref_name = "Entitlements"


class SubCaseEntitlementsView(NexaAPIView):
    permission_classes = [AnyOf(Role.AIRPORT_OPERATOR, Role.FINANCE_AUDIT)]

    @extend_schema(
        operation_id="subcases_entitlements",
        summary="What the passenger is owed (EU261/UK261 or the airline's policy), granted and still open",
        description=(
            "Computed live from the case's regulation, route and cause, the passenger's re-routing, the airline's "
            "policy, the completed compensation steps, the active reservations and the wallet. `snapshot` is the "
            "stored copy the backfill wrote (null when none). Every rule cites its article of EC 261/2004."
        ),
        parameters=[SUB_CASE_URN_PARAMETER],
        responses={200: EntitlementsSerializer},
    )
    def get(self, request, sub_case_urn: str):
        sub_case = selectors.subcase_get(principal=request.auth, sub_case_urn=sub_case_urn)
        body = selectors.subcase_entitlements(principal=request.auth, sub_case=sub_case, now=timezone.now())
        snapshot = selectors.subcase_entitlement_snapshot(principal=request.auth, sub_case=sub_case)
        live = {key: value for key, value in body.items() if key != "computedAt"}
        body["snapshot"] = (
            {"computedAt": snapshot.computed_at, "current": snapshot.data == live} if snapshot is not None else None
        )
        return Response(EntitlementsSerializer(body).data)
