"""Tokens: logging out revokes the caller's own token."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from nexa.platform.auth import Principal, revoke_token_id
from nexa.platform.problems import Problem

# --- tokens -----------------------------------------------------------------------------------------


def token_logout(*, principal: Principal) -> bool:
    """Revoke the caller's own token (its ``jti``) until it expires; audited as ``auth.logout`` the first
    time. Returns False when it was already revoked (logging out twice is harmless, audited once). A
    token without ``jti`` cannot be revoked: 422 ``token-not-revocable`` (production refuses such tokens
    altogether)."""
    if not principal.token_id:
        raise Problem(
            status=422,
            slug="token-not-revocable",
            title="The token cannot be revoked",
            detail="The token has no 'jti' claim, so it cannot be revoked; it stays valid until it expires.",
        )
    ttl = 86400
    if principal.expires_at is not None:
        remaining = (principal.expires_at - timezone.now()).total_seconds()
        ttl = max(int(remaining) + int(settings.NEXA_JWT_LEEWAY_SECONDS) + 1, 1)
    with transaction.atomic():
        revoked = revoke_token_id(principal.token_id, ttl_seconds=ttl)
        if revoked:
            audit.record(
                principal=principal,
                action="auth.logout",
                entity_urn=principal.operator_urn,
                reason="logout",
                before={"tokenId": principal.token_id},
                after={"revoked": True},
            )
    return revoked
