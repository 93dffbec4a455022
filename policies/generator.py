"""Policy synthesis from a natural-language description (``POST /v1/policies/generate-ai``).

Two generators with one output contract, :class:`Generated`:

* :class:`PhraseParser` (the default): a deterministic parser of the common phrasings, in English
  and Spanish. Each rule it reads carries its value, a confidence and the exact words it came from;
  the fragments it could not read are listed (all of them unread → 422).
* :class:`HostedModelAdapter`, used only when ``NEXA_POLICY_MODEL_API_KEY`` is set (setting or
  environment): it POSTs a Messages-style request (``{model, system, messages, max_tokens}`` with
  ``x-api-key``) to ``NEXA_POLICY_MODEL_URL`` and reads ``content[0].text`` as the same JSON contract.
  Its prompt and answer are audited with the draft it produced (services do that).
"""

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from django.conf import settings

from policies.models import Cause, Tier
from policies.rules import validate_rules, validate_scope

DESCRIPTION_MAX_LENGTH = 2000


@dataclass
class Generated:
    """``rules``/``scope`` map a name to ``{value, confidence, source}``; ``unread`` lists fragments."""

    generator: str
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    scope: dict[str, dict[str, Any]] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)
    prompt: str | None = None
    answer: str | None = None

    def rule_values(self) -> dict[str, Any]:
        return {name: item["value"] for name, item in self.rules.items()}

    def scope_values(self) -> dict[str, str]:
        return {name: item["value"] for name, item in self.scope.items()}

    def provenance(self) -> dict[str, Any]:
        return {"generator": self.generator, "rules": self.rules, "scope": self.scope, "unread": self.unread}


class Generator(Protocol):
    name: str

    def generate(self, description: str) -> Generated: ...


class GeneratorUnavailable(Exception):
    pass


# --- the deterministic parser ------------------------------------------------------------------------

_NUM = r"(\d+(?:[.,]\d{1,2})?)"
_CURRENCIES = {
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "€": "EUR",
    "usd": "USD",
    "dollars": "USD",
    "dólares": "USD",
    "dolares": "USD",
    "$": "USD",
    "gbp": "GBP",
    "pounds": "GBP",
    "libras": "GBP",
    "£": "GBP",
    "cad": "CAD",
    "chf": "CHF",
}
_CUR = r"(eur(?:os?)?|€|usd|dollars|d[óo]lares|\$|gbp|pounds|libras|£|cad|chf)"
_MEALS = {
    "breakfast": "breakfast",
    "desayuno": "breakfast",
    "lunch": "lunch",
    "almuerzo": "lunch",
    "comida": "lunch",
    "dinner": "dinner",
    "supper": "dinner",
    "cena": "dinner",
}
_MEAL = r"(breakfast|desayuno|lunch|almuerzo|comida|dinner|supper|cena)"
_TIERS = [
    (r"premium\s+economy|premium\s+turista|turista\s+premium", Tier.PREMIUM_ECONOMY),
    (r"business(?:\s+class)?|clase\s+business|preferente", Tier.BUSINESS),
    (r"first(?:\s+class)?|primera(?:\s+clase)?", Tier.FIRST),
    (r"economy(?:\s+class)?|clase\s+turista|turista|econ[óo]mica", Tier.ECONOMY),
]
_CAUSES = [
    (r"missed\s+connections?|conexi[óo]n(?:es)?\s+perdidas?", Cause.MISSED_CONNECTION),
    (r"cancell?ations?|cancelled|canceled|cancelaci[óo]n(?:es)?|cancelados?", Cause.CANCELLATION),
    (r"delays?|delayed|retrasos?|retrasados?", Cause.DELAY),
    (r"diversions?|diverted|desv[íi]os?|desviados?", Cause.DIVERSION),
]


def _amount(raw: str) -> str:
    return f"{float(raw.replace(',', '.')):.2f}"


def _money(amount: str, currency: str) -> dict[str, str]:
    return {"amount": _amount(amount), "currency": _CURRENCIES[currency.lower()]}


class PhraseParser:
    """Reads clause by clause; a clause none of the patterns touch is reported as unread."""

    name = "deterministic"

    def generate(self, description: str) -> Generated:
        result = Generated(generator=self.name)
        for clause in re.split(r"[;\n]+|\.(?!\d)|,(?!\d)|\s(?:and|y|e)\s", description):
            text = clause.strip()
            if not text:
                continue
            before = json.dumps([result.rules, result.scope], sort_keys=True)
            self._read_clause(text, result)
            if json.dumps([result.rules, result.scope], sort_keys=True) == before:
                result.unread.append(text)
        return result

    @staticmethod
    def _put(target: dict, name: str, value: Any, confidence: float, source: str) -> None:
        if name not in target:
            target[name] = {"value": value, "confidence": confidence, "source": source.strip()}

    def _read_clause(self, text: str, out: Generated) -> None:
        low = text.lower()

        def find(pattern: str):
            return re.search(pattern, low, re.IGNORECASE)

        def words(match) -> str:
            return text[match.start() : match.end()]

        # meals first: "dinner 35 EUR" must not be read as a nightly rate
        for match in re.finditer(rf"{_MEAL}\s*(?:of|de|:)?\s*(?:up\s+to\s+|hasta\s+)?{_NUM}\s*{_CUR}", low):
            meals = out.rules.setdefault("mealAllowance", {"value": {}, "confidence": 0.9, "source": ""})
            meals["value"][_MEALS[match.group(1)]] = _money(match.group(2), match.group(3))
            meals["source"] = (meals["source"] + " | " if meals["source"] else "") + words(match)
        for match in re.finditer(rf"{_NUM}\s*{_CUR}\s*(?:for|para(?:\s+el|\s+la)?|de)?\s*{_MEAL}", low):
            meals = out.rules.setdefault("mealAllowance", {"value": {}, "confidence": 0.9, "source": ""})
            meals["value"][_MEALS[match.group(3)]] = _money(match.group(1), match.group(2))
            meals["source"] = (meals["source"] + " | " if meals["source"] else "") + words(match)
        if "mealAllowance" in out.rules and not out.rules["mealAllowance"]["value"]:
            del out.rules["mealAllowance"]
        has_meal = bool(find(_MEAL))

        if match := find(r"(\d)\s*(?:-\s*)?(?:stars?|estrellas?|\*)"):
            stars = int(match.group(1))
            if 1 <= stars <= 5:
                self._put(out.rules, "minStars", stars, 0.9, words(match))
        if match := find(
            rf"(?:within|under|less\s+than|up\s+to|at\s+most|max(?:imum)?|a\s+menos\s+de|dentro\s+de|hasta|"
            rf"m[áa]ximo(?:\s+de)?|como\s+m[áa]ximo\s+a)\s*{_NUM}\s*(?:km|kil[óo]metros?|kilometers?|kilometres?)"
        ):
            self._put(out.rules, "maxDistanceKm", float(match.group(1).replace(",", ".")), 0.9, words(match))
        elif match := find(rf"{_NUM}\s*(?:km|kil[óo]metros?|kilometers?|kilometres?)"):
            self._put(out.rules, "maxDistanceKm", float(match.group(1).replace(",", ".")), 0.6, words(match))
        if not has_meal:
            rate = find(rf"{_NUM}\s*{_CUR}\s*(?:a|per|/|por|the|la|cada)?\s*(?:night|noche)") or find(
                rf"{_CUR}\s*{_NUM}\s*(?:a|per|/|por)?\s*(?:night|noche)"
            )
            if rate:
                first, second = rate.group(1), rate.group(2)
                amount, currency = (first, second) if re.match(r"\d", first) else (second, first)
                self._put(out.rules, "maxNightlyRate", _money(amount, currency), 0.9, words(rate))
            elif match := find(rf"(?:rate|tarifa|price|precio)[^0-9]*{_NUM}\s*{_CUR}"):
                self._put(out.rules, "maxNightlyRate", _money(match.group(1), match.group(2)), 0.6, words(match))
        if match := find(
            r"(?:max(?:imum)?\s+|up\s+to\s+|hasta\s+|m[áa]ximo\s+)?(\d+)\s*(?:people|persons|guests|pax|passengers|"
            r"personas|pasajeros|hu[ée]spedes)\s*(?:per|a|por|each|cada)\s*(?:room|habitaci[óo]n)"
        ):
            per_room = int(match.group(1))
            occupancy = out.rules.setdefault("maxOccupancy", {"value": {}, "confidence": 0.9, "source": ""})
            occupancy["value"]["perRoom"] = per_room
            occupancy["source"] = (occupancy["source"] + " | " if occupancy["source"] else "") + words(match)
        if match := find(
            r"famil(?:y|ies)\s+(?:stay|stays|are\s+kept|kept|remain)\s+together|families\s+together|"
            r"familias?\s+(?:juntas?|unidas?|no\s+se\s+separan)|las\s+familias\s+se\s+quedan\s+juntas"
        ):
            occupancy = out.rules.setdefault("maxOccupancy", {"value": {}, "confidence": 0.8, "source": ""})
            occupancy["value"]["familyException"] = True
            occupancy["source"] = (occupancy["source"] + " | " if occupancy["source"] else "") + words(match)
        if match := find(
            r"(?:no|without|sin)\s+(?:ground\s+)?(?:transporte|transportation|transport|transfers?|shuttle|taxi|traslados?)"
        ):
            self._put(out.rules, "transport", False, 0.9, words(match))
        elif match := find(r"transporte|transportation|transport|transfers?|shuttle|taxi|traslados?"):
            self._put(out.rules, "transport", True, 0.8, words(match))
        if match := find(
            r"accessible|wheelchair|\bprm\b|reduced\s+mobility|accesibles?|silla\s+de\s+ruedas|movilidad\s+reducida|pmr"
        ):
            self._put(out.rules, "accessibleRoomForPrm", True, 0.8, words(match))
        if match := find(r"\b(eu\s?261|uk\s?261|dot|appr)\b"):
            code = match.group(1).upper().replace(" ", "")
            self._put(out.rules, "regulation", code, 0.95, words(match))
        elif match := find(r"no\s+regulation|sin\s+(?:normativa|regulaci[óo]n)"):
            self._put(out.rules, "regulation", "none", 0.8, words(match))

        for pattern, tier in _TIERS:
            if match := find(rf"\b(?:{pattern})\b"):
                self._put(out.scope, "tier", str(tier), 0.85, words(match))
                break
        for pattern, cause in _CAUSES:
            if match := find(rf"\b(?:{pattern})\b"):
                self._put(out.scope, "cause", str(cause), 0.85, words(match))
                break
        if match := re.search(r"\b(?:at|in|from|en|desde|para)\s+([A-Z]{3})\b", text):
            self._put(out.scope, "airport", match.group(1), 0.8, text[match.start() : match.end()])
        if "maxOccupancy" in out.rules and "perRoom" not in out.rules["maxOccupancy"]["value"]:
            # "families stay together" alone: two per room is the common default it qualifies
            out.rules["maxOccupancy"]["value"]["perRoom"] = 2
            out.rules["maxOccupancy"]["confidence"] = 0.5


# --- the hosted model --------------------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You turn an airline's natural-language hotel policy into JSON. Answer with one JSON object only: "
    '{"scope": {"airport"?, "tier"?, "cause"?}, "rules": {<rule>: {"value", "confidence" (0..1), "source" '
    '(the exact words of the description)}}, "unread": [fragments you could not interpret]}. Rules: '
    "maxDistanceKm (number), minStars (1-5), maxNightlyRate {amount (decimal string), currency}, maxOccupancy "
    "{perRoom, familyException}, mealAllowance {breakfast?, lunch?, dinner?: {amount, currency}}, transport "
    "(bool), accessibleRoomForPrm (bool), regulation (EU261|UK261|DOT|APPR|none). Tier: ECONOMY, "
    "PREMIUM_ECONOMY, BUSINESS, FIRST. Cause: CANCELLATION, DELAY, DIVERSION, MISSED_CONNECTION."
)


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, "") or os.environ.get(name, default))


class HostedModelAdapter:
    name = "hosted"

    def __init__(self, *, url: str, api_key: str, model: str, timeout: float = 20.0):
        self.url, self.api_key, self.model, self.timeout = url, api_key, model, timeout

    def generate(self, description: str) -> Generated:
        request = {
            "model": self.model,
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": description}],
            "max_tokens": 1024,
        }
        prompt = json.dumps(request, ensure_ascii=False)
        try:
            response = httpx.post(
                self.url,
                json=request,
                headers={"x-api-key": self.api_key, "content-type": "application/json"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            answer = response.json()["content"][0]["text"]
            parsed = json.loads(answer)
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            raise GeneratorUnavailable(f"the policy model did not answer usably: {type(error).__name__}") from error
        result = Generated(generator=self.name, prompt=prompt, answer=answer)
        if not isinstance(parsed, dict):
            raise GeneratorUnavailable("the policy model's answer is not a JSON object")
        for target, key, validate in ((result.rules, "rules", validate_rules), (result.scope, "scope", validate_scope)):
            items = parsed.get(key) or {}
            if not isinstance(items, dict):
                continue
            for name, item in items.items():
                if not isinstance(item, dict) or "value" not in item:
                    result.unread.append(f"{key}.{name}")
                    continue
                clean, errors = validate({name: item["value"]})
                if errors or name not in clean:
                    result.unread.append(str(item.get("source") or f"{key}.{name}"))
                    continue
                confidence = item.get("confidence")
                confidence = float(confidence) if isinstance(confidence, int | float) else 0.5
                target[name] = {
                    "value": clean[name],
                    "confidence": max(0.0, min(1.0, confidence)),
                    "source": str(item.get("source") or ""),
                }
        unread = parsed.get("unread") or []
        result.unread += [str(fragment) for fragment in unread if isinstance(fragment, str | int | float)]
        return result


def generator_for_settings() -> Generator:
    """The hosted adapter when its key is configured, else the deterministic parser."""
    api_key = _setting("NEXA_POLICY_MODEL_API_KEY")
    if not api_key:
        return PhraseParser()
    return HostedModelAdapter(
        url=_setting("NEXA_POLICY_MODEL_URL", "https://api.anthropic.com/v1/messages"),
        api_key=api_key,
        model=_setting("NEXA_POLICY_MODEL", "claude-sonnet-4-5"),
    )
