"""Test-only routes for the idempotency contract: POSTs with an observable side effect (an outbox row)."""

import threading
import time

from django.urls import path
from rest_framework.response import Response

from nexa.platform.context import current_correlation_urn
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import validation_problem
from nexa.platform.views import NexaAPIView

# The gated route announces it is running, then waits for the test to let it finish.
GATE_ENTERED = threading.Event()
GATE_OPEN = threading.Event()


def _write_event(request) -> OutboxEvent:
    event = request.data.get("event") if isinstance(request.data, dict) else None
    if not isinstance(event, str) or not event:
        raise validation_problem([{"field": "event", "message": "A non-empty string is required."}])
    return OutboxEvent.objects.create(
        event=event,
        payload=request.data,
        airline=request.auth.airline,
        correlation_urn=current_correlation_urn() or "",
    )


def _created(row: OutboxEvent) -> Response:
    return Response(
        {"id": str(row.id), "event": row.event, "correlationUrn": row.correlation_urn},
        status=201,
        headers={"Location": f"/v1/_test/idem/things/{row.id}", "X-Thing-Id": str(row.id)},
    )


class ThingsView(NexaAPIView):
    """POST writes one outbox row (400 without ``event``); PUT does the same, un-deduplicated.

    ``holdSeconds`` in the body keeps the POST running a little, to widen race windows.
    """

    def post(self, request):
        row = _write_event(request)
        time.sleep(min(float(request.data.get("holdSeconds", 0)), 2.0))
        return _created(row)

    def put(self, request):
        return _created(_write_event(request))


class WriteThenRefuseView(NexaAPIView):
    """Writes a row, then answers 409 without raising: the write must not survive."""

    def post(self, request):
        _write_event(request)
        return Response({"refused": True}, status=409)


class WriteThenCrashView(NexaAPIView):
    """Writes a row, then fails unexpectedly (a 500)."""

    def post(self, request):
        _write_event(request)
        raise RuntimeError("boom")


class GatedView(NexaAPIView):
    """Stays in flight until the test opens the gate."""

    def post(self, request):
        GATE_ENTERED.set()
        if not GATE_OPEN.wait(timeout=20):
            raise RuntimeError("the gate was never opened")
        return _created(_write_event(request))


class NoContentView(NexaAPIView):
    def post(self, request):
        _write_event(request)
        return Response(status=204)


urlpatterns = [
    path("v1/_test/idem/things", ThingsView.as_view()),
    path("v1/_test/idem/refuse", WriteThenRefuseView.as_view()),
    path("v1/_test/idem/crash", WriteThenCrashView.as_view()),
    path("v1/_test/idem/gated", GatedView.as_view()),
    path("v1/_test/idem/no-content", NoContentView.as_view()),
]
