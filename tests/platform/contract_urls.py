"""Test-only routes that exercise the platform contracts the way domain routes will."""

import time

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem, conflict_problem, downstream_unavailable_problem, validation_problem
from nexa.platform.roles import AnyOf, MinRole, Role
from nexa.platform.tenancy import get_for_principal
from nexa.platform.urns import parse_urn
from nexa.platform.views import NexaAPIView
from nexa.urls import urlpatterns as project_urlpatterns


def _principal_body(principal):
    return {"airline": principal.airline, "role": principal.role, "operatorUrn": principal.operator_urn}


class WhoAmI(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    def get(self, request):
        return Response(_principal_body(request.auth))


class SupervisorOnly(NexaAPIView):
    permission_classes = [MinRole(Role.OPS_SUPERVISOR)]

    def get(self, request):
        return Response({"ok": True})


class AdminOnly(NexaAPIView):
    permission_classes = [MinRole(Role.ADMIN)]

    def get(self, request):
        return Response({"ok": True})


class AuditReaders(NexaAPIView):
    permission_classes = [AnyOf(Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR)]

    def get(self, request):
        return Response({"ok": True})


class EventDetail(NexaAPIView):
    """A tenant-owned row: another airline's is a 404."""

    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    def get(self, request, event_id):
        event = get_for_principal(OutboxEvent.objects.all(), request.auth, id=event_id)
        return Response({"id": str(event.id), "event": event.event})


class CaseByUrn(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    def get(self, request, case_urn):
        urn = parse_urn(case_urn, "case")
        return Response({"kind": urn.kind, "id": str(urn.id)})


class Echo(NexaAPIView):
    """POST JSON: exercises parsing (400/413/415) and returns what it read."""

    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    def post(self, request):
        if not isinstance(request.data, dict):
            raise validation_problem([{"field": "body", "message": "must be a JSON object"}])
        return Response({"echo": request.data}, status=200)


class Failures(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    def get(self, request, kind):
        if kind == "conflict":
            raise conflict_problem(
                slug="subcase-locked",
                title="Sub-case locked",
                detail="Locked by someone else.",
                lockedBy="urn:nexa:user:other",
                expiresInSeconds=90,
            )
        if kind == "unprocessable":
            raise validation_problem([{"field": "items[0].amount", "message": "must be positive"}], status=422)
        if kind == "downstream":
            raise downstream_unavailable_problem("booking")
        if kind == "teapot":
            raise Problem(status=418, slug="teapot", title="I'm a teapot")
        if kind == "crash":
            raise RuntimeError("secret internals that must not leak")
        return Response({"kind": kind})


class TightThrottle(SimpleRateThrottle):
    rate = "3/min"
    scope = "tight"

    def get_cache_key(self, request, view):
        return f"test-throttle:{request.auth.operator_urn}:{time.time_ns() // 60_000_000_000}"


class Throttled(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]
    throttle_classes = [TightThrottle]

    def get(self, request):
        return Response({"ok": True})


test_routes = [
    path("whoami", WhoAmI.as_view()),
    path("supervisor", SupervisorOnly.as_view()),
    path("admin-only", AdminOnly.as_view()),
    path("audit-readers", AuditReaders.as_view()),
    path("events/<uuid:event_id>", EventDetail.as_view()),
    path("cases/<str:case_urn>", CaseByUrn.as_view()),
    path("echo", Echo.as_view()),
    path("fail/<str:kind>", Failures.as_view()),
    path("throttled", Throttled.as_view()),
]

urlpatterns = [path("v1/_test/", include(test_routes)), *project_urlpatterns]
