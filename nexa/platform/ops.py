"""Operational endpoints: liveness, readiness, metrics, the dev JWKS, the bench ping, console home."""

import os

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from rest_framework.response import Response

from nexa.platform import events as registry
from nexa.platform.auth import dev_issuer_enabled, dev_jwks
from nexa.platform.outbox import publish
from nexa.platform.problems import problem_response
from nexa.platform.redis import get_redis
from nexa.platform.views import NexaAPIView


def healthz(request):
    """The process is up and serving (no dependency checks: that is /readyz)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    get_redis().ping()


def _check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


READINESS_CHECKS = {"postgresql": _check_database, "redis": _check_redis, "broker": _check_broker}


def readyz(request):
    """Ready when PostgreSQL, Redis and the Celery broker all answer; else a 503 naming what is down."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            results[name] = f"down: {type(error).__name__}"
    down = [name for name, state in results.items() if state != "ok"]
    if down:
        return problem_response(
            status=503,
            slug="not-ready",
            title="Not ready",
            detail=f"Unavailable: {', '.join(down)}.",
            extensions={"checks": results, "failedDomain": down[0]},
            headers={"Retry-After": "5"},
        )
    return JsonResponse({"status": "ready", "checks": results})


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def jwks_view(request):
    """The development issuer's public keys (404 when a real provider is configured)."""
    if not dev_issuer_enabled():
        return problem_response(status=404, slug="not-found", title="Not found", detail="No development issuer.")
    return JsonResponse(dev_jwks())


class BenchPingView(NexaAPIView):
    """An authenticated bare endpoint: the denominator of every benchmark ratio (NEXA_BENCH=1 only)."""

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({"pong": True})


BENCH_WRITTEN = "bench:written"


class BenchWritten(registry.TypedDict):
    bench: bool


registry.declare(BENCH_WRITTEN, payload=BenchWritten, audience=registry.Audience.INTERNAL, description="bench/ only")


class BenchWriteView(NexaAPIView):
    """The floor of a write (NEXA_BENCH=1 only): the ping plus one transaction holding one outbox row,
    relayed after commit. bench/compensate.py measures it beside the ping, so the compensate figures can
    be read against what any write costs on the same server."""

    @extend_schema(exclude=True)
    def post(self, request):
        with transaction.atomic():
            publish(BENCH_WRITTEN, {"bench": True}, [], airline=request.auth.airline)
        return Response({"written": True}, status=202)
