"""Refuse a token from now on: ``manage.py revoke_token <token or jti>``."""

import time

import jwt
from django.core.management.base import BaseCommand, CommandError

from nexa.platform.auth import revoke_token_id


class Command(BaseCommand):
    help = "Revoke a bearer token by its jti (pass the token itself or just its jti)."

    def add_arguments(self, parser):
        parser.add_argument("token_or_jti")
        parser.add_argument(
            "--ttl",
            type=int,
            default=None,
            help="how long to remember the revocation (default: until the token expires)",
        )

    def handle(self, *args, token_or_jti, ttl, **options):
        value = token_or_jti.strip()
        remaining = ttl
        if value.count(".") == 2:
            # A whole token: read its jti and expiry without verifying (revoking is always safe).
            try:
                claims = jwt.decode(value, options={"verify_signature": False})
            except jwt.PyJWTError as error:
                raise CommandError(f"Not a readable JWT: {error}") from None
            if not claims.get("jti"):
                raise CommandError("The token has no jti claim, so it cannot be revoked individually.")
            if remaining is None and isinstance(claims.get("exp"), int):
                remaining = claims["exp"] - int(time.time()) + 60
            value = str(claims["jti"])
        revoke_token_id(value, ttl_seconds=remaining if remaining and remaining > 0 else 86400)
        self.stdout.write(f"revoked {value}")
