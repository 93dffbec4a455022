"""SDKs are generated from the schema (issue 9 §6): openapi-python-client builds a Python client from the
live server's /v1/openapi.json into a temporary directory, and that client, unmodified, declares a case,
gets it and lists it against the live server."""

import datetime as dt
import importlib
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from nexa.platform.auth import issue_token
from nexa.platform.roles import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fuzz]

PACKAGE = "nexa_generated_client"


@pytest.fixture(scope="module")
def generated_client(asgi_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdk")
    schema = root / "openapi.json"
    schema.write_bytes(httpx.get(f"{asgi_server.base_url}/v1/openapi.json", timeout=30).content)
    config = root / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(schema),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_the_generated_client_declares_gets_and_lists_cases(asgi_server, generated_client):
    cases_declare = importlib.import_module(f"{PACKAGE}.api.cases.cases_declare")
    cases_get = importlib.import_module(f"{PACKAGE}.api.cases.cases_get")
    cases_list = importlib.import_module(f"{PACKAGE}.api.cases.cases_list")
    models = importlib.import_module(f"{PACKAGE}.models")

    token = issue_token(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-sdk")
    client = generated_client.AuthenticatedClient(base_url=asgi_server.base_url, token=token)
    flight_number = f"IB{random.randint(1000, 9999)}"

    declared = cases_declare.sync(
        client=client,
        body=models.CaseDeclareRequest(
            airport="MAD",
            flight_number=flight_number,
            flight_date=dt.date(2026, 11, 22),
            scheduled_departure=dt.datetime(2026, 11, 22, 21, 40, tzinfo=dt.UTC),
            cause=models.CauseEnum.CANCELLATION,
            passengers=[models.PassengerRowRequest(first_name="Ana", last_name="Sdk", pnr="SDK001")],
        ),
        idempotency_key="sdk-declare-1",
    )
    assert isinstance(declared, models.CaseDetail), declared
    assert declared.urn.startswith("urn:nexa:case:") and declared.flight_number == flight_number
    assert declared.passenger_count == 1

    fetched = cases_get.sync(client=client, case_urn=declared.urn)
    assert isinstance(fetched, models.CaseDetail) and fetched.urn == declared.urn
    assert fetched.scheduled_departure == dt.datetime(2026, 11, 22, 21, 40, tzinfo=dt.UTC)

    page = cases_list.sync(client=client, limit=200, airport="MAD")
    assert isinstance(page, models.PaginatedCaseList), page
    assert declared.urn in [case.urn for case in page.items]

    missing = cases_get.sync(client=client, case_urn="urn:nexa:case:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a")
    assert isinstance(missing, models.Problem) and missing.status == 404  # problems are typed too
