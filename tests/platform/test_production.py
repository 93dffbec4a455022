"""Fail closed in production (issue 9 §4): settings refuse to import without a real provider or with a
published SECRET_KEY; the X-Forwarded-Proto header is trusted only behind a declared TLS proxy; the
compose files carry no password; seed_demo refuses. Settings are imported in a fresh interpreter, as
a server start would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from operators.models import Operator

BASE_DIR = Path(__file__).resolve().parents[2]
DOCKER = BASE_DIR / "docker"
GOOD = {
    "NEXA_ENV": "production",
    "SECRET_KEY": "a-real-secret-8Jq3kP0xZr7Lm2Wv9Tn4Yb6Hc1Df5Gs0Ke3Ua8Io2",
    "OIDC_ISSUER": "https://login.example.com/",
    "OIDC_JWKS_URL": "https://login.example.com/.well-known/jwks.json",
    "ALLOWED_HOSTS": "nexa.example.com",
}
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; "
    "print('PROXY', getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
)


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _import_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEXA_", "OIDC_", "SECRET_KEY", "DJANGO_"))}
    clean.update(DJANGO_SETTINGS_MODULE="nexa.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=60
    )


def test_production_settings_import_with_a_real_configuration():
    result = _import_settings(GOOD)
    assert result.returncode == 0, result.stderr
    assert "PROXY None" in result.stdout  # no TLS proxy declared: X-Forwarded-Proto is not trusted


@pytest.mark.parametrize("missing", ["OIDC_ISSUER", "OIDC_JWKS_URL", "SECRET_KEY"])
def test_production_refuses_to_start_without(missing):
    result = _import_settings({key: value for key, value in GOOD.items() if key != missing})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr, result.stderr


def _example_secret_keys() -> list[str]:
    return [_env_file(DOCKER / ".env.example")["SECRET_KEY"], "dev-insecure-key-" + "n" * 40]


@pytest.mark.parametrize("secret_key", _example_secret_keys())
def test_production_refuses_the_example_secret_key(secret_key):
    result = _import_settings({**GOOD, "SECRET_KEY": secret_key})
    assert result.returncode != 0
    assert "example SECRET_KEY" in result.stderr, result.stderr


def test_the_example_production_env_passes_with_a_secret_of_its_own():
    """What `make check` does: docker/production.env plus a one-off SECRET_KEY."""
    result = _import_settings({**_env_file(DOCKER / "production.env"), "SECRET_KEY": GOOD["SECRET_KEY"]})
    assert result.returncode == 0, result.stderr
    assert "PROXY ('HTTP_X_FORWARDED_PROTO', 'https')" in result.stdout  # it declares its TLS proxy


def test_the_proxy_ssl_header_is_trusted_only_behind_a_declared_tls_proxy():
    assert "PROXY None" in _import_settings({}).stdout  # development too
    behind = _import_settings({**GOOD, "NEXA_BEHIND_TLS_PROXY": "1"})
    assert "PROXY ('HTTP_X_FORWARDED_PROTO', 'https')" in behind.stdout, behind.stderr


def test_compose_and_the_example_env_carry_no_password():
    compose = (DOCKER / "docker-compose.yml").read_text()
    assert "change-me" not in compose and "replace-me" not in compose
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in compose
    production = _env_file(DOCKER / "production.env")
    assert not {"SECRET_KEY", "DATABASE_URL", "OIDC_RP_CLIENT_SECRET", "POSTGRES_PASSWORD"} & set(production)
    assert {"SECRET_KEY", "POSTGRES_PASSWORD"} <= set(_env_file(DOCKER / ".env.example"))


@pytest.mark.django_db
def test_seed_demo_refuses_in_production(settings):
    settings.NEXA_ENV = "production"
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
    assert not Operator.objects.exists()
