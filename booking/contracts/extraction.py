"""The contract wizard: proposed contract terms from a PDF or an image, never saved (issue 11 § Contracts).

Pipeline: the upload's first bytes decide its kind (PDF, PNG or JPEG; the declared content type is not
trusted) → text lines with a confidence each → the deterministic term parser (English and Spanish phrasings)
→ optionally the hosted-model refiner (:mod:`booking.contracts.refiner`, only when configured) → terms.

* **Text PDFs** through pdfplumber (confidence 1.0 per line).
* **Scanned PDFs** (no text layer on a page) and **images** through RapidOCR (``rapidocr-onnxruntime``, whose
  wheel ships its ONNX models: nothing is downloaded at run time); each line carries the recogniser's score.

Refusals are problems with a status per cause (docs/contracts.md): 413 over :data:`MAX_UPLOAD_BYTES`;
415 when the bytes are not a PDF, PNG or JPEG; 422 ``encrypted-pdf`` for a PDF that needs a password,
422 ``unreadable-file`` for a corrupt file, an image larger than :data:`MAX_IMAGE_PIXELS` or a PDF of more
than :data:`MAX_PDF_PAGES` pages.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import threading
import warnings
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from nexa.platform.problems import Problem

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PDF_PAGES = 50
OCR_MAX_PAGES = 5
MAX_IMAGE_PIXELS = 40_000_000
OCR_MAX_SIDE = 2000  # longer sides are scaled down before OCR (time grows with the pixels)
MIN_TEXT_CHARS_PER_PAGE = 20  # fewer extractable characters: a scanned page, OCR it
SNIPPET_MAX = 240

FIELDS = (
    "hotelName",
    "validFrom",
    "validTo",
    "allotment",
    "rate",
    "releaseHours",
    "mealsIncluded",
    "cancellationTerms",
)


class FileKind(StrEnum):
    PDF = "pdf"
    PNG = "png"
    JPEG = "jpeg"


def sniff(head: bytes) -> FileKind | None:
    """The kind from the magic bytes (a PDF may have a little junk before ``%PDF-``, as readers allow)."""
    if b"%PDF-" in head[:1024]:
        return FileKind.PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return FileKind.JPEG
    return None


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    confidence: float  # 1.0 for a text layer; the OCR score otherwise


@dataclass(frozen=True, slots=True)
class Term:
    value: Any
    confidence: float
    snippet: str

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": round(self.confidence, 2), "snippet": self.snippet}


@dataclass(frozen=True, slots=True)
class Analysis:
    terms: dict[str, Term]
    kind: FileKind
    source: str  # "text" | "ocr" | "text+ocr"
    pages: int
    refined_by: str | None = None

    @property
    def missing(self) -> list[str]:
        return [field for field in FIELDS if field not in self.terms]

    def as_json(self) -> dict[str, Any]:
        return {
            "terms": {field: self.terms[field].as_json() for field in FIELDS if field in self.terms},
            "missing": self.missing,
            "kind": str(self.kind),
            "source": self.source,
            "pages": self.pages,
            "refinedBy": self.refined_by,
        }


# --- problems -------------------------------------------------------------------------------------------


def too_large_problem() -> Problem:
    return Problem(
        status=413,
        slug="payload-too-large",
        title="File too large",
        detail=f"The file is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB).",
    )


def unsupported_problem() -> Problem:
    return Problem(
        status=415,
        slug="unsupported-file-type",
        title="Unsupported file type",
        detail="Send a PDF, PNG or JPEG file (recognised by its content, not its name or declared type).",
        extensions={"errors": [{"field": "file", "message": "not a PDF, PNG or JPEG file"}]},
    )


def unreadable_problem(detail: str) -> Problem:
    return Problem(
        status=422,
        slug="unreadable-file",
        title="The file cannot be read",
        detail=detail,
        extensions={"errors": [{"field": "file", "message": detail}]},
    )


def encrypted_problem() -> Problem:
    detail = "The PDF is encrypted with a password; remove the password and upload it again."
    return Problem(
        status=422,
        slug="encrypted-pdf",
        title="Encrypted PDF",
        detail=detail,
        extensions={"errors": [{"field": "file", "message": detail}]},
    )


# --- text from the file ---------------------------------------------------------------------------------

_ocr_engine = None
_ocr_lock = threading.Lock()


def _ocr():
    """The RapidOCR engine (models from the wheel), created once per process."""
    global _ocr_engine
    if _ocr_engine is None:
        from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process

        _ocr_engine = RapidOCR()
    return _ocr_engine


def _ocr_lines(image) -> list[Line]:
    """OCR one PIL image into lines: boxes whose vertical centres are within half a box height of each other
    are one line, read left to right; the line's confidence is its boxes' lowest score."""
    import numpy as np  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process

    image = image.convert("RGB")
    if max(image.size) > OCR_MAX_SIDE:
        image.thumbnail((OCR_MAX_SIDE, OCR_MAX_SIDE))
    with _ocr_lock:  # one recognition at a time per process: it uses every core already
        result, _ = _ocr()(np.asarray(image)[:, :, ::-1])  # RGB → BGR, as OpenCV reads images
    boxes = []
    for box, text, score in result or []:
        ys = [point[1] for point in box]
        xs = [point[0] for point in box]
        boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), str(text), float(score)))
    boxes.sort()
    rows: list[list[tuple]] = []
    for box in boxes:
        if rows and abs(box[0] - rows[-1][0][0]) <= max(rows[-1][0][1], box[1]) / 2:
            rows[-1].append(box)
        else:
            rows.append([box])
    lines = []
    for row in rows:
        row.sort(key=lambda b: b[2])
        lines.append(Line(" ".join(b[3] for b in row), min(b[4] for b in row)))
    return lines


def _image_lines(data: bytes) -> list[Line]:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise unreadable_problem(
                    f"The image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS} pixels are read."
                )
            image.load()
    except Problem:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as error:
        raise unreadable_problem(f"The image is corrupt or truncated ({type(error).__name__}).") from None
    return _ocr_lines(image)


def _pdf_lines(data: bytes) -> tuple[list[Line], int, str]:
    import pdfplumber  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process
    from pdfminer.pdfdocument import PDFPasswordIncorrect  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process
    from pypdf import PdfReader  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process
    from pypdf.errors import PyPdfError  # noqa: PLC0415 - heavy (OCR/PDF runtimes): loaded only when a file is analysed, not in every web and worker process

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise encrypted_problem()
        page_count = len(reader.pages)
    except Problem:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OSError) as error:
        raise unreadable_problem(f"The PDF is corrupt ({type(error).__name__}).") from None
    if page_count == 0:
        raise unreadable_problem("The PDF has no pages.")
    if page_count > MAX_PDF_PAGES:
        raise unreadable_problem(f"The PDF has {page_count} pages; at most {MAX_PDF_PAGES} are read.")
    lines: list[Line] = []
    sources = set()
    ocr_pages = 0
    try:
        with pdfplumber.open(io.BytesIO(data), password="") as pdf:
            for page in pdf.pages:
                text = page.extract_text() or ""
                if len(text.strip()) >= MIN_TEXT_CHARS_PER_PAGE:
                    lines.extend(Line(line, 1.0) for line in text.splitlines() if line.strip())
                    sources.add("text")
                elif ocr_pages < OCR_MAX_PAGES:
                    ocr_pages += 1
                    image = page.to_image(resolution=150).original
                    lines.extend(_ocr_lines(image))
                    sources.add("ocr")
    except Problem:
        raise
    except PDFPasswordIncorrect:
        raise encrypted_problem() from None
    except Exception as error:
        logger.info("contract_pdf_unreadable", exc_info=error)
        raise unreadable_problem(f"The PDF is corrupt ({type(error).__name__}).") from None
    return lines, page_count, "+".join(sorted(sources, key=lambda s: s != "text")) or "text"


def analyze(data: bytes, *, refiner=None) -> Analysis:
    """Proposed terms for an uploaded file (see the module docstring for refusals). ``refiner`` (the
    configured hosted model, ``booking.contracts.refiner.configured_refiner()``; the route passes it) may
    refine the parser's terms; without one the parser's terms are the answer."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise too_large_problem()
    kind = sniff(data[:1024])
    if kind is None:
        raise unsupported_problem()
    if kind is FileKind.PDF:
        lines, pages, source = _pdf_lines(data)
    else:
        lines, pages, source = _image_lines(data), 1, "ocr"
    terms = extract_terms(lines)
    refined_by = None
    if refiner is not None:
        refined = refiner.refine(text="\n".join(line.text for line in lines), terms=terms)
        if refined is not None:
            terms, refined_by = refined, refiner.name
    return Analysis(terms=terms, kind=kind, source=source, pages=pages, refined_by=refined_by)


# --- the term parser ------------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan", "enero", "ene"),
            ("february", "feb", "febrero"),
            ("march", "mar", "marzo"),
            ("april", "apr", "abril", "abr"),
            ("may", "mayo"),
            ("june", "jun", "junio"),
            ("july", "jul", "julio"),
            ("august", "aug", "agosto", "ago"),
            ("september", "sep", "sept", "septiembre", "setiembre"),
            ("october", "oct", "octubre"),
            ("november", "nov", "noviembre"),
            ("december", "dec", "diciembre", "dic"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{4}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s*(?:of\s*|de\s*)?{_MONTH}\s*,?\s*(?:de\s*)?\d{{4}}"
    rf"|{_MONTH}\s*\d{{1,2}}(?:st|nd|rd|th)?\s*,?\s*\d{{4}})"
)
_CURRENCY_WORDS = {
    "€": "EUR",
    "$": "USD",
    "£": "GBP",
    "euro": "EUR",
    "euros": "EUR",
    "eur": "EUR",
    "usd": "USD",
    "gbp": "GBP",
    "chf": "CHF",
    "dollars": "USD",
    "pounds": "GBP",
}
_CURRENCY = r"(?:(?-i:(?<![A-Z])[A-Z]{3}(?![A-Z]))|€|\$|£|\beuros?\b|\bdollars\b|\bpounds\b)"
_AMOUNT = r"\d{1,3}(?:[.,\s]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"


def parse_date(text: str):

    text = text.strip().lower().replace(",", " ")
    try:
        if match := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        if match := re.fullmatch(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})", text):
            return dt.date(int(match[3]), int(match[2]), int(match[1]))  # day first (European contracts)
        words = re.findall(r"\d+|[^\W\d_]+", text)
        numbers = [int(w) for w in words if w.isdigit()]
        months = [_MONTHS[w.rstrip(".")] for w in words if w.rstrip(".") in _MONTHS]
        if len(numbers) == 2 and months:
            day, year = (numbers[0], numbers[1]) if numbers[1] > 31 else (numbers[1], numbers[0])
            return dt.date(year, months[0], day)
    except ValueError:
        return None
    return None


def parse_amount(text: str) -> Decimal | None:
    text = re.sub(r"\s", "", text)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?", text) or re.fullmatch(r"\d+,\d{1,2}", text):
        text = text.replace(".", "").replace(",", ".")  # 1.234,50 / 89,50
    else:
        text = text.replace(",", "")  # 1,234.50
    try:
        value = Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return value if Decimal(0) <= value < Decimal(1_000_000) else None


def _currency(token: str) -> str:
    return _CURRENCY_WORDS.get(token.lower(), token.upper())


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_MAX else text[: SNIPPET_MAX - 1] + "…"


_FLAGS = re.IGNORECASE
_LABELLED_FROM = re.compile(
    rf"(?:valid\s*fr[o0]m|start(?:ing)?\s*(?:date|on)?|desde|inicio)\s*[:\-]?\s*(?:el\s+|the\s+|on\s+)?({_DATE})",
    _FLAGS,
)
_LABELLED_TO = re.compile(
    rf"(?:valid\s*(?:to|until|till|through)|end(?:ing)?\s*(?:date|on)?|expir\w*\s*(?:on|date)?|hasta|fin)\s*[:\-]?\s*(?:el\s+|the\s+|on\s+)?"
    rf"({_DATE})",
    _FLAGS,
)
_RANGE = re.compile(
    rf"({_DATE})\s*(?:t[o0]|until|till|through|and|hasta|al|y|-|\u2013|\u2014)\s*(?:el\s+|the\s+)?({_DATE})", _FLAGS
)
_ALLOTMENT = [
    (re.compile(r"(?:allotment|allocation|cupo|contingente)\D{0,20}?(\d{1,4})", _FLAGS), 0.9),
    (re.compile(r"(\d{1,4})\s*(?:rooms?|habitaciones)\s*(?:per|a|each|/|por|cada)\s*(?:night|noche)", _FLAGS), 0.85),
    (re.compile(r"(\d{1,4})\s*(?:rooms?|habitaciones)\b", _FLAGS), 0.5),
]
_RATE_LABEL = r"(?:rate|price|tariff|tarifa|precio)"
_RATE = [
    (re.compile(rf"{_RATE_LABEL}[^\d€$£]{{0,40}}?({_CURRENCY})\s*({_AMOUNT})", _FLAGS), "ca", 0.9),
    (re.compile(rf"{_RATE_LABEL}[^\d€$£]{{0,40}}?({_AMOUNT})\s*({_CURRENCY})", _FLAGS), "ac", 0.9),
    (re.compile(rf"({_AMOUNT})\s*({_CURRENCY})\s*(?:per|a|/|por)\s*(?:room|night|habitaci)", _FLAGS), "ac", 0.75),
    (re.compile(rf"({_CURRENCY})\s*({_AMOUNT})\s*(?:per|a|/|por)\s*(?:room|night|habitaci)", _FLAGS), "ca", 0.75),
]
_RELEASE = re.compile(
    r"(?:release|liberaci[oó]n|release\s*period)\D{0,40}?(\d{1,3})\s*(hours?|hrs?|h\b|days?|d[ií]as?|horas?)", _FLAGS
)
_CANCEL = re.compile(r"cancel|anulaci|cancelaci", _FLAGS)
_HOTEL = re.compile(r"^\s*(?:hotel|property|establecimiento)(?:\s*name|\s*nombre)?\s*[:\-]\s*(.{2,120}?)\s*$", _FLAGS)
_MEALS = [
    (re.compile(r"full\s*board|pensi[oó]n\s*completa", _FLAGS), ["BREAKFAST", "LUNCH", "DINNER"]),
    (re.compile(r"half\s*board|media\s*pensi[oó]n", _FLAGS), ["BREAKFAST", "DINNER"]),
    (re.compile(r"room\s*only|solo\s*alojamiento", _FLAGS), []),
]
_MEAL_WORDS = {
    "BREAKFAST": re.compile(r"breakfast|desayuno", _FLAGS),
    "LUNCH": re.compile(r"lunch|almuerzo|comida", _FLAGS),
    "DINNER": re.compile(r"dinner|supper|cena", _FLAGS),
}
_OCR_ZERO = re.compile(r"(?<=[^\W\d_])0(?=[^\W\d_])")
_INCLUDED = re.compile(r"includ|incl\.|incluid|incluye", _FLAGS)
_NOT_INCLUDED = re.compile(r"not\s*includ|excluded|no\s*incluid", _FLAGS)


def extract_terms(lines: list[Line]) -> dict[str, Term]:
    """Proposed terms from text lines: the first labelled match per field wins; unlabelled phrasings give
    lower confidences. Every confidence is also scaled by the line's own (OCR) confidence."""
    terms: dict[str, Term] = {}

    def put(field: str, value, confidence: float, line: Line) -> None:
        if field not in terms:
            terms[field] = Term(value, confidence * line.confidence, _snippet(line.text))

    for line in lines:
        # OCR reads "o" as "0" inside words ("fr0m"): letters around a zero make it a letter again.
        text = line.text if line.confidence >= 1.0 else _OCR_ZERO.sub("o", line.text)
        if match := _HOTEL.search(text):
            put("hotelName", match[1].strip(), 0.85, line)
        if (match := _LABELLED_FROM.search(text)) and (date := parse_date(match[1])):
            put("validFrom", date.isoformat(), 0.9, line)
        if (match := _LABELLED_TO.search(text)) and (date := parse_date(match[1])):
            put("validTo", date.isoformat(), 0.9, line)
        if match := _RANGE.search(text):
            start, end = parse_date(match[1]), parse_date(match[2])
            if start and end and start <= end:
                put("validFrom", start.isoformat(), 0.75, line)
                put("validTo", end.isoformat(), 0.75, line)
        for pattern, confidence in _ALLOTMENT:
            if (match := pattern.search(text)) and int(match[1]) >= 1:
                put("allotment", int(match[1]), confidence, line)
                break
        for pattern, order, confidence in _RATE:
            if match := pattern.search(text):
                currency, amount = (match[1], match[2]) if order == "ca" else (match[2], match[1])
                value = parse_amount(amount)
                if value is not None:
                    put("rate", {"amount": f"{value:.2f}", "currency": _currency(currency)}, confidence, line)
                    break
        if match := _RELEASE.search(text):
            hours = int(match[1]) * (24 if match[2].lower().startswith(("d", "dí")) else 1)
            if hours <= 720:
                put("releaseHours", hours, 0.85, line)
        for pattern, meals in _MEALS:
            if pattern.search(text):
                put("mealsIncluded", meals, 0.85, line)
                break
        else:
            named = [meal for meal, word in _MEAL_WORDS.items() if word.search(text)]
            if named and _INCLUDED.search(text) and not _NOT_INCLUDED.search(text):
                put("mealsIncluded", named, 0.8, line)
        if _CANCEL.search(text) and len(text.strip()) > 12:
            put("cancellationTerms", _snippet(text), 0.7, line)
    return terms
