"""Commands of the policies domain: every write to policies' tables goes through one of these.

Each runs in one transaction, takes the :class:`~nexa.platform.auth.Principal`, writes an audit row
with before/after and, for activation, publishes ``policy:activated`` through the outbox.

* Versions are immutable: a patch inserts version n+1 (``PolicyVersion``) and moves the policy's
  current name/rules to it, guarded by ``UPDATE … WHERE version = expected`` (stale → 409 with the
  current ``version``).
* Activation is atomic: in one transaction the ACTIVE policy of the same airline+scope is archived
  and this one activated. The partial unique index (one ACTIVE per airline+scope) decides a race:
  when two activations for one scope overlap, the second one's UPDATE waits for the first to commit
  and then violates the index, so it answers 409 ``scope-activation-conflict`` and changes nothing;
  exactly one policy of the scope is ACTIVE afterwards.
"""

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from django_fsm import can_proceed

from audit import services as audit
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, not_found_problem, validation_problem
from policies import events
from policies import generator as generators
from policies.demo import DEMO_POLICIES
from policies.models import ONE_ACTIVE_PER_SCOPE, Policy, PolicySource, PolicyStatus, PolicyVersion
from policies.rules import validate_name, validate_rules, validate_scope


def _snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "scope": policy.scope,
        "rules": policy.rules,
        "status": policy.status,
        "version": policy.version,
    }


def _version_conflict(policy_urn: str, current: int | None, expected: int) -> Problem:
    return conflict_problem(
        slug="version-conflict",
        title="The policy changed since you read it",
        detail=f"{policy_urn} is at version {current}, not {expected}; reload it and retry with the current version.",
        version=current,
    )


def _illegal_transition(policy: Policy, transition: str) -> Problem:
    allowed = sorted(t.name for t in policy.get_available_status_transitions())
    return conflict_problem(
        slug="illegal-transition",
        title="Transition not allowed from the current status",
        detail=f"{policy.urn} is {policy.status}; {transition!r} is not possible from there. "
        f"Allowed: {', '.join(allowed) or 'none (final status)'}.",
        currentStatus=policy.status,
        allowedTransitions=allowed,
    )


def _lock(*, principal: Principal, policy_id) -> Policy:
    try:
        return Policy.objects.select_for_update().get(pk=policy_id, airline=principal.airline)
    except Policy.DoesNotExist:
        raise not_found_problem() from None


def policy_create(
    *,
    principal: Principal,
    name: Any,
    scope: Any,
    rules: Any,
    source: str = PolicySource.MANUAL,
    generation: dict[str, Any] | None = None,
    audit_extra: dict[str, Any] | None = None,
) -> Policy:
    """A DRAFT policy at version 1 (400 listing every bad field)."""
    clean_name, errors = validate_name(name)
    clean_scope, scope_errors = validate_scope(scope)
    clean_rules, rule_errors = validate_rules(rules)
    errors += scope_errors + rule_errors
    if errors:
        raise validation_problem(errors)
    with transaction.atomic():
        policy = Policy.objects.create(
            airline=principal.airline,
            name=clean_name,
            scope_airport=clean_scope.get("airport", ""),
            scope_tier=clean_scope.get("tier", ""),
            scope_cause=clean_scope.get("cause", ""),
            rules=clean_rules,
            source=source,
            generation=generation,
            created_by=principal.operator_urn,
        )
        PolicyVersion.objects.create(
            policy=policy,
            airline=policy.airline,
            version=1,
            name=policy.name,
            rules=policy.rules,
            created_by=principal.operator_urn,
        )
        after = _snapshot(policy)
        if audit_extra:
            after.update(audit_extra)
        audit.record(
            principal=principal,
            action="policy.generated" if source == PolicySource.GENERATED else "policy.created",
            entity_urn=policy.urn,
            after=after,
        )
    policy.refresh_from_db(fields=["created_at", "updated_at"])
    return policy


def policy_patch(*, principal: Principal, policy: Policy, expected_version: int, changes: Any) -> Policy:
    """Version n+1 with ``changes`` ``{name?, rules?}`` applied (rules merge; a null rule is removed).
    The scope is a policy's identity and is not patched: a new scope is a new policy."""
    if not isinstance(changes, dict):
        raise validation_problem([{"field": "changes", "message": "must be an object {name?, rules?}"}])
    errors: list[dict[str, str]] = []
    for key in sorted(set(changes) - {"name", "rules"}):
        message = "the scope is not patched: create a policy for another scope" if key == "scope" else "unknown"
        errors.append({"field": f"changes.{key}", "message": message})
    name = None
    if "name" in changes:
        name, name_errors = validate_name(changes["name"], field="changes.name")
        errors += name_errors
    rule_changes: dict[str, Any] = {}
    if "rules" in changes:
        rule_changes, rule_errors = validate_rules(changes["rules"], field="changes.rules", patch=True)
        errors += rule_errors
    if not errors and not changes:
        errors.append({"field": "changes", "message": "name it at least one change (name or rules)"})
    if errors:
        raise validation_problem(errors)
    with transaction.atomic():
        current = _lock(principal=principal, policy_id=policy.pk)
        if current.version != expected_version:
            raise _version_conflict(current.urn, current.version, expected_version)
        before = _snapshot(current)
        rules = dict(current.rules)
        for rule, value in rule_changes.items():
            if value is None:
                rules.pop(rule, None)
            else:
                rules[rule] = value
        new_name = name or current.name
        updated = Policy.objects.filter(pk=current.pk, version=expected_version).update(
            name=new_name, rules=rules, version=F("version") + 1, updated_at=Now()
        )
        if not updated:  # pragma: no cover - the row lock above makes this unreachable
            raise _version_conflict(current.urn, None, expected_version)
        current.refresh_from_db()
        PolicyVersion.objects.create(
            policy=current,
            airline=current.airline,
            version=current.version,
            name=current.name,
            rules=current.rules,
            created_by=principal.operator_urn,
        )
        audit.record(
            principal=principal,
            action="policy.patched",
            entity_urn=current.urn,
            before=before,
            after=_snapshot(current),
        )
    return current


def _activation_conflict(policy: Policy) -> Problem:
    return conflict_problem(
        slug="scope-activation-conflict",
        title="Another policy was activated for this scope at the same time",
        detail=f"Another activation for the scope of {policy.urn} committed first; read "
        "GET /v1/policies/active and retry if this one should win.",
    )


def policy_activate(*, principal: Principal, policy: Policy, reason: str = "") -> Policy:
    """DRAFT → ACTIVE, archiving the ACTIVE policy of the same airline+scope in the same transaction."""
    try:
        with transaction.atomic():
            current = _lock(principal=principal, policy_id=policy.pk)
            if not can_proceed(current.activate):
                raise _illegal_transition(current, "activate")
            previous = (
                Policy.objects.select_for_update()
                .filter(
                    airline=current.airline,
                    status=PolicyStatus.ACTIVE,
                    scope_airport=current.scope_airport,
                    scope_tier=current.scope_tier,
                    scope_cause=current.scope_cause,
                )
                .first()
            )
            if previous is not None:
                previous_before = _snapshot(previous)
                previous.archive()
                Policy.objects.filter(pk=previous.pk).update(status=PolicyStatus.ARCHIVED, updated_at=Now())
                audit.record(
                    principal=principal,
                    action="policy.archived",
                    entity_urn=previous.urn,
                    reason=reason or f"replaced by {current.urn}",
                    before=previous_before,
                    after={**previous_before, "status": PolicyStatus.ARCHIVED},
                )
            before = _snapshot(current)
            current.activate()
            # The partial unique index decides a race: a concurrent activation for this scope that
            # committed between our read and this write makes it fail (IntegrityError → 409).
            Policy.objects.filter(pk=current.pk).update(
                status=PolicyStatus.ACTIVE, activated_at=Now(), updated_at=Now()
            )
            current.refresh_from_db()
            audit.record(
                principal=principal,
                action="policy.activated",
                entity_urn=current.urn,
                reason=reason,
                before=before,
                after=_snapshot(current),
            )
            events.publish_policy_activated(
                airline=current.airline,
                policy_urn=current.urn,
                version=current.version,
                scope=current.scope,
                archived_policy_urn=previous.urn if previous is not None else None,
                activated_by=principal.operator_urn,
            )
    except IntegrityError as error:
        if ONE_ACTIVE_PER_SCOPE in str(error):
            raise _activation_conflict(policy) from None
        raise
    return current


def policy_deactivate(*, principal: Principal, policy: Policy, reason: str = "") -> Policy:
    """ACTIVE → ARCHIVED (a DRAFT or an ARCHIVED policy is a 409)."""
    with transaction.atomic():
        current = _lock(principal=principal, policy_id=policy.pk)
        if not can_proceed(current.archive):
            raise _illegal_transition(current, "deactivate")
        before = _snapshot(current)
        current.archive()
        Policy.objects.filter(pk=current.pk).update(status=PolicyStatus.ARCHIVED, updated_at=Now())
        current.refresh_from_db()
        audit.record(
            principal=principal,
            action="policy.archived",
            entity_urn=current.urn,
            reason=reason,
            before=before,
            after=_snapshot(current),
        )
    return current


NO_NAME = object()  # generate-ai without a name: one is made from the description


def policy_generate(*, principal: Principal, description: Any, name: Any = NO_NAME, generator=None) -> Policy:
    """A DRAFT from a description (never activated here): per rule its value, confidence and source words.

    400 for a missing/blank/too-long description; 422 when nothing could be read (``errors`` lists the
    fragments); 503 ``failedDomain: policy-model`` when the configured hosted model does not answer."""

    if not isinstance(description, str) or not description.strip():
        raise validation_problem([{"field": "description", "message": "must be a non-blank string"}])
    if len(description) > generators.DESCRIPTION_MAX_LENGTH:
        raise validation_problem(
            [{"field": "description", "message": f"at most {generators.DESCRIPTION_MAX_LENGTH} characters"}]
        )
    if name is not NO_NAME:
        clean_name, errors = validate_name(name)
        if errors:
            raise validation_problem(errors)
    generator = generator or generators.generator_for_settings()
    try:
        generated = generator.generate(description)
    except generators.GeneratorUnavailable as error:
        raise Problem(
            status=503,
            slug="downstream-unavailable",
            title="A downstream service is unavailable",
            detail=str(error),
            extensions={"failedDomain": "policy-model"},
            headers={"Retry-After": "30"},
        ) from None
    # Whatever the generator read must pass the same validation as a hand-written policy.
    for target, validate in ((generated.rules, validate_rules), (generated.scope, validate_scope)):
        for key in list(target):
            clean, errors = validate({key: target[key]["value"]})
            if errors:
                generated.unread.append(target.pop(key)["source"] or key)
            else:
                target[key]["value"] = clean[key]
    if not generated.rules:
        unread = generated.unread or [description.strip()]
        raise validation_problem(
            [{"field": "description", "message": f"could not read: {fragment!r}"} for fragment in unread[:20]],
            status=422,
            detail="No rule could be read from the description. Unread: "
            + "; ".join(repr(fragment) for fragment in unread[:5]),
        )
    scope = generated.scope_values()
    default_name = "Generated: " + " ".join(description.split())[:80]
    audit_extra: dict[str, Any] = {"description": description, "generation": generated.provenance()}
    if generated.prompt is not None:
        audit_extra["modelPrompt"] = generated.prompt
        audit_extra["modelAnswer"] = generated.answer
    return policy_create(
        principal=principal,
        name=clean_name if name is not NO_NAME else default_name,
        scope=scope,
        rules=generated.rule_values(),
        source=PolicySource.GENERATED,
        generation=generated.provenance(),
        audit_extra=audit_extra,
    )


def demo_policies_seed(*, principal_for: Callable[[str], Principal]) -> list[str]:
    """Create and activate the demo policies (``policies/demo.py``) as ``principal_for(airline)``, an ADMIN.
    Idempotent: a policy whose airline and name exist is left as it is. One summary line per airline."""

    lines = []
    for airline, specs in DEMO_POLICIES.items():
        principal = principal_for(airline)
        created = 0
        for spec in specs:
            if Policy.objects.filter(airline=airline, name=spec["name"]).exists():
                continue
            policy = policy_create(principal=principal, **spec)
            policy_activate(principal=principal, policy=policy, reason="demo data")
            created += 1
        active = Policy.objects.filter(airline=airline, status=PolicyStatus.ACTIVE).count()
        lines.append(f"policies {airline}: {active} active ({created} new)")
    return lines
