"""The contract wizard over a real ASGI server (uvicorn): a 6 MiB upload — over every other route's body
limit — is read, and a body over the route's own limit is a 413 problem before it is read."""

import httpx
import pytest

from booking.contracts.extraction import MAX_UPLOAD_BYTES
from nexa.platform.auth import issue_token
from nexa.platform.roles import Role
from tests.booking import contract_files

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def token():
    return issue_token(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-live", ttl_seconds=600)


def test_a_6_mib_pdf_is_read_over_asgi(asgi_server, token, settings):
    pdf = contract_files.text_pdf()
    data = pdf + b"%" * (6 * 1024 * 1024 - len(pdf))
    assert len(data) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = httpx.post(
        f"{asgi_server.base_url}/v1/contracts/analyze-pdf",
        files={"file": ("contract.pdf", data, "application/pdf")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["terms"]["allotment"]["value"] == 25


def test_a_body_over_the_routes_limit_is_413_over_asgi(asgi_server, token):
    data = b"%PDF-1.7\n" + b"0" * (MAX_UPLOAD_BYTES + 128 * 1024)
    response = httpx.post(
        f"{asgi_server.base_url}/v1/contracts/analyze-pdf",
        files={"file": ("contract.pdf", data, "application/pdf")},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
