"""GET /v1/cases/{case_urn}/events: Server-Sent Events against a live uvicorn and the real database.

Events are committed in the test process (services or ``publish`` inside ``transaction.atomic()``,
relayed on commit); the server process sees them through the shared outbox table.
"""

import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import jwt
import pytest
from django.db import connection, transaction
from django.utils import timezone

from cases import services
from cases.api.event_stream import DB_THREADS
from cases.events import case_room, publish_case_updated
from nexa.platform.auth import Principal, revoke_token_id
from nexa.platform.events import rooms_for
from nexa.platform.models import OutboxEvent
from nexa.platform.outbox import flush_pending, publish
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db(transaction=True)

HEARTBEAT_SECONDS = 1.0
PRINCIPAL = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:ib-op", subject="op")


# --- a minimal SSE client over httpx ----------------------------------------------------------------


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def is_event(self) -> bool:
        return self.event is not None or bool(self.data)

    @property
    def json(self):
        return json.loads("\n".join(self.data))


class SseReader:
    """Parses ``text/event-stream`` line by line (each read bounded by the client's read timeout)."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self._lines = response.iter_lines()

    def next_frame(self, deadline: float) -> Frame | None:
        """The next frame (event or comment block); ``None`` when the server ended the stream."""
        frame = Frame()
        for line in self._lines:
            assert time.monotonic() < deadline, "no complete SSE frame before the deadline"
            if line == "":
                if frame.is_event or frame.comments:
                    return frame
                continue
            if line.startswith(":"):
                frame.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                frame.id = value
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data.append(value)
        return None

    def events_until(self, count: int, timeout: float = 10.0) -> list[Frame]:
        """The next ``count`` event frames (comments skipped)."""
        deadline = time.monotonic() + timeout
        events: list[Frame] = []
        while len(events) < count:
            frame = self.next_frame(deadline)
            assert frame is not None, f"stream ended after {len(events)} of {count} events"
            if frame.is_event:
                events.append(frame)
        return events

    def events_before_heartbeat(self, timeout: float = HEARTBEAT_SECONDS * 6) -> list[Frame]:
        """Every event frame up to the next heartbeat (a quiet period: nothing else was pending)."""
        deadline = time.monotonic() + timeout
        events: list[Frame] = []
        while True:
            frame = self.next_frame(deadline)
            assert frame is not None, "stream ended before a heartbeat"
            if frame.is_event:
                events.append(frame)
            if "heartbeat" in frame.comments:
                return events


@pytest.fixture(scope="module")
def sse_server(asgi_server_factory):
    # Persistent connections as in production, so a stream that kept one would show.
    return asgi_server_factory(
        extra_env={"NEXA_SSE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS), "DATABASE_CONN_MAX_AGE": "60"}
    )


@pytest.fixture
def http(sse_server):
    with httpx.Client(base_url=sse_server.base_url, timeout=httpx.Timeout(5.0, read=4.0)) as client:
        yield client


@pytest.fixture
def open_stream(http, token_for):
    """``open_stream(case_urn, token=None, headers=None, params=None)`` → an :class:`SseReader` whose
    opening comment has been read (the server has fixed its starting offset)."""
    with contextlib.ExitStack() as stack:

        def open_(case_urn: str, *, token: str | None = None, headers=None, params=None) -> SseReader:
            token = token or token_for("IB", Role.AIRPORT_OPERATOR)
            request_headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **(headers or {})}
            response = stack.enter_context(
                http.stream("GET", f"/v1/cases/{case_urn}/events", headers=request_headers, params=params)
            )
            assert response.status_code == 200, response.read()
            reader = SseReader(response)
            opening = reader.next_frame(time.monotonic() + 5)
            assert opening is not None and opening.comments, "the stream opens with a comment"
            return reader

        yield open_


def publish_on(case, *, status: str = "OPEN", version: int = 1) -> int:
    """Commit one ``case:updated`` in ``case``'s rooms and return its stream offset (assigned by the relay
    after commit)."""
    with transaction.atomic():
        row = publish(
            "case:updated",
            {"caseUrn": case.urn, "status": status, "version": version, "counts": {}},
            rooms_for("case:updated", case_urn=case.urn, airline=case.airline),
            airline=case.airline,
        )
    assert flush_pending(), "the background relay is stuck"
    sequence = OutboxEvent.objects.get(pk=row.pk).sequence
    assert sequence is not None, "the relay delivers on commit"
    return sequence


def wait_for_log(server, predicate, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if predicate(line)]
        if lines:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"no matching server log line:\n{server.log_tail()}")


# --- live events ------------------------------------------------------------------------------------


def test_live_events_arrive_with_their_offsets(http, token_for, sse_server):
    sub_case = SubCaseFactory()
    case = sub_case.case
    token = token_for("IB", Role.AIRPORT_OPERATOR)
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    with http.stream("GET", f"/v1/cases/{case.urn}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        reader = SseReader(response)
        assert reader.next_frame(time.monotonic() + 5).comments  # opening comment

        services.subcase_transition(
            principal=PRINCIPAL, sub_case=sub_case, transition="mark_grouped", expected_version=1
        )
        assert flush_pending()  # offsets are assigned by the relay, after commit
        expected = list(OutboxEvent.objects.filter(rooms__contains=[case_room(case.urn)]).order_by("sequence"))
        assert {row.event for row in expected} >= {"subcase:state-changed"}

        frames = reader.events_until(len(expected))
        assert [(f.id, f.event, f.json) for f in frames] == [
            (str(row.sequence), row.event, row.payload) for row in expected
        ]
        state_changed = next(f for f in frames if f.event == "subcase:state-changed")
        assert state_changed.json["subCaseUrn"] == sub_case.urn
        assert state_changed.json["status"] == "GROUPED"

        later = publish_on(case, status="IN_PROGRESS", version=9)
        [frame] = reader.events_until(1)
        assert (frame.id, frame.event, frame.json["version"]) == (str(later), "case:updated", 9)


def test_other_cases_and_internal_events_are_not_streamed(open_stream):
    case, other = CaseFactory(), CaseFactory()
    stream = open_stream(case.urn)

    publish_on(other, status="OPEN", version=1)
    with transaction.atomic():
        publish("operator:deactivated", {"operatorUrn": "urn:nexa:user:x"}, [case_room(case.urn), "airline:IB"])
    mine = publish_on(case, status="OPEN", version=2)

    frames = stream.events_before_heartbeat()
    assert [(f.id, f.json["caseUrn"]) for f in frames] == [(str(mine), case.urn)]


def test_heartbeat_comment_during_silence(open_stream):
    stream = open_stream(CaseFactory().urn)
    deadline = time.monotonic() + HEARTBEAT_SECONDS * 6
    heartbeats: list[float] = []
    while len(heartbeats) < 2:
        frame = stream.next_frame(deadline)
        assert frame is not None
        assert not frame.is_event
        if "heartbeat" in frame.comments:
            heartbeats.append(time.monotonic())
    assert heartbeats[1] - heartbeats[0] >= HEARTBEAT_SECONDS * 0.5


# --- replay -----------------------------------------------------------------------------------------


def test_last_event_id_replays_exactly_the_later_events_in_order(open_stream):
    case, other = CaseFactory(), CaseFactory()
    mine = []
    for version in range(1, 5):
        mine.append(publish_on(case, status="OPEN", version=version))
        publish_on(other, status="OPEN", version=version)
    with transaction.atomic():
        publish("operator:deactivated", {"operatorUrn": "urn:nexa:user:x"}, [case_room(case.urn)])

    replayed = open_stream(case.urn, headers={"Last-Event-ID": str(mine[1])}).events_before_heartbeat()
    assert [(f.id, f.event, f.json["version"]) for f in replayed] == [
        (str(mine[2]), "case:updated", 3),
        (str(mine[3]), "case:updated", 4),
    ]

    # The query parameter (EventSource polyfills) works the same; the header wins over it.
    by_query = open_stream(case.urn, params={"lastEventId": str(mine[0])}).events_before_heartbeat()
    assert [f.id for f in by_query] == [str(s) for s in mine[1:]]
    header_wins = open_stream(
        case.urn, headers={"Last-Event-ID": str(mine[2])}, params={"lastEventId": str(mine[0])}
    ).events_before_heartbeat()
    assert [f.id for f in header_wins] == [str(mine[3])]


def test_replay_then_live_without_gap(open_stream):
    case = CaseFactory()
    first = publish_on(case, status="OPEN", version=1)
    second = publish_on(case, status="OPEN", version=2)
    stream = open_stream(case.urn, headers={"Last-Event-ID": str(first)})
    third = publish_on(case, status="OPEN", version=3)
    assert [f.id for f in stream.events_until(2)] == [str(second), str(third)]


def test_last_event_id_beyond_retention_resumes_from_what_is_retained(open_stream):
    case = CaseFactory()
    sequences = [publish_on(case, status="OPEN", version=v) for v in (1, 2, 3)]
    OutboxEvent.objects.filter(sequence__in=sequences[:2]).update(dispatched_at=timezone.now() - timedelta(hours=2))

    stream = open_stream(case.urn, headers={"Last-Event-ID": str(sequences[0] - 1)})
    frames = stream.events_before_heartbeat()
    notice, *events = frames
    assert notice.event == "replay-truncated" and notice.id is None
    assert notice.json["reason"] == "retention"
    assert notice.json["resumedAfter"] == str(sequences[1])
    assert [f.id for f in events] == [str(sequences[2])]


def test_last_event_id_ahead_of_the_stream_resumes_live(open_stream):
    case = CaseFactory()
    head = publish_on(case, status="OPEN", version=1)
    stream = open_stream(case.urn, headers={"Last-Event-ID": str(head + 10_000)})
    [notice] = stream.events_until(1)
    assert (notice.event, notice.json["reason"]) == ("replay-truncated", "unknown-offset")
    live = publish_on(case, status="OPEN", version=2)
    [frame] = stream.events_until(1)
    assert frame.id == str(live)


# --- refusals before the stream starts --------------------------------------------------------------


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["instance"].startswith("urn:nexa:correlation:")
    return body


def test_refusals_are_problem_documents(http, token_for):
    case = CaseFactory()
    path = f"/v1/cases/{case.urn}/events"

    def bearer(token):
        return {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}

    assert _problem(http.get(path, headers={"Accept": "text/event-stream"}), 401)["type"].endswith("/unauthorized")
    _problem(http.get(path, headers=bearer("not-a-jwt")), 401)
    _problem(http.get(path, headers=bearer(token_for("IB", Role.FINANCE_AUDIT))), 403)
    # Another airline's case is indistinguishable from a missing one.
    _problem(http.get(path, headers=bearer(token_for("VY", Role.ADMIN))), 404)
    _problem(
        http.get(
            "/v1/cases/urn:nexa:case:0190d8a4-0000-7000-8000-000000000000/events",
            headers=bearer(token_for("IB", Role.AIRPORT_OPERATOR)),
        ),
        404,
    )
    operator = bearer(token_for("IB", Role.AIRPORT_OPERATOR))
    _problem(http.get("/v1/cases/not-a-urn/events", headers=operator), 400)
    _problem(http.get(f"/v1/cases/{case.urn.replace(':case:', ':subcase:')}/events", headers=operator), 400)
    bad_offset = _problem(http.get(path, headers={**operator, "Last-Event-ID": "abc"}), 400)
    assert bad_offset["errors"][0]["field"] == "Last-Event-ID"
    _problem(http.get(path, headers=operator, params={"lastEventId": "-1"}), 400)
    # A client that only accepts JSON cannot be served a stream.
    _problem(http.get(path, headers={**operator, "Accept": "application/json"}), 406)


def test_supervisors_and_admins_may_stream(open_stream, token_for):
    case = CaseFactory()
    for role in (Role.OPS_SUPERVISOR, Role.ADMIN):
        stream = open_stream(case.urn, token=token_for("IB", role))
        sequence = publish_on(case, status="OPEN", version=1)
        assert [f.id for f in stream.events_until(1)] == [str(sequence)]


# --- lifetime ---------------------------------------------------------------------------------------


def test_stream_ends_when_the_token_expires(open_stream, token_for):
    started = time.monotonic()
    stream = open_stream(CaseFactory().urn, token=token_for("IB", Role.AIRPORT_OPERATOR, ttl_seconds=3))
    deadline = time.monotonic() + 10
    comments: list[str] = []
    while (frame := stream.next_frame(deadline)) is not None:
        comments.extend(frame.comments)
    elapsed = time.monotonic() - started
    assert any("token expired" in comment for comment in comments), comments
    assert 1.0 <= elapsed <= 6.0, elapsed


def test_stream_ends_at_the_next_heartbeat_after_revocation(open_stream, token_for):
    token = token_for("IB", Role.AIRPORT_OPERATOR)
    stream = open_stream(CaseFactory().urn, token=token)
    revoke_token_id(jwt.decode(token, options={"verify_signature": False})["jti"], ttl_seconds=60)
    deadline = time.monotonic() + HEARTBEAT_SECONDS * 6
    comments: list[str] = []
    while (frame := stream.next_frame(deadline)) is not None:
        comments.extend(frame.comments)
    assert comments[-1] == "token revoked", comments


def test_stream_ends_at_the_next_heartbeat_after_the_operator_is_deactivated(open_stream, token_for):
    from operators.models import Operator

    operator = "urn:nexa:user:ib-streamer"
    Operator.objects.create(operator_urn=operator, airline="IB", role="AIRPORT_OPERATOR", display_name="s")
    stream = open_stream(CaseFactory().urn, token=token_for("IB", Role.AIRPORT_OPERATOR, operator))
    Operator.objects.filter(operator_urn=operator).update(active=False)
    Operator.objects.get(operator_urn=operator).save()  # as Django admin would: indexed
    deadline = time.monotonic() + HEARTBEAT_SECONDS * 6
    comments: list[str] = []
    while (frame := stream.next_frame(deadline)) is not None:
        comments.extend(frame.comments)
    assert comments[-1] == "operator deactivated", comments


def test_revocation_is_checked_even_while_events_keep_flowing(open_stream, token_for):
    """The standing check runs every heartbeat period, not only during silence."""
    case = CaseFactory()
    token = token_for("IB", Role.AIRPORT_OPERATOR)
    stream = open_stream(case.urn, token=token)
    revoke_token_id(jwt.decode(token, options={"verify_signature": False})["jti"], ttl_seconds=60)
    deadline = time.monotonic() + HEARTBEAT_SECONDS * 6
    comments: list[str] = []
    while time.monotonic() < deadline:
        publish_on(case)
        frame = stream.next_frame(deadline)
        if frame is None:
            break
        comments.extend(frame.comments)
    else:
        raise AssertionError(f"the stream never ended: {comments}")
    assert comments[-1] == "token revoked", comments


def _server_connections() -> int:
    """Backends on the test database other than this test process's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _min_connections_over(seconds: float) -> int:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(_server_connections())
        time.sleep(0.05)
    return min(samples)


def test_streams_hold_no_connection_and_stop_on_disconnect(sse_server, http, token_for):
    case = CaseFactory()
    baseline = _min_connections_over(1.0)
    headers = {"Authorization": f"Bearer {token_for('IB', Role.AIRPORT_OPERATOR)}"}
    streams = DB_THREADS * 2
    with contextlib.ExitStack() as stack:
        for _ in range(streams):
            response = stack.enter_context(http.stream("GET", f"/v1/cases/{case.urn}/events", headers=headers))
            assert response.status_code == 200
            assert SseReader(response).next_frame(time.monotonic() + 5).comments
        # A stream that kept a connection would pin one backend each for its whole life; all streams of a
        # process share the pool's DB_THREADS persistent connections instead.
        assert _min_connections_over(1.5) <= baseline + DB_THREADS
    # Closing the client ends every server-side generator (Django cancels it on http.disconnect).
    deadline = time.monotonic() + 10
    closed: list[str] = []
    while len(closed) < streams and time.monotonic() < deadline:
        closed = wait_for_log(
            sse_server,
            lambda line: "event_stream.closed" in line and case.urn in line and "client-disconnected" in line,
        )
        time.sleep(0.1)
    assert len(closed) == streams, sse_server.log_tail()
    assert _min_connections_over(1.0) <= baseline + DB_THREADS


def test_published_case_updated_helper_reaches_the_stream(open_stream):
    """The domain's own publisher (the one services call), not only raw ``publish``."""
    case = CaseFactory()
    stream = open_stream(case.urn)
    with transaction.atomic():
        publish_case_updated(case_urn=case.urn, airline="IB", status="IN_PROGRESS", version=2, counts={"OPEN": 1})
    [frame] = stream.events_until(1)
    assert frame.event == "case:updated"
    assert frame.json == {"caseUrn": case.urn, "status": "IN_PROGRESS", "version": 2, "counts": {"OPEN": 1}}
