"""Manifest rows: reading (JSON, CSV) and validation, shared by the API, the services and
``manage.py import_manifest`` so every way in accepts exactly the same passengers.

A row is a JSON object with the wire names in :data:`ROW_FIELDS` (CSV: the same names, or their
snake_case spelling, as column headers; ``specialNeeds`` separated by ``;``). Validation never
stops at the first problem: it returns every error as ``{field: "passengers[3].email", message}``
so a caller can fix a whole file in one go.
"""

import csv
import json
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from cases.models import SpecialNeed, SubCase, Tier

ROW_FIELDS = (
    "firstName",
    "lastName",
    "pnr",
    "tier",
    "loyaltyTier",
    "specialNeeds",
    "email",
    "phone",
    "language",
    "onwardFlight",
)
CSV_ALIASES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "loyalty_tier": "loyaltyTier",
    "special_needs": "specialNeeds",
    "onward_flight": "onwardFlight",
}
CSV_LIST_SEPARATOR = ";"
DEFAULT_LANGUAGE = "en"
# A 10 000-row file full of errors would make a multi-megabyte problem body; the first ones suffice.
MAX_REPORTED_ERRORS = 500

NAME_MAX_LENGTH = SubCase._meta.get_field("first_name").max_length
LOYALTY_TIER_MAX_LENGTH = SubCase._meta.get_field("loyalty_tier").max_length
EMAIL_MAX_LENGTH = SubCase._meta.get_field("email").max_length

_PNR = re.compile(r"^[A-Z0-9]{6}$")
# IATA designator: two characters (or an ICAO three-letter code), 1 to 4 digits, optional suffix letter.
_FLIGHT_NUMBER = re.compile(r"^(?:[A-Z0-9]{2}|[A-Z]{3})[0-9]{1,4}[A-Z]?$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")
# ASCII: under IGNORECASE alone [a-z] also matches U+0130, U+017F and the Kelvin sign, whose lower/upper
# case grows past the column ("\u0130\u0130\u0130-\u017f\u017f" → 9 characters).
_LANGUAGE = re.compile(r"^([a-z]{2,3})(?:-([a-z]{2}))?$", re.IGNORECASE | re.ASCII)

PassengerIdentity = tuple[str, str, str]


def normalise_flight_number(value: object) -> str | None:
    """``"ib 3166"`` → ``"IB3166"``; ``None`` when it is not an IATA/ICAO flight number."""
    if not isinstance(value, str):
        return None
    candidate = re.sub(r"\s+", "", value).upper()
    return candidate if _FLIGHT_NUMBER.match(candidate) else None


def passenger_identity(*, pnr: str, last_name: str, first_name: str) -> PassengerIdentity:
    """What makes two rows the same passenger: PNR and name, ignoring case, accents and spacing."""

    def fold(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", " ".join(text.split()).casefold())
        return "".join(char for char in decomposed if not unicodedata.combining(char))

    return (pnr.strip().upper(), fold(last_name), fold(first_name))


@dataclass(frozen=True, slots=True)
class PassengerRow:
    """A validated, normalised manifest row (model field names)."""

    first_name: str
    last_name: str
    pnr: str
    tier: str
    loyalty_tier: str
    special_needs: tuple[str, ...]
    email: str
    phone: str
    language: str
    onward_flight: str

    @property
    def identity(self) -> PassengerIdentity:
        return passenger_identity(pnr=self.pnr, last_name=self.last_name, first_name=self.first_name)


@dataclass(slots=True)
class ManifestValidation:
    rows: list[PassengerRow] = field(default_factory=list)  # valid and new: to insert
    skipped: int = 0  # already on the manifest (only when skipping existing passengers)
    errors: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0

    @property
    def valid(self) -> bool:
        return self.error_count == 0

    def add_error(self, field_name: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"field": field_name, "message": message})


def _text(raw: Mapping, name: str, errors: list[tuple[str, str]]) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append((name, "must be a string"))
        return ""
    if "\x00" in value:  # PostgreSQL refuses NUL in text (the API's parser refuses it first; files do not)
        errors.append((name, "must not contain the NUL character (U+0000)"))
        return ""
    return " ".join(value.split())


def _validate_row(raw: object) -> tuple[PassengerRow | None, list[tuple[str, str]]]:
    """One row → (normalised row or None, [(field, message)])."""
    if not isinstance(raw, Mapping):
        return None, [("", "must be an object with firstName, lastName and pnr")]
    errors: list[tuple[str, str]] = []
    for unknown in sorted(set(raw) - set(ROW_FIELDS), key=str):
        errors.append((str(unknown), f"unknown field; rows take {', '.join(ROW_FIELDS)}"))

    first_name = _text(raw, "firstName", errors)
    last_name = _text(raw, "lastName", errors)
    for name, value in (("firstName", first_name), ("lastName", last_name)):
        if not value and not any(field_name == name for field_name, _ in errors):
            errors.append((name, "is required"))
        elif len(value) > NAME_MAX_LENGTH:
            errors.append((name, f"at most {NAME_MAX_LENGTH} characters"))

    pnr = _text(raw, "pnr", errors).upper()
    if not pnr:
        if not any(field_name == "pnr" for field_name, _ in errors):
            errors.append(("pnr", "is required"))
    elif not _PNR.match(pnr):
        errors.append(("pnr", "must be a 6-character booking reference (letters and digits)"))

    tier = _text(raw, "tier", errors).upper() or Tier.ECONOMY
    if tier not in Tier.values:
        errors.append(("tier", f"must be one of {', '.join(Tier.values)}"))

    loyalty_tier = _text(raw, "loyaltyTier", errors)
    if len(loyalty_tier) > LOYALTY_TIER_MAX_LENGTH:
        errors.append(("loyaltyTier", f"at most {LOYALTY_TIER_MAX_LENGTH} characters"))

    special_needs: list[str] = []
    raw_needs = raw.get("specialNeeds")
    if raw_needs is not None:
        if not isinstance(raw_needs, list) or not all(isinstance(need, str) for need in raw_needs):
            errors.append(("specialNeeds", "must be a list of strings"))
        else:
            for need in raw_needs:
                normalised = need.strip().upper()
                if normalised not in SpecialNeed.values:
                    errors.append(("specialNeeds", f"{need!r} is not one of {', '.join(SpecialNeed.values)}"))
                elif normalised not in special_needs:
                    special_needs.append(normalised)

    email = _text(raw, "email", errors)
    if len(email) > EMAIL_MAX_LENGTH:  # validate_email allows 320, the column 254
        errors.append(("email", f"at most {EMAIL_MAX_LENGTH} characters"))
    elif email:
        try:
            validate_email(email)
        except ValidationError:
            errors.append(("email", f"{email[:100]!r} is not a valid email address"))

    phone = _PHONE_SEPARATORS.sub("", _text(raw, "phone", errors))
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if phone and not _E164.match(phone):
        errors.append(("phone", "must be an international number in E.164 form, e.g. +34600123456"))

    language = _text(raw, "language", errors) or DEFAULT_LANGUAGE
    match = _LANGUAGE.match(language)
    if match is None:
        errors.append(("language", "must be a language tag such as en, es or pt-BR"))
    else:
        language = match.group(1).lower() + (f"-{match.group(2).upper()}" if match.group(2) else "")

    onward_flight = ""
    raw_onward = _text(raw, "onwardFlight", errors)
    if raw_onward:
        onward_flight = normalise_flight_number(raw_onward) or ""
        if not onward_flight:
            errors.append(("onwardFlight", "must be a flight number such as IB3166"))

    if errors:
        return None, errors
    return (
        PassengerRow(
            first_name=first_name,
            last_name=last_name,
            pnr=pnr,
            tier=tier,
            loyalty_tier=loyalty_tier,
            special_needs=tuple(special_needs),
            email=email,
            phone=phone,
            language=language,
            onward_flight=onward_flight,
        ),
        [],
    )


def validate_rows(
    rows: Sequence[object],
    *,
    existing: Collection[PassengerIdentity] = (),
    skip_existing: bool = False,
    field_prefix: str = "passengers",
) -> ManifestValidation:
    """Validate every row. A passenger twice in ``rows`` is an error on the later row; one already
    in ``existing`` is an error too, unless ``skip_existing`` (re-running an import) counts it as
    skipped instead."""
    result = ManifestValidation()
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        result.add_error(field_prefix, "must be a list of passenger objects")
        return result
    existing = existing if isinstance(existing, set | frozenset) else set(existing)
    first_seen: dict[PassengerIdentity, int] = {}
    for index, raw in enumerate(rows):
        where = f"{field_prefix}[{index}]"
        row, errors = _validate_row(raw)
        for name, message in errors:
            result.add_error(f"{where}.{name}" if name else where, message)
        if row is None:
            continue
        identity = row.identity
        if identity in first_seen:
            result.add_error(
                where, f"the same passenger (PNR and name) as {field_prefix}[{first_seen[identity]}]; remove one"
            )
            continue
        first_seen[identity] = index
        if identity in existing:
            if skip_existing:
                result.skipped += 1
            else:
                result.add_error(where, "this passenger (PNR and name) is already on the manifest")
            continue
        result.rows.append(row)
    return result


# --- files --------------------------------------------------------------------------------------------


class ManifestFileError(ValueError):
    """The file cannot be read as a manifest (before any row is validated)."""


def read_manifest_file(path: str | Path) -> list[object]:
    """The rows of a ``.json`` (a list of rows, or ``{"passengers": [...]}``) or ``.csv`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestFileError(f"cannot read {path}: {error}") from error
    return read_manifest_text(text, name=path)


def read_manifest_text(text: str, *, name: str | Path) -> list[object]:
    """The rows of a manifest file's text (an upload has no path); ``name``'s suffix picks the format."""
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ManifestFileError(f"{path} is not valid JSON: {error}") from error
        if isinstance(document, Mapping) and "passengers" in document:
            document = document["passengers"]
        if not isinstance(document, list):
            raise ManifestFileError(f'{path}: expected a list of passengers or {{"passengers": [...]}}')
        return document
    if suffix == ".csv":
        return _csv_rows(text, path)
    raise ManifestFileError(f"{path}: use a .json or .csv file")


def _csv_rows(text: str, path: Path) -> list[object]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise ManifestFileError(f"{path} has no header row")
    columns = [CSV_ALIASES.get(name.strip(), name.strip()) for name in reader.fieldnames]
    unknown = [name for name in columns if name not in ROW_FIELDS]
    if len(set(columns)) != len(columns):
        raise ManifestFileError(f"{path}: a column appears twice in the header")
    if unknown:
        raise ManifestFileError(f"{path}: unknown columns {', '.join(unknown)}; use {', '.join(ROW_FIELDS)}")
    rows: list[object] = []
    for record in reader:
        if None in record:
            raise ManifestFileError(f"{path}, line {reader.line_num}: more cells than columns")
        row: dict[str, object] = {}
        for column, value in zip(columns, (record[name] for name in reader.fieldnames), strict=True):
            value = (value or "").strip()
            if not value:
                continue
            if column == "specialNeeds":
                row[column] = [need.strip() for need in value.split(CSV_LIST_SEPARATOR) if need.strip()]
            else:
                row[column] = value
        if row:
            rows.append(row)
    return rows
