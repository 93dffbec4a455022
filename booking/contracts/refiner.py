"""The hosted-model adapter for the contract wizard: used only when its URL and key are configured.

Contract (same as the deterministic parser's): given the document's text and the proposed terms, answer
``{"terms": {field: {"value", "confidence", "snippet"}}}``. Every term it returns is checked with the same
rules as the parser's (a date must be a date, a rate an amount and a three-letter currency …); an invalid
one is dropped and the parser's proposal kept. Any failure of the call (timeout, HTTP error, a body that is
not that shape) keeps the parser's terms: the wizard never fails because the model did.

Settings: ``NEXA_CONTRACTS_MODEL_URL`` (an HTTPS endpoint accepting ``POST {"text", "terms", "fields"}``)
and ``NEXA_CONTRACTS_MODEL_API_KEY`` (sent as ``Authorization: Bearer``); ``NEXA_CONTRACTS_MODEL_TIMEOUT_SECONDS``.
The document text is sent to that endpoint: configure only a processor the airline has approved.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any, Protocol

import httpx
import structlog
from django.conf import settings

from booking.contracts.extraction import FIELDS, SNIPPET_MAX, Term, parse_amount
from booking.contracts.models import Meal

logger = structlog.get_logger("nexa.providers")
MAX_TEXT_CHARS = 50_000


class ContractTermsRefiner(Protocol):
    name: str

    def refine(self, *, text: str, terms: dict[str, Term]) -> dict[str, Term] | None:
        """Better terms, or None to keep ``terms``."""


def _valid_value(field: str, value: Any) -> Any:
    """The value in its wire form when it is valid for ``field``; raises ValueError otherwise."""
    if field in ("validFrom", "validTo"):
        return dt.date.fromisoformat(str(value)).isoformat()
    if field == "allotment":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
            raise ValueError(field)
        return value
    if field == "releaseHours":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 720:
            raise ValueError(field)
        return value
    if field == "rate":
        amount = parse_amount(str(value["amount"]))
        currency = str(value["currency"])
        if amount is None or not re.fullmatch(r"[A-Z]{3}", currency):
            raise ValueError(field)
        return {"amount": f"{amount:.2f}", "currency": currency}
    if field == "mealsIncluded":
        meals = [str(meal) for meal in value]
        if not set(meals) <= set(Meal.values):
            raise ValueError(field)
        return meals
    if field in ("hotelName", "cancellationTerms"):
        text = str(value).strip()
        if not text or "\x00" in text:
            raise ValueError(field)
        return text[:2000]
    raise ValueError(field)


def merge_answer(answer: Any, terms: dict[str, Term]) -> dict[str, Term]:
    """``terms`` with the valid terms of a model's ``answer`` in place of the parser's."""
    merged = dict(terms)
    proposed = answer.get("terms") if isinstance(answer, dict) else None
    if not isinstance(proposed, dict):
        raise ValueError("the answer has no terms object")
    for field in FIELDS:
        item = proposed.get(field)
        if not isinstance(item, dict) or "value" not in item:
            continue
        try:
            value = _valid_value(field, item["value"])
            confidence = float(item.get("confidence", 0.5))
        except (ValueError, TypeError, KeyError):
            continue
        if not 0.0 <= confidence <= 1.0:
            continue
        snippet = " ".join(str(item.get("snippet", "")).split())[:SNIPPET_MAX]
        merged[field] = Term(value, confidence, snippet)
    return merged


class HostedModelRefiner:
    name = "hosted-model"

    def __init__(self, *, url: str, api_key: str, timeout_seconds: float = 10.0):
        self.url = url
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds

    def refine(self, *, text: str, terms: dict[str, Term]) -> dict[str, Term] | None:
        started = time.monotonic()
        outcome, status = "ok", None
        try:
            response = httpx.post(
                self.url,
                json={
                    "text": text[:MAX_TEXT_CHARS],
                    "terms": {field: term.as_json() for field, term in terms.items()},
                    "fields": list(FIELDS),
                },
                headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
                timeout=self.timeout_seconds,
            )
            status = response.status_code
            response.raise_for_status()
            return merge_answer(response.json(), terms)
        except (httpx.HTTPError, ValueError) as error:
            outcome = type(error).__name__
            return None
        finally:
            (logger.info if outcome == "ok" else logger.warning)(
                "provider.call",
                provider="contracts-model",
                operation="refine_contract_terms",
                method="POST",
                path=httpx.URL(self.url).path,
                http_status=status,
                duration_ms=round((time.monotonic() - started) * 1000),
                outcome=outcome,
            )


def configured_refiner() -> ContractTermsRefiner | None:
    url = getattr(settings, "NEXA_CONTRACTS_MODEL_URL", "")
    key = getattr(settings, "NEXA_CONTRACTS_MODEL_API_KEY", "")
    if not (url and key):
        return None
    return HostedModelRefiner(
        url=url, api_key=key, timeout_seconds=getattr(settings, "NEXA_CONTRACTS_MODEL_TIMEOUT_SECONDS", 10.0)
    )
