"""Step kinds: one class per kind of saga step, registered by its ``kind`` (the value stored in
``SagaStep.kind`` and the request item's ``type``). The engine asks the kind for everything that
differs between kinds — the provider call, its undo, the in-doubt lookup, the failure category, the
heartbeat's provider name, the ledger writes that go with an effect, and what the passenger notice
says about it — and knows no kind by name except ``NOTIFY``, the step it appends to every plan.

Adding a kind (e.g. HOTEL) is one subclass decorated with :func:`register` (docs/compensation.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from booking import services as booking
from cases.models import SagaRun, SagaStep, SagaStepStatus
from cases.saga.common import SYSTEM_SAGA_ACTOR, system_principal
from notifications import services as notifications

NOTIFY_TEMPLATE = "compensation_summary"


class StepKind:
    """One kind of saga step. Subclasses set ``kind`` and ``step_name`` and implement :meth:`perform`."""

    kind: ClassVar[str]  # "MEAL": SagaStep.kind, the request item's type
    step_name: ClassVar[str]  # "meal.issue_card": SagaStep.name
    # The provider named in an attempt entry when the step fails on something that is not a provider
    # error (our own bug); ``None`` → "internal".
    provider_name: ClassVar[str | None] = None
    failure_category: ClassVar[str] = "SAGA_FAILED"  # the run's category when this step fails it
    # A compensable step has an effect: it may be in doubt (resolved by :meth:`lookup`), its failure
    # fails the run, and a failed run or a cancel undoes it. ``False`` (notify): none of these.
    compensable: ClassVar[bool] = True

    def provider(self, step: SagaStep) -> str:
        """Who the heartbeat says the step is waiting for ("waiting for psp: 10 s")."""
        return self.provider_name or self.kind.lower()

    def breaker(self, item: dict[str, Any]) -> str | None:
        """The circuit breaker the step of ``item`` calls through: a new run is refused (503) while it is
        open (``cases.compensation.refuse_while_circuit_open``). ``None``: none checked."""
        return None

    def perform(self, run: SagaRun, step: SagaStep) -> dict[str, Any]:
        """The provider call, under ``step.idempotency_key``; returns plain JSON (the step's result)."""
        raise NotImplementedError

    def undo(self, run: SagaRun, step: SagaStep) -> dict[str, Any]:
        """Undo a COMPLETED step under ``step.compensation_key``; returns plain JSON."""
        raise ValueError(f"nothing to undo for {self.kind}")

    def lookup(self, step: SagaStep) -> dict[str, Any] | None:
        """What the provider made under the step's ORIGINAL key, or ``None``: it never executed it."""
        provider = step.item.get("provider")
        return booking.effect_lookup(kind=self.kind, idempotency_key=step.idempotency_key, provider=provider)

    def completed(self, run: SagaRun, step: SagaStep, result: dict[str, Any]) -> None:
        """In the transaction that records the step COMPLETED (performed, or found by a lookup)."""

    def undone(self, run: SagaRun, step: SagaStep) -> None:
        """In the transaction that records the step COMPENSATED."""

    def summary(self, step: SagaStep) -> dict[str, Any]:
        """What the passenger notice says about this COMPLETED step."""
        return {"type": step.kind, **{k: step.item[k] for k in ("amount", "currency", "provider") if step.item.get(k)}}

    # --- hooks for kinds whose step is more than one provider call for one passenger (hotel rooms) ---

    def expand(self, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """The steps (kind, item) one request item plans; most kinds: one step of their own kind."""
        return [(self.kind, item)]

    def max_attempts(self, step: SagaStep) -> int | None:
        """Attempts of a transient error before the step fails (then :meth:`fallback`); ``None``: the
        engine's ``NEXA_SAGA_MAX_ATTEMPTS``."""
        return None

    def sub_case_ids(self, run: SagaRun, step: SagaStep) -> list[Any]:
        """The passengers this step acts for. What the engine does to "the run's sub-case" (manual review
        when the run fails) happens to every one of them: a group's room saga names each occupant."""
        return [run.sub_case_id]

    def fallback(self, run: SagaRun, step: SagaStep, error: Exception) -> dict[str, Any] | None:
        """The step failed for good with ``error``: a new item to run it again with (e.g. the next hotel
        offer; the engine re-arms it under a fresh key), or ``None``: the step fails. In the failing
        transaction (lease held, step locked): database work only, never a provider call."""
        return None

    def failed(self, run: SagaRun, step: SagaStep) -> None:
        """In the transaction that records the step FAILED with a known outcome (nothing was made)."""

    def run_failed(self, run: SagaRun) -> None:
        """Once per kind present in a run that failed, in the transaction that finishes it (after the
        run's passengers went to review)."""


_KINDS: dict[str, StepKind] = {}


def register(cls: type[StepKind]) -> type[StepKind]:
    """Class decorator: the engine runs steps of ``cls.kind`` with an instance of ``cls``."""
    if cls.kind in _KINDS:
        raise ValueError(f"step kind {cls.kind!r} is already registered")
    _KINDS[cls.kind] = cls()
    return cls


def unregister(kind: str) -> None:
    """For tests that register a throwaway kind."""
    _KINDS.pop(kind, None)


class _Unregistered(StepKind):
    """A stored step whose kind no class claims (none today): it fails like any step whose call raises."""

    step_name = "unknown"

    def __init__(self, kind: str):
        self.kind = kind

    def perform(self, run, step):
        raise ValueError(f"unknown step kind {self.kind!r}")


def kind_of(step_or_kind: SagaStep | str) -> StepKind:
    """The registered kind of a step (or of a kind name)."""
    kind = step_or_kind if isinstance(step_or_kind, str) else step_or_kind.kind
    return _KINDS.get(kind) or _Unregistered(kind)


class _StepNames(Mapping[str, str]):
    """``STEP_NAMES["CASH"] == "cash.payout"``, read live from the registry."""

    def __getitem__(self, kind: str) -> str:
        return _KINDS[kind].step_name

    def __iter__(self) -> Iterator[str]:
        return iter(_KINDS)

    def __len__(self) -> int:
        return len(_KINDS)


STEP_NAMES: Mapping[str, str] = _StepNames()


# --- the kinds ------------------------------------------------------------------------------------------


@register
class Meal(StepKind):
    """A single-use virtual card from the PSP; undone by voiding it."""

    kind, step_name, provider_name, failure_category = "MEAL", "meal.issue_card", "psp", "PAYMENT_FAILED"

    def breaker(self, item):
        return "psp"

    def perform(self, run, step):
        item = step.item
        card = booking.meal_card_issue(
            idempotency_key=step.idempotency_key,
            sub_case_urn=run.sub_case.urn,
            amount=item["amount"],
            currency=item["currency"],
            expires_at=item["expiresAt"],
        )
        return {"provider": "psp", **card}

    def undo(self, run, step):
        card_id = (step.result or {})["cardId"]
        return {"provider": "psp", **booking.meal_card_void(idempotency_key=step.compensation_key, card_id=card_id)}


@register
class Cash(StepKind):
    """A PSP payout into the passenger's wallet plus its ledger CREDIT; undone by a reversal (+ REVERSAL)."""

    kind, step_name, provider_name, failure_category = "CASH", "cash.payout", "psp", "PAYMENT_FAILED"

    def breaker(self, item):
        return "psp"

    def perform(self, run, step):
        item = step.item
        payout = booking.cash_payout(
            idempotency_key=step.idempotency_key,
            sub_case_urn=run.sub_case.urn,
            amount=item["amount"],
            currency=item["currency"],
            regulation=item["regulation"],
        )
        return {"provider": "psp", **payout}

    def undo(self, run, step):
        payout_id = (step.result or {})["payoutId"]
        reversal = booking.cash_payout_reverse(idempotency_key=step.compensation_key, payout_id=payout_id)
        return {"provider": "psp", **reversal}

    def completed(self, run, step, result):
        booking.wallet_credit_record(
            sub_case=run.sub_case,
            amount=step.item["amount"],
            currency=step.item["currency"],
            reference=step.idempotency_key,
            payout_id=str(result.get("payoutId", "")),
            actor=SYSTEM_SAGA_ACTOR,
            case_urn=run.case.urn,
        )

    def undone(self, run, step):
        booking.wallet_reversal_record(
            sub_case=run.sub_case,
            amount=step.item["amount"],
            currency=step.item["currency"],
            reference=step.compensation_key,
            payout_id=str((step.result or {}).get("payoutId", "")),
            actor=SYSTEM_SAGA_ACTOR,
            case_urn=run.case.urn,
        )


@register
class Transport(StepKind):
    """A ride from Uber or Cabify (the item's ``provider``); undone by cancelling it."""

    kind, step_name, failure_category = "TRANSPORT", "transport.request_ride", "BOOKING_FAILED"

    def provider(self, step):
        return str(step.item.get("provider", "transport")).lower()

    def breaker(self, item):
        return f"transport-{item['provider'].lower()}"

    def perform(self, run, step):
        item = step.item
        ride = booking.transport_ride_request(
            idempotency_key=step.idempotency_key,
            provider=item["provider"],
            sub_case_urn=run.sub_case.urn,
            pickup=item["pickup"],
            dropoff=item["dropoff"],
            pickup_at=item["pickupAt"],
        )
        return dict(ride)

    def undo(self, run, step):
        result = step.result or {}
        provider = result.get("provider") or step.item["provider"]
        key = step.compensation_key
        return dict(booking.transport_ride_cancel(idempotency_key=key, provider=provider, ride_id=result["rideId"]))

    def summary(self, step):
        return {**super().summary(step), "etaMinutes": (step.result or {}).get("etaMinutes")}


@register
class Notify(StepKind):
    """The passenger notice of what was delivered (template ``compensation_summary``). Never undoes money
    or rides: when it fails for good the step is FAILED and the run still completes."""

    kind, step_name, provider_name, compensable = "NOTIFY", "notify.passenger", "notifications", False

    def perform(self, run, step):
        delivered = [
            kind_of(s).summary(s)
            for s in run.steps.filter(status=SagaStepStatus.COMPLETED).order_by("position")
            if kind_of(s).compensable
        ]
        outcome = notifications.notification_send_for_subcase(
            principal_or_system=system_principal(run.airline),
            sub_case_urn=run.sub_case.urn,
            template=NOTIFY_TEMPLATE,
            context={"caseUrn": run.case.urn, "sagaUrn": run.urn, "items": delivered},
            idempotency_key=step.idempotency_key,
        )
        return dict(outcome or {})
