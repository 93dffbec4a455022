"""Notification routes (spec 000 § Audit & notifications): the per-case log and manual (re)send."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from nexa.platform.openapi import problem
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView
from notifications.api.serializers import (
    NotificationLogFilters,
    NotificationSendResultSerializer,
    NotificationSendSerializer,
    NotificationSerializer,
)
from notifications.models import NotificationStatus
from notifications.selectors import NOTIFICATION_ORDERING, case_get, notifications_for_case
from notifications.services import notifications_send_manual

CASE_URN_PARAMETER = OpenApiParameter(
    "case_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:case:<uuid>"
)
STATUS_PARAMETER = OpenApiParameter(
    "status", OpenApiTypes.STR, enum=NotificationStatus.values, description="Only this status (FAILED: to resend)."
)


def _serialize(notification):
    return NotificationSerializer(notification).data


class NotificationCaseLogView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema_paginated(
        NotificationSerializer,
        parameters=[CASE_URN_PARAMETER, STATUS_PARAMETER],
        operation_id="notifications_case_log",
        summary="Notification log of a case",
        description=(
            "Every notification to the case's passengers, newest first, with the masked recipient only. "
            "FAILED ones exhausted their retries or were refused: resend them with POST …/send."
        ),
    )
    def get(self, request, case_urn: str):
        case = case_get(principal=request.auth, case_urn=case_urn)
        filters = NotificationLogFilters.parse(request)
        notifications = notifications_for_case(principal=request.auth, case=case, status=filters["status"])
        return paginate(request, notifications, ordering=NOTIFICATION_ORDERING, serialize=_serialize)


class NotificationSendView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema(
        operation_id="notifications_send",
        summary="Send or resend a notification",
        description=(
            "Queues the template on the channel for the chosen sub-cases (all when subCaseUrns is omitted); "
            "delivery is asynchronous. A passenger without that contact (or, on WhatsApp, without opt-in or an "
            "approved template) gets a SKIPPED notification with the reason. Unknown template: 400. At most "
            "NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS passengers per send (422 naming subCaseUrns) and "
            "NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR sends per case in any hour (429 with Retry-After)."
        ),
        parameters=[CASE_URN_PARAMETER],
        request=NotificationSendSerializer,
        responses={
            202: NotificationSendResultSerializer,
            400: problem("Unknown template or channel, or a sub-case not in this case."),
            422: problem("More passengers than NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS in one send."),
            429: problem("The case's manual sends for the last hour are used up; honour Retry-After."),
        },
    )
    def post(self, request, case_urn: str):
        case = case_get(principal=request.auth, case_urn=case_urn)
        body = NotificationSendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        notifications = notifications_send_manual(
            principal=request.auth,
            case=case,
            sub_case_urns=body.validated_data.get("subCaseUrns"),
            channel=body.validated_data["channel"],
            template=body.validated_data["template"],
        )
        return Response(
            NotificationSendResultSerializer(
                {
                    "notificationUrns": [notification.urn for notification in notifications],
                    "notifications": notifications,
                }
            ).data,
            status=202,
        )
