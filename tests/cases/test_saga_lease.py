"""Issue 9 §2: a saga lease carries its owner. Two lease holders on their own threads (each with its
own real database connection): the first is paused past its lease, the second claims the run; the
paused one then cannot renew, release or write (its successor's lease is untouched)."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import override_settings

from cases import saga, services
from cases.models import SagaRun, SagaStep, SubCase
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.factories import CASH, CaseFactory, SubCaseFactory

pytestmark = [pytest.mark.django_db(transaction=True)]

LEASE = 0.5


def on_own_connection(fn, *args):
    """Run ``fn`` on a new thread (so a new database connection) and return its result or raise."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as error:  # noqa: BLE001 (handed back to the test thread)
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def write_step_as(token, step_pk, run_pk):
    """What every step write of the engine does: hold the lease in the write's transaction."""
    with transaction.atomic():
        saga._hold(run_pk, token)
        SagaStep.objects.filter(pk=step_pk).update(status="COMPLETED")


@override_settings(NEXA_SAGA_LEASE_SECONDS=LEASE)
def test_a_worker_whose_lease_expired_cannot_renew_release_or_write_over_its_successor():
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    principal = Principal(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:sup", subject="sup")
    run, _ = services.subcase_compensate(
        principal=principal, sub_case_urn=passenger.urn, expected_version=1, items=[CASH], reason="storm"
    )
    step = SagaStep.objects.get(run=run, kind="CASH")

    first = on_own_connection(saga._claim, run.pk)
    assert first is not None
    assert on_own_connection(saga._claim, run.pk) is None  # held: nobody else gets it
    assert on_own_connection(saga._renew, run.pk, first) is True  # the owner renews its own lease

    time.sleep(LEASE + 0.3)  # the first worker is paused past its lease
    second = on_own_connection(saga._claim, run.pk)
    assert second is not None and second != first
    held = SagaRun.objects.get(pk=run.pk)
    assert held.lease_owner == second

    # The paused worker wakes up: it can neither renew nor release its successor's lease, nor write.
    assert on_own_connection(saga._renew, run.pk, first) is False
    assert on_own_connection(saga._release, run.pk, first) is False
    with pytest.raises(saga.LeaseLost):
        on_own_connection(write_step_as, first, step.pk, run.pk)
    after = SagaRun.objects.get(pk=run.pk)
    assert (after.lease_owner, after.lease_expires_at) == (second, held.lease_expires_at)
    assert SagaStep.objects.get(pk=step.pk).status == "PENDING"

    # The successor can write, and releases its own lease.
    on_own_connection(write_step_as, second, step.pk, run.pk)
    assert SagaStep.objects.get(pk=step.pk).status == "COMPLETED"
    assert on_own_connection(saga._release, run.pk, second) is True
    assert SagaRun.objects.get(pk=run.pk).lease_owner is None
    assert SubCase.objects.get(pk=passenger.pk).version == 2
