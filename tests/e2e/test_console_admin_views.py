"""The console's manifest upload, audit and policies screens without a browser (Django's test client): the
refusals a browser test does not reach (a file that is not a manifest, another airline's case, the export cap,
no policy matching) and the same refusals as the API. The browser tests are test_console_admin_screens.py."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from audit import services as audit_services
from cases.models import SubCase
from nexa.console.views_manifest import manifest_error_rows
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

HEADER = "firstName,lastName,pnr,tier,email\n"


def signed_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _upload(client: Client, case, name: str, text: str):
    upload = SimpleUploadedFile(name, text.encode(), content_type="text/csv")
    return client.post(f"/console/cases/{case.urn}/manifest/upload", {"file": upload})


def test_the_problems_fields_become_row_field_message():
    rows = manifest_error_rows(
        [
            {"field": "passengers[0].email", "message": "bad"},
            {"field": "passengers[4]", "message": "twice"},
            {"field": "file", "message": "unreadable"},
        ]
    )
    assert rows == [
        {"row": 1, "field": "email", "message": "bad"},
        {"row": 5, "field": "", "message": "twice"},
        {"row": None, "field": "file", "message": "unreadable"},
    ]


def test_a_file_that_is_no_manifest_is_refused_and_named(console_users):
    case = CaseFactory(airline="IB")
    client = signed_in(console_users["supervisor"])
    answer = _upload(client, case, "m.csv", "firstName,surname\nAna,Lopez\n")
    assert answer.status_code == 400
    assert "unknown columns surname" in answer.content.decode()
    answer = _upload(client, case, "m.txt", HEADER)
    assert answer.status_code == 400
    assert "use a .json or .csv file" in answer.content.decode()
    assert not SubCase.objects.filter(case=case).exists()


def test_a_passenger_already_on_the_manifest_is_refused_like_the_api(console_users):
    case = CaseFactory(airline="IB")
    SubCaseFactory(case=case, first_name="Ana", last_name="Lopez", pnr="ABC123")
    answer = _upload(signed_in(console_users["supervisor"]), case, "m.csv", HEADER + "Ana,Lopez,ABC123,ECONOMY,\n")
    assert answer.status_code == 400
    assert "already on the manifest" in answer.content.decode()
    assert SubCase.objects.filter(case=case).count() == 1


def test_another_airlines_case_is_not_found_for_an_upload(console_users):
    case = CaseFactory(airline="UX")
    answer = _upload(signed_in(console_users["supervisor"]), case, "m.csv", HEADER + "Ana,Lopez,ABC123,ECONOMY,\n")
    assert answer.status_code == 404
    assert not SubCase.objects.filter(case=case).exists()


def test_an_upload_is_audited(console_users):
    case = CaseFactory(airline="IB")
    answer = _upload(signed_in(console_users["supervisor"]), case, "m.csv", HEADER + "Ana,Lopez,ABC123,ECONOMY,\n")
    assert answer.status_code == 201
    assert SubCase.objects.filter(case=case, pnr="ABC123").count() == 1
    log = signed_in(console_users["finance"]).get("/console/audit", {"action": "case.manifest_appended"})
    assert case.urn in log.content.decode()


@override_settings(NEXA_AUDIT_EXPORT_MAX_ROWS=1)
def test_the_export_is_refused_above_the_cap_like_the_api(console_users):
    for n in range(2):
        audit_services.record(airline="IB", actor="urn:nexa:system:t", action="t.done", entity_urn=f"urn:nexa:x:{n}")
    answer = signed_in(console_users["finance"]).get("/console/audit/export.csv")
    assert answer.status_code == 422
    assert "narrow the range" in answer.content.decode()


def test_another_airlines_case_trail_is_not_found(console_users):
    case = CaseFactory(airline="UX")
    answer = signed_in(console_users["supervisor"]).get("/console/audit", {"case": case.urn})
    assert answer.status_code == 404


def test_no_policy_matching_says_so(console_users):
    answer = signed_in(console_users["operator"]).get(
        "/console/policies/resolve", {"airport": "MAD"}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 404
    assert "No policy matches" in answer.content.decode()
