"""Bad input never gets a 500 (issue 9 §5): the platform JSON parser (nesting depth, NaN/Infinity, numbers
out of range, NUL characters), NUL in paths and query strings, and the strict parsers of
nexa.platform.inputs. Each case was a 500 before (RecursionError, ValueError from int() or
parse_datetime, PostgreSQL refusing NUL)."""

import datetime as dt
import json

import pytest
from django.test import Client

from nexa.platform.inputs import parse_aware_datetime, parse_strict_int, strict_int_or_none
from nexa.platform.parsers import MAX_JSON_DEPTH
from nexa.platform.problems import Problem
from tests.api_base import assert_problem

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.contract_urls")]

ECHO = "/v1/_test/echo"


def _post(token_for, text: str | bytes):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for()}")
    return client.post(ECHO, data=text, content_type="application/json")


def _errors(response, status=400, slug="malformed-body") -> list[dict]:
    body = assert_problem(response, status, slug)
    assert body["errors"] and all(set(error) == {"field", "message"} for error in body["errors"])
    return body["errors"]


# --- nesting -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_a_body_nested_100000_levels_is_a_400_not_a_recursion_error(token_for, opener, closer):
    text = opener * 100_000 + "1" + closer * 100_000
    errors = _errors(_post(token_for, text))
    assert errors == [{"field": "body", "message": f"The body is nested deeper than {MAX_JSON_DEPTH} levels."}]


def test_a_deep_body_with_an_idempotency_key_is_a_400_and_stores_nothing(token_for):
    """The key's request fingerprint decodes the raw body before the view parses it: a RecursionError there
    was a 500 too."""
    from nexa.platform.models import IdempotencyRecord

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for()}")
    response = client.post(
        ECHO,
        data="[" * 100_000 + "]" * 100_000,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="0192a0f0-0000-4000-8000-00000000dead",
    )
    _errors(response)
    assert not IdempotencyRecord.objects.exists()


def test_nesting_up_to_the_limit_is_accepted_and_one_more_is_refused(token_for):
    inner = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    assert _post(token_for, '{"a": ' + inner + "}").status_code == 200
    _errors(_post(token_for, '{"a": [' + inner + "]}"))


def test_brackets_inside_strings_do_not_count_as_nesting(token_for):
    text = json.dumps({"note": "[" * 500 + '\\"{' * 200})
    assert _post(token_for, text).status_code == 200


def test_a_deep_body_over_the_size_limit_is_still_a_413(token_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = _post(token_for, "[" * 100_000 + "]" * 100_000)
    assert_problem(response, 413, "payload-too-large")


def test_the_parser_refuses_a_deep_body_past_the_size_limit_with_a_413_before_looking_at_it(settings):
    """Without a Content-Length (chunked), the middleware cannot refuse early: the parser reads at most
    the limit plus one byte and answers 413 before any nesting scan or decoding."""
    import io

    from nexa.platform.parsers import NexaJSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    with pytest.raises(Problem) as caught:
        NexaJSONParser().parse(io.BytesIO(b"[" * 100_000 + b"]" * 100_000))
    assert (caught.value.status_code, caught.value.slug) == (413, "payload-too-large")
    with pytest.raises(Problem) as caught:
        NexaJSONParser().parse(io.BytesIO(b"[" * 4_000 + b"]" * 4_000))
    assert (caught.value.status_code, caught.value.slug) == (400, "malformed-body")


# --- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "1" + "0" * 5000],
    ids=["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "10**400", "10**5000"],
)
def test_numbers_json_cannot_hold_or_we_cannot_convert_are_a_400(token_for, literal):
    errors = _errors(_post(token_for, '{"lat": ' + literal + "}"))
    assert errors[0]["field"] == "body"
    assert "not valid JSON" in errors[0]["message"]


def test_ordinary_numbers_still_parse(token_for):
    response = _post(token_for, '{"a": 1e308, "b": -90.5, "c": 9223372036854775807, "d": 0}')
    assert response.status_code == 200
    assert response.json()["echo"] == {"a": 1e308, "b": -90.5, "c": 2**63 - 1, "d": 0}


# --- NUL ------------------------------------------------------------------------------------------------


def test_nul_in_any_string_is_a_400_naming_each_field(token_for):
    text = json.dumps({"pickup": {"address": "T4\x00"}, "items": [{"reason": "ok"}, {"reason": "\x00"}], "a": "b"})
    errors = _errors(_post(token_for, text))
    assert [error["field"] for error in errors] == ["items[1].reason", "pickup.address"]
    assert all("NUL" in error["message"] for error in errors)


def test_nul_in_a_key_is_a_400(token_for):
    errors = _errors(_post(token_for, json.dumps({"a\x00b": 1})))
    assert errors[0]["field"] == "a\\u0000b"


def test_a_lone_surrogate_is_a_400_naming_the_field_and_a_pair_is_a_character(token_for):
    """ "\\ud800" alone cannot be encoded as UTF-8: the address reached psycopg and was a 500."""
    errors = _errors(_post(token_for, '{"pickup": {"address": "T4 \\ud800"}, "ok": "\\ud83d\\ude00"}'))
    assert errors == [
        {"field": "pickup.address", "message": "must not contain NUL (U+0000) or a lone surrogate (U+D800 to U+DFFF)"}
    ]
    response = _post(token_for, '{"ok": "\\ud83d\\ude00 \\u00e9"}')
    assert response.status_code == 200
    assert response.json()["echo"] == {"ok": "\U0001f600 \u00e9"}


def test_an_escaped_backslash_before_u0000_is_not_nul(token_for):
    response = _post(token_for, json.dumps({"path": "C:\\u0000"}))
    assert response.status_code == 200
    assert response.json()["echo"] == {"path": "C:\\u0000"}


def test_nul_in_a_query_parameter_is_a_400_naming_it(client_for):
    response = client_for().get("/v1/airports/search?q=MA%00D&limit=5")
    errors = _errors(response, slug="validation-error")
    assert errors == [{"field": "q", "message": "must not contain the NUL character (%00)"}]


def test_nul_in_the_path_is_a_400(client_for):
    response = client_for("IB", "ADMIN").post(
        "/v1/operators/urn:nexa:user:x%00y/deactivate", data={"reason": "r"}, format="json"
    )
    errors = _errors(response, slug="validation-error")
    assert errors[0]["field"] == "path"


def test_a_path_longer_than_the_idempotency_record_holds_is_a_400(client_for):
    """With an Idempotency-Key the claim stores the path (varchar 1024): a longer one was a DataError."""
    response = client_for("IB", "ADMIN").post(
        "/v1/operators/urn:nexa:user:" + "x" * 2000 + "/deactivate",
        data={"reason": "r"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="0192a0f0-0000-4000-8000-00000000beef",
    )
    assert _errors(response, slug="validation-error") == [{"field": "path", "message": "at most 1024 characters"}]


# --- strict parsers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T12:99:00Z",  # parse_datetime raised ValueError
        "2024-13-01T12:00:00Z",
        "2024-02-30T12:00:00+01:00",
        "9999-12-31T23:59:59-23:59",  # astimezone(UTC) raised OverflowError
        "0001-01-01T00:00:00+14:00",
        "2024-01-01T12:00:00",  # naive
        "x" * 10_000,
        12,
        None,
    ],
)
def test_parse_aware_datetime_never_raises(value):
    assert parse_aware_datetime(value) is None


def test_parse_aware_datetime_normalises_to_utc():
    assert parse_aware_datetime(" 2030-01-01T12:00:00+01:00 ") == dt.datetime(2030, 1, 1, 11, tzinfo=dt.UTC)


@pytest.mark.parametrize("raw", ["²", "٣", "\uff11", "-1", "0", "+1", "1.0", "1e3", "", " ", str(2**63), "9" * 5000])
def test_strict_int_refuses_everything_but_ascii_digits_in_range(raw):
    assert strict_int_or_none(raw, minimum=1) is None
    with pytest.raises(Problem) as caught:
        parse_strict_int(raw, field="X-Fencing-Token")
    assert caught.value.status_code == 400
    assert caught.value.extensions["errors"][0]["field"] == "X-Fencing-Token"


def test_strict_int_accepts_the_range_edges():
    assert parse_strict_int(" 1 ", field="f") == 1
    assert parse_strict_int(str(2**63 - 1), field="f") == 2**63 - 1
