"""Schemathesis hooks for tests/e2e/test_schemathesis.py (loaded through ``SCHEMATHESIS_HOOKS``).

The OpenAPI schema states every *syntactic* rule the server enforces (patterns, bounds, enums, required
fields). A few rules are not syntax and no JSON Schema can state them; the server refuses a request that
breaks one with a documented 400 problem naming the field. Only for those, and only when the problem's
``errors`` name nothing but such fields, a ``positive_data_acceptance`` failure is dropped here. Every other
refusal of a schema-valid request still fails the run.
"""

import json
import os
import re
import threading
from collections import Counter

import schemathesis

# (operation or "*", field regex) → the rule no schema can state. The field is matched in full.
SEMANTIC_RULES: dict[tuple[str, str], str] = {
    ("*", r"cursor"): "a cursor is an opaque HMAC-signed token issued by the previous page, bound to its route, "
    "filters and airline; a client cannot make one up",
    ("GET /v1/cases", r"airport"): "membership in the airport catalog (airportsdata, ~7 800 codes)",
    ("POST /v1/cases", r"airport"): "membership in the airport catalog",
    ("GET /v1/cases", r"to"): "to must not be before from (a relation between two parameters)",
    ("GET /v1/audit", r"to"): "to must not be before from",
    ("GET /v1/audit/export.csv", r"to"): "to must not be before from",
    ("POST /v1/cases", r"scheduledDeparture"): "within a day of flightDate in the airport's time zone",
    ("POST /v1/cases", r"passengers\[\d+\]"): "the same passenger (PNR and name) twice in the batch",
    ("POST /v1/cases/{case_urn}/manifest", r"passengers\[\d+\]"): "a passenger already on the manifest or "
    "twice in the batch",
    ("POST /v1/cases/{case_urn}/passenger-groups", r"groups\[\d+\]\[\d+\]"): "a sub-case of this case, in "
    "one group only",
    ("POST /v1/notifications/{case_urn}/send", r"subCaseUrns\[\d+\]"): "a sub-case of this case",
    ("POST /v1/transport/cases/{case_urn}/transfers/request", r"subCaseUrns|groupUrns"): "at least one sub-case "
    "or group (a relation between two members)",
    ("POST /v1/transport/cases/{case_urn}/transfers/request", r"(subCaseUrns|groupUrns)\[\d+\]"): "a sub-case "
    "or group of this case",
    ("POST /v1/transport/cases/{case_urn}/transfers/request", r"pickupAt"): "in the future (relative to now)",
    ("POST /v1/subcases/{sub_case_urn}/compensate", r"items\[\d+\]\.(expiresAt|pickupAt)"): "in the future",
    ("POST /v1/policies/generate-ai", r"description"): "a description in which the parser (or the configured "
    "model) reads at least one rule (422 listing what it could not read)",
    ("POST /v1/subcases/{sub_case_urn}/compensate", r"items"): "the airline's compensation limits (a sum over "
    "items and, after w-money, over earlier runs); shape errors on items are stated by minItems/maxItems",
    ("POST /v1/hotels/search", r"airport|caseUrn"): "exactly one of airport and caseUrn (a relation between "
    "two members)",
    ("POST /v1/hotels/search", r"checkIn"): "from yesterday to a year ahead (relative to today)",
    ("GET /v1/contracts", r"airport"): "membership in the airport catalog",
    ("POST /v1/contracts", r"airport"): "membership in the airport catalog, and the hotel's airport (a relation "
    "between two members)",
    ("POST /v1/contracts", r"hotelUrn"): "a hotel of the airline's catalog",
    ("POST /v1/contracts", r"validTo"): "validTo must not be before validFrom (a relation between two members)",
    ("POST /v1/contracts", r"validFrom"): "no other current contract of the airline for the same hotel on any of "
    "the same nights (422 contract-overlap: depends on the contracts already written)",
    ("POST /v1/contracts", r"urn|version"): "urn and version are given together (a relation between two members)",
    ("POST /v1/contracts/analyze-pdf", r"file"): "the file's content is a PDF, PNG or JPEG that can be read "
    "(415 by its magic bytes; 422 encrypted or corrupt; 400 empty)",
    ("POST /v1/demand/case/{case_urn}", r"checkIn"): "from yesterday to a year ahead (relative to today)",
    ("POST /v1/demand/case/{case_urn}", r"groupUrns"): "groupUrns or subCaseUrns, not both (a relation between "
    "two members)",
    ("POST /v1/demand/case/{case_urn}", r"(subCaseUrns|groupUrns)\[\d+\]"): "a sub-case or group of this case "
    "(400); a passenger who is GROUPED and in no open demand wave (422: depends on the case's state)",
    ("POST /v1/demand/case/{case_urn}", r"subCaseUrns"): "a grouped passenger of the case left to ask rooms for "
    "(422: depends on the case's state)",
    ("POST /v1/booking/manual-reservations", r"checkIn"): "not before yesterday (relative to today)",
    ("POST /v1/booking/manual-reservations", r"hotelUrn"): "a hotel of the airline's catalog",
    ("POST /v1/booking/manual-reservations", r"rate\.amount"): "greater than zero",
    ("POST /v1/booking/manual-reservations", r"rate\.currency"): "an ISO 4217 code (membership in the list)",
    ("POST /v1/cases/{case_urn}/allocate", r"demandUrn"): "a demand of this case (a relation between the path and "
    "the body: 422)",
    ("POST /v1/booking/manual-reservations", r"subCaseUrns\[\d+\]"): "a sub-case of the case named by caseUrn "
    "(a relation between two members)",
    ("GET /v1/manual-review/reports/weekly", r"week"): "W53 exists only in ISO years that have 53 weeks (a calendar "
    "rule; the pattern states the rest)",
}

# Problems that depend on what happened before, not on the request (RFC 9457 type → why).
STATEFUL_PROBLEMS: dict[str, str] = {
    "https://api.nexa/problems/idempotency-key-reused": "the fuzzer sent an Idempotency-Key it had already used "
    "with another body (ARCHITECTURE §3.6: 422)",
    "https://api.nexa/problems/demand-initial-exists": "the case already has an INITIAL demand wave (one per "
    "case: 409 naming it)",
    "https://api.nexa/problems/demand-initial-missing": "an INCREMENTAL demand wave before the case's INITIAL one",
    "https://api.nexa/problems/demand-already-resolved": "the demand wave was approved or rejected already",
    "https://api.nexa/problems/demand-expired": "the demand wave passed its approval TTL",
    "https://api.nexa/problems/version-conflict": "the version sent is not the current one (optimistic "
    "concurrency: 409 with the current version, after another write)",
}


def _rule_for(operation: str, field: str) -> str | None:
    for (rule_operation, pattern), rule in SEMANTIC_RULES.items():
        if rule_operation in ("*", operation) and re.fullmatch(pattern, field):
            return rule
    return None


# The platform's JSON parser refuses integer literals of more than 20 digits anywhere in a body (past any
# 64-bit column and past what IEEE-754 peers can read back, RFC 8259 §6; docs/platform.md). OpenAPI can bound
# the integers it names, not those in members an open object leaves unnamed, so only this exact refusal of
# the whole body is excused.
_OVERSIZED_INTEGER = re.compile(r"The body is not valid JSON: an integer of \d+ digits is out of range\.")


def semantic_refusal(operation: str, status: int, body: dict | None) -> str | None:
    """The rule when the refusal is one the schema cannot state (a stateful problem, an integer literal
    past 20 digits, or a 400/422 whose errors all name fields under :data:`SEMANTIC_RULES`), else None."""
    if not isinstance(body, dict):
        return None
    if body.get("type") in STATEFUL_PROBLEMS:
        return STATEFUL_PROBLEMS[body["type"]]
    errors = body.get("errors")
    if (
        status == 400
        and body.get("type") == "https://api.nexa/problems/malformed-body"
        and isinstance(errors, list)
        and errors
        and all(isinstance(e, dict) and _OVERSIZED_INTEGER.fullmatch(str(e.get("message"))) for e in errors)
    ):
        return "JSON integer literals are limited to 20 digits (the platform parser; not stateable in OpenAPI)"
    # 415 only where errors names the field (the contract wizard's file content, by its magic bytes).
    if status not in (400, 415, 422) or not isinstance(errors, list) or not errors:
        return None
    rules = [_rule_for(operation, str(error.get("field"))) if isinstance(error, dict) else None for error in errors]
    return "; ".join(sorted(set(rules))) if all(rules) else None


# What was dropped and why, written for the test to print (NEXA_SCHEMATHESIS_DROPPED: a file path).
_dropped: Counter = Counter()
_dropped_lock = threading.Lock()  # schemathesis workers are threads


def _drop(operation: str, why: str) -> bool:
    with _dropped_lock:
        _dropped[f"{operation}: {why}"] += 1
        path = os.environ.get("NEXA_SCHEMATHESIS_DROPPED")
        if path:
            with open(path, "w") as out:
                json.dump(dict(_dropped.most_common()), out, indent=1)
    return False


def _operation(case) -> str:
    path = case.operation.path
    return f"{case.operation.method.upper()} {path if path.startswith('/v1') else '/v1' + path}"


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    operation = _operation(case)
    if response is not None and response.status_code >= 500:
        return True
    if "positive_data_acceptance" not in getattr(failure, "checks", ()):
        return True
    meta = getattr(case, "meta", None)
    if meta is not None and any(info.mode.is_negative for info in meta.components.values()):
        # schemathesis labels the case positive while a component was generated to violate the schema
        return _drop(operation, "a component was generated negative")
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        body = None
    rule = semantic_refusal(operation, response.status_code, body)
    return True if rule is None else _drop(operation, f"{response.status_code}: {rule}")
