"""Test-only list routes over the caller's airline's audit rows, one per ordering."""

from django.urls import include, path
from rest_framework import serializers

from audit.models import AuditEntry
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView
from nexa.urls import urlpatterns as project_urlpatterns


class AuditItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    action = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815 - wire name


def _item(entry: AuditEntry) -> dict:
    return {"id": str(entry.id), "action": entry.action, "createdAt": entry.created_at.isoformat()}


def _listing(name: str, ordering: tuple[str, ...]):
    class Listing(NexaAPIView):
        permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

        @extend_schema_paginated(
            AuditItemSerializer, operation_id=f"pagination_test_{name}", summary=f"Audit rows by {ordering}"
        )
        def get(self, request):
            queryset = AuditEntry.objects.filter(airline=request.auth.airline)
            action = request.query_params.get("action")
            if action:
                queryset = queryset.filter(action=action)
            return paginate(request, queryset, ordering=ordering, serialize=_item)

    Listing.__name__ = f"Listing_{name}"
    return Listing.as_view()


class DefaultOrdering(NexaAPIView):
    """No explicit ordering: the queryset's order_by is used."""

    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    def get(self, request):
        queryset = AuditEntry.objects.filter(airline=request.auth.airline).order_by("-created_at", "-id")
        return paginate(request, queryset, serialize=_item)


routes = [
    path("newest", _listing("newest", ("-created_at", "-id"))),
    path("oldest", _listing("oldest", ("created_at", "id"))),
    path("mixed", _listing("mixed", ("-created_at", "id"))),
    path("by-action", _listing("by_action", ("action", "-created_at", "-id"))),
    path("default", DefaultOrdering.as_view()),
]

urlpatterns = [path("v1/_test/audit/", include(routes)), *project_urlpatterns]
