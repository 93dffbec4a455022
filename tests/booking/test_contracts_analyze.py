"""POST /v1/contracts/analyze-pdf with real files made at test time: a text PDF, a scanned PDF, a PNG and a
JPEG (OCR through the wheel's own models), and each refusal: encrypted, corrupt, truncated, oversized,
empty, missing, not a PDF or image, not multipart."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEntry
from booking.contracts import extraction
from booking.contracts.extraction import Line, extract_terms
from booking.contracts.refiner import HostedModelRefiner
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from tests.api_base import assert_problem
from tests.booking import contract_files as files

pytestmark = pytest.mark.django_db

URL = "/v1/contracts/analyze-pdf"


@pytest.fixture
def supervisor(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR)


def upload(client, data: bytes, name: str = "contract.pdf", content_type: str = "application/pdf"):
    return client.post(URL, {"file": SimpleUploadedFile(name, data, content_type=content_type)}, format="multipart")


def test_text_pdf_gives_every_term_with_confidence_and_snippet(supervisor):
    response = upload(supervisor, files.text_pdf())
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["missing"] == []
    assert (data["kind"], data["source"], data["pages"], data["refinedBy"]) == ("pdf", "text", 1, None)
    terms = data["terms"]
    assert {field: term["value"] for field, term in terms.items()} == {
        "hotelName": "Hotel Barajas Airport",
        "validFrom": "2027-01-01",
        "validTo": "2027-12-31",
        "allotment": 25,
        "rate": {"amount": "89.50", "currency": "EUR"},
        "releaseHours": 48,
        "mealsIncluded": ["BREAKFAST"],
        "cancellationTerms": "Cancellation: free of charge until 18:00 on the day of arrival.",
    }
    assert terms["allotment"]["snippet"] == "Allotment: 25 rooms per night"
    assert all(0 < term["confidence"] <= 1 for term in terms.values())
    # never saved: no row, no audit, no event
    assert not AuditEntry.objects.exists() and not OutboxEvent.objects.exists()


def test_a_pdf_missing_terms_lists_them(supervisor):
    response = upload(supervisor, files.text_pdf(lines=("Allotment: 12 rooms per night", "Nothing else here.")))
    assert response.status_code == 200
    data = response.json()
    assert data["terms"]["allotment"]["value"] == 12
    assert data["missing"] == [
        "hotelName",
        "validFrom",
        "validTo",
        "rate",
        "releaseHours",
        "mealsIncluded",
        "cancellationTerms",
    ]


def test_owner_password_only_pdf_is_read(supervisor):
    """Encrypted with an empty user password (printing/copy restrictions only): readers open it, so do we."""
    response = upload(supervisor, files.encrypted_pdf(user_password=""))
    assert response.status_code == 200, response.content
    assert response.json()["terms"]["allotment"]["value"] == 25


@pytest.mark.parametrize(
    ("make", "name", "content_type", "kind", "source"),
    [
        (files.png, "contract.png", "image/png", "png", "ocr"),
        (files.jpeg, "contract.jpg", "image/jpeg", "jpeg", "ocr"),
        (files.scanned_pdf, "scan.pdf", "application/pdf", "pdf", "ocr"),
    ],
    ids=["png", "jpeg", "scanned-pdf"],
)
def test_images_and_scans_are_read_by_ocr(supervisor, make, name, content_type, kind, source):
    response = upload(supervisor, make(), name, content_type)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["kind"], data["source"]) == (kind, source)
    terms = data["terms"]
    assert terms["allotment"]["value"] == 30
    assert terms["rate"]["value"] == {"amount": "95.00", "currency": "EUR"}
    assert terms["validFrom"]["value"] == "2027-01-01" and terms["validTo"]["value"] == "2027-12-31"
    assert "30 rooms" in terms["allotment"]["snippet"]
    assert all(0 < term["confidence"] < 1 for term in terms.values())  # OCR scores scale the confidence
    assert {"hotelName", "releaseHours"} <= set(data["missing"])


def test_the_declared_type_is_not_trusted(supervisor):
    """A PDF named .png and declared image/png is read as the PDF it is."""
    response = upload(supervisor, files.text_pdf(), "contract.png", "image/png")
    assert response.status_code == 200
    assert response.json()["kind"] == "pdf"


# --- refusals -------------------------------------------------------------------------------------------


def test_encrypted_pdf_is_422(supervisor):
    problem = assert_problem(upload(supervisor, files.encrypted_pdf()), 422, "encrypted-pdf")
    assert problem["errors"] == [{"field": "file", "message": problem["detail"]}]


def test_corrupt_pdf_is_422(supervisor):
    problem = assert_problem(upload(supervisor, files.corrupt_pdf()), 422, "unreadable-file")
    assert problem["errors"][0]["field"] == "file"


def test_truncated_image_is_422(supervisor):
    assert_problem(upload(supervisor, files.truncated_png(), "c.png", "image/png"), 422, "unreadable-file")


def test_too_many_pages_is_422(supervisor, monkeypatch):
    monkeypatch.setattr(extraction, "MAX_PDF_PAGES", 2)
    problem = assert_problem(upload(supervisor, files.text_pdf(pages=3)), 422, "unreadable-file")
    assert "3 pages" in problem["detail"]


def test_too_many_pixels_is_422(supervisor, monkeypatch):
    monkeypatch.setattr(extraction, "MAX_IMAGE_PIXELS", 1000)
    assert_problem(upload(supervisor, files.png(), "c.png", "image/png"), 422, "unreadable-file")


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (b"Allotment: 25 rooms per night\n", "contract.txt", "text/plain"),
        (b"Allotment: 25 rooms per night\n", "contract.pdf", "application/pdf"),  # a name does not make a PDF
        (b"GIF89a" + b"\x00" * 64, "contract.gif", "image/gif"),
        (b"PK\x03\x04" + b"\x00" * 64, "contract.docx", "application/octet-stream"),
    ],
    ids=["text", "text-named-pdf", "gif", "zip"],
)
def test_not_a_pdf_or_image_is_415(supervisor, data, name, content_type):
    problem = assert_problem(upload(supervisor, data, name, content_type), 415, "unsupported-file-type")
    assert problem["errors"][0]["field"] == "file"


def test_json_instead_of_multipart_is_415(supervisor):
    assert_problem(supervisor.post(URL, {"file": "x"}, format="json"), 415, "unsupported-media-type")


def test_missing_file_is_400(supervisor):
    problem = assert_problem(supervisor.post(URL, {"other": "x"}, format="multipart"), 400, "validation-error")
    assert problem["errors"][0]["field"] == "file"


def test_empty_file_is_400(supervisor):
    problem = assert_problem(upload(supervisor, b""), 400, "validation-error")
    assert problem["errors"][0]["field"] == "file"


def test_file_over_10_mib_is_413(supervisor):
    """Over 10 MiB but within the route's body limit (10 MiB + multipart framing): refused for the file."""
    data = files.text_pdf() + b"%" * (extraction.MAX_UPLOAD_BYTES + 1 - len(files.text_pdf()))
    assert len(data) == extraction.MAX_UPLOAD_BYTES + 1
    problem = assert_problem(upload(supervisor, data), 413, "payload-too-large")
    assert "10 MiB" in problem["detail"]


def test_body_over_the_route_limit_is_413_before_reading(supervisor):
    data = b"%PDF-1.7\n" + b"0" * (extraction.MAX_UPLOAD_BYTES + 128 * 1024)
    assert_problem(upload(supervisor, data), 413, "payload-too-large")


def test_a_10_mib_file_passes_the_body_limits(supervisor):
    """Exactly 10 MiB (over NEXA_MAX_BODY_BYTES, the other routes' limit) reaches the reader."""
    pdf = files.text_pdf()
    data = pdf + b"%" * (extraction.MAX_UPLOAD_BYTES - len(pdf))
    response = upload(supervisor, data)
    assert response.status_code == 200, response.content
    assert response.json()["terms"]["allotment"]["value"] == 25


def test_other_routes_keep_the_global_body_limit(supervisor, settings):
    big = {"hotelUrn": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    assert_problem(supervisor.post("/v1/contracts", big, format="json"), 413, "payload-too-large")


@pytest.mark.parametrize("role", [Role.AIRPORT_OPERATOR, Role.FINANCE_AUDIT])
def test_roles_below_supervisor_are_403_with_a_real_file(client_for, role):
    assert_problem(upload(client_for("IB", role), files.text_pdf()), 403, "forbidden")


def test_admin_may_analyze(client_for):
    assert upload(client_for("LH", Role.ADMIN), files.text_pdf()).status_code == 200


def test_idempotency_key_is_accepted_and_the_analysis_runs_again(supervisor):
    first = upload_with_key(supervisor, files.text_pdf(), "k-1")
    again = upload_with_key(supervisor, files.text_pdf(), "k-1")
    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in again
    assert first.json() == again.json()


def upload_with_key(client, data, key):
    return client.post(URL, {"file": SimpleUploadedFile("c.pdf", data)}, format="multipart", HTTP_IDEMPOTENCY_KEY=key)


# --- the parser on its own ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("Vigencia: desde el 1 de marzo de 2027 hasta el 30 de septiembre de 2027", "validFrom", "2027-03-01"),
        ("Periodo: 01/03/2027 - 30/09/2027", "validTo", "2027-09-30"),
        ("Contract period: March 1, 2027 through September 30, 2027", "validFrom", "2027-03-01"),
        ("Cupo: 15 habitaciones por noche", "allotment", 15),
        ("Tarifa: 1.234,50 EUR por habitación y noche", "rate", {"amount": "1234.50", "currency": "EUR"}),
        ("Room rate: USD 1,234.50", "rate", {"amount": "1234.50", "currency": "USD"}),
        ("Price per night 79 euros", "rate", {"amount": "79.00", "currency": "EUR"}),
        ("Release: 3 days prior to arrival", "releaseHours", 72),
        ("Half board (breakfast and dinner)", "mealsIncluded", ["BREAKFAST", "DINNER"]),
        ("Media pensión", "mealsIncluded", ["BREAKFAST", "DINNER"]),
        ("Room only", "mealsIncluded", []),
        ("Breakfast and dinner included", "mealsIncluded", ["BREAKFAST", "DINNER"]),
    ],
)
def test_parser_phrasings(text, field, value):
    assert extract_terms([Line(text, 1.0)])[field].value == value


def test_parser_ignores_meals_not_included_and_impossible_dates():
    terms = extract_terms([Line("Breakfast not included", 1.0), Line("Valid from 2027-02-30", 1.0)])
    assert "mealsIncluded" not in terms and "validFrom" not in terms


# --- the hosted-model adapter ---------------------------------------------------------------------------


class _ModelStub(BaseHTTPRequestHandler):
    answer: dict = {}
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.headers["Authorization"], body))
        payload = json.dumps(type(self).answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def model_server():
    server = HTTPServer(("127.0.0.1", 0), _ModelStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ModelStub.seen = []
    yield f"http://127.0.0.1:{server.server_port}/refine"
    server.shutdown()
    server.server_close()


def test_hosted_model_refines_when_configured_and_bad_values_are_dropped(supervisor, settings, model_server):
    _ModelStub.answer = {
        "terms": {
            "hotelName": {"value": "Hotel Barajas Airport & Spa", "confidence": 0.97, "snippet": "Hotel name: …"},
            "allotment": {"value": "lots", "confidence": 0.9, "snippet": "x"},  # not an integer: parser's kept
            "releaseHours": {"value": 24, "confidence": 2.0, "snippet": "x"},  # confidence out of range: dropped
        }
    }
    settings.NEXA_CONTRACTS_MODEL_URL = model_server
    settings.NEXA_CONTRACTS_MODEL_API_KEY = "test-key"
    response = upload(supervisor, files.text_pdf())
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["refinedBy"] == "hosted-model"
    assert data["terms"]["hotelName"] == {
        "value": "Hotel Barajas Airport & Spa",
        "confidence": 0.97,
        "snippet": "Hotel name: …",
    }
    assert data["terms"]["allotment"]["value"] == 25
    assert data["terms"]["releaseHours"]["value"] == 48
    authorization, sent = _ModelStub.seen[0]
    assert authorization == "Bearer test-key"
    assert "Allotment: 25 rooms per night" in sent["text"] and sent["terms"]["allotment"]["value"] == 25


def test_hosted_model_failure_keeps_the_parsers_terms(supervisor, settings):
    settings.NEXA_CONTRACTS_MODEL_URL = "http://127.0.0.1:9/refine"  # nothing listens there
    settings.NEXA_CONTRACTS_MODEL_API_KEY = "test-key"
    response = upload(supervisor, files.text_pdf())
    assert response.status_code == 200
    assert response.json()["refinedBy"] is None
    assert response.json()["missing"] == []


def test_no_hosted_model_without_a_key(settings):
    from booking.contracts.refiner import configured_refiner

    settings.NEXA_CONTRACTS_MODEL_URL = "http://127.0.0.1:9/refine"
    settings.NEXA_CONTRACTS_MODEL_API_KEY = ""
    assert configured_refiner() is None
    settings.NEXA_CONTRACTS_MODEL_API_KEY = "k"
    assert isinstance(configured_refiner(), HostedModelRefiner)


def test_a_malformed_idempotency_key_is_400(supervisor):
    response = upload_with_key(supervisor, files.text_pdf(), "bad key with spaces")
    assert_problem(response, 400, "invalid-idempotency-key")


def test_the_ocr_models_ship_inside_the_wheel():
    """No download at run time: the engine's configured models are files inside the installed package."""
    from pathlib import Path

    import rapidocr_onnxruntime
    import yaml

    package = Path(rapidocr_onnxruntime.__file__).resolve().parent
    config = yaml.safe_load((package / "config.yaml").read_text())
    models = [
        section["model_path"] for section in config.values() if isinstance(section, dict) and "model_path" in section
    ]
    assert len(models) == 3
    for model in models:
        path = (package / model).resolve()
        assert path.is_relative_to(package) and path.stat().st_size > 100_000, model
