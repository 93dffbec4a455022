"""Nexa settings: everything comes from the environment (see docs/configuration.md)."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from nexa.service_urls import redis_db

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is convenient in development; the environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Where development state lives: embedded databases, the dev signing key.
NEXA_STATE_DIR = Path(env.str("NEXA_STATE_DIR", default=str(BASE_DIR / ".nexa")))

# "production" makes every security default strict and fails closed: no start without a real
# SECRET_KEY and a real OIDC provider (see the checks at the end of the auth section).
NEXA_ENV = env.str("NEXA_ENV", default="development")
PRODUCTION = NEXA_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
_DEV_SECRET_KEY = "dev-insecure-key-" + "n" * 40
# Secret keys published in this repository (docker/production.env, docs): never valid in production.
# `make check` runs `check --deploy` with docker/production.env and a one-off random SECRET_KEY.
EXAMPLE_SECRET_KEYS = frozenset(
    {
        _DEV_SECRET_KEY,
        "replace-me-9f2c7d1e4b8a6035c1e7f9a2d4b6c8e0f1a3b5c7d9e2f4a6b8c0d2e4f6a8b0c2",
        "replace-me",
        "change-me",
    }
)
SECRET_KEY = env.str("SECRET_KEY", default="" if PRODUCTION else _DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "mozilla_django_oidc",
    "nexa.platform",
    "cases",
    "booking",
    "policies",
    "review",
    "operators",
    "audit",
    "agent",
    "notifications",
    # The operator console (templates, static, locale, its preferences table): the top layer, joins domains.
    "nexa.console",
]

MIDDLEWARE = [
    "nexa.platform.correlation.CorrelationMiddleware",
    "nexa.platform.metrics.MetricsMiddleware",
    "nexa.platform.problems.ProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin CSS, /v1/docs Swagger UI) from the app (WhiteNoise): make run and production alike.
    "nexa.platform.static.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last on purpose: see nexa/platform/sync_chain.py (one thread hop instead of ~18 under ASGI).
    "nexa.platform.sync_chain.SyncMiddlewareChain",
]

ROOT_URLCONF = "nexa.urls"
WSGI_APPLICATION = "nexa.wsgi.application"
ASGI_APPLICATION = "nexa.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "nexa" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/nexa"),
}
# Under ASGI each request runs in a thread of its own, so Django's persistent connections would be
# opened per request and left behind; a psycopg pool per process reuses them instead.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=20)
if DATABASE_POOL_MAX_SIZE > 0 and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT_SECONDS", default=10.0),
        # Idle connections are closed so a dropped test database or a failover is not held up.
        "max_idle": 60.0,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# The Redis database number of REDIS_URL (0 when the URL names none).
_REDIS_DB = redis_db(REDIS_URL)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("NEXA_CACHE_PREFIX", default="nexa"),
    }
}

# The channel layer carries Socket.IO fan-out between processes (operators/realtime.py). Both
# channels-redis layers work; NEXA_CHANNEL_LAYER picks one ("core": RedisChannelLayer, lists per
# channel; "pubsub": RedisPubSubChannelLayer, Redis PUBLISH per group). The default is the faster in
# bench/presence.py (docs/benchmarks.md § Presence channel).
NEXA_CHANNEL_LAYER = env.str("NEXA_CHANNEL_LAYER", default="pubsub")
_CHANNEL_LAYER_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
if NEXA_CHANNEL_LAYER not in _CHANNEL_LAYER_BACKENDS:
    raise ImproperlyConfigured(f"NEXA_CHANNEL_LAYER must be one of {', '.join(_CHANNEL_LAYER_BACKENDS)}")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _CHANNEL_LAYER_BACKENDS[NEXA_CHANNEL_LAYER],
        "CONFIG": {
            # redis-py caps a pool at 100 connections by default and fails (not waits) above it; a burst
            # of socket joins needs more.
            "hosts": [
                {"address": REDIS_URL, "max_connections": env.int("NEXA_CHANNEL_LAYER_MAX_CONNECTIONS", default=500)}
            ],
            # Redis pub/sub channels are global to the server, not per database: derive the prefix
            # from the database number so two deployments (or test runs) on one Redis never cross-talk.
            "prefix": env.str("NEXA_CHANNEL_LAYER_PREFIX", default=f"nexa-asgi-db{_REDIS_DB}"),
        },
    }
}

# --- Socket.IO presence channel (/ws/cases; docs/presence-channel.md) ---------------------
# Engine.IO heartbeat: the server pings every interval and closes a socket whose pong is later than
# the timeout. Each ping cycle also touches the process's operator sessions (renewing their leases)
# and re-checks token revocation.
NEXA_SOCKET_PING_INTERVAL_MS = env.int("NEXA_SOCKET_PING_INTERVAL_MS", default=25_000)
NEXA_SOCKET_PING_TIMEOUT_MS = env.int("NEXA_SOCKET_PING_TIMEOUT_MS", default=20_000)
# A socket that has not sent a valid Socket.IO CONNECT this long after the handshake is closed.
NEXA_SOCKET_CONNECT_TIMEOUT_SECONDS = env.float("NEXA_SOCKET_CONNECT_TIMEOUT_SECONDS", default=10.0)
# Connection-state recovery: a disconnected socket's rooms are kept this long, and a reconnect within
# it replays the events it missed (at most NEXA_SOCKET_REPLAY_MAX_EVENTS; more is a fresh session).
NEXA_SOCKET_REPLAY_SECONDS = env.int("NEXA_SOCKET_REPLAY_SECONDS", default=60)
NEXA_SOCKET_REPLAY_MAX_EVENTS = env.int("NEXA_SOCKET_REPLAY_MAX_EVENTS", default=1000)
# Largest frame a client may send (announced as maxPayload); a larger one closes that socket (1009).
NEXA_SOCKET_MAX_PAYLOAD = env.int("NEXA_SOCKET_MAX_PAYLOAD", default=16_384)
# Case rooms one socket may be subscribed to at once.
NEXA_SOCKET_MAX_ROOMS = env.int("NEXA_SOCKET_MAX_ROOMS", default=200)
# Per-socket event budget (token bucket): a burst of this many, refilled at this rate per second.
# Events over budget are answered with an error; this many refusals in a row close the socket (4429).
NEXA_SOCKET_EVENT_BURST = env.int("NEXA_SOCKET_EVENT_BURST", default=30)
NEXA_SOCKET_EVENT_RATE = env.float("NEXA_SOCKET_EVENT_RATE", default=10.0)
NEXA_SOCKET_FLOOD_CLOSE_AFTER = env.int("NEXA_SOCKET_FLOOD_CLOSE_AFTER", default=50)

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# ETAs and retry countdowns must stay below this (ARCHITECTURE §3.10).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = False
# Beat keeps its schedule in memory (Celery's plain Scheduler, not the shelve-file PersistentScheduler):
# every entry is a short interval defined here, so there is nothing worth persisting, and a schedule file
# left half-written by an interrupted stop used to keep beat (and `make run`) from starting.
CELERY_BEAT_SCHEDULER = "celery.beat:Scheduler"
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "nexa.platform.tasks.outbox_sweep", "schedule": 5.0},
    "idempotency-purge": {"task": "nexa.platform.tasks.idempotency_purge", "schedule": 3600.0},
    "lock-lease-sweep": {"task": "operators.tasks.lock_leases_expire_sweep", "schedule": 5.0},
    "operator-session-sweep": {"task": "operators.tasks.operator_sessions_stale_sweep", "schedule": 15.0},
    # A worker killed mid-step leaves its run's lease to expire; this resumes it within seconds.
    "saga-resume-stalled": {"task": "cases.tasks.saga_runs_resume_stalled", "schedule": 15.0},
    # Rooms not needed go back: expired holds, uncalled contract allotment, nights of passengers who left.
    "reservations-release": {"task": "cases.tasks.reservations_release", "schedule": 60.0},
    # Review items past their SLA are escalated and page the on-call (docs/review.md).
    "review-sla-sweep": {"task": "review.tasks.review_sla_sweep", "schedule": 15.0},
}

# --- Auth ---------------------------------------------------------------------------------
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_JWKS_URL = env.str("OIDC_JWKS_URL", default="")
OIDC_AUDIENCE = env.str("OIDC_AUDIENCE", default="https://api.nexa/v1")
# The development issuer is used only when no real provider is configured.
NEXA_DEV_ISSUER = env.str("NEXA_DEV_ISSUER", default="https://nexa.dev/issuer")
NEXA_JWT_LEEWAY_SECONDS = env.int("NEXA_JWT_LEEWAY_SECONDS", default=30)
NEXA_JWKS_CACHE_SECONDS = env.int("NEXA_JWKS_CACHE_SECONDS", default=300)
# When the JWKS cannot be fetched (outage, malformed body), the last good keys keep serving for at most
# this long after their fetch (logged); past it, tokens are refused (401) until a fetch succeeds.
NEXA_JWKS_MAX_STALENESS_SECONDS = env.int("NEXA_JWKS_MAX_STALENESS_SECONDS", default=86_400)

if PRODUCTION:
    # Fail closed (issue 9 §4): refuse to start rather than run with the development issuer or a
    # published secret key.
    _missing = [name for name in ("OIDC_ISSUER", "OIDC_JWKS_URL") if not globals()[name]]
    if _missing:
        raise ImproperlyConfigured(
            f"NEXA_ENV=production requires {' and '.join(_missing)} (a real OIDC provider); "
            "the development token issuer is never used in production."
        )
    if not SECRET_KEY:
        raise ImproperlyConfigured("NEXA_ENV=production requires SECRET_KEY.")
    if SECRET_KEY in EXAMPLE_SECRET_KEYS or SECRET_KEY.startswith(("replace-me", "change-me", "dev-insecure-key")):
        raise ImproperlyConfigured(
            "NEXA_ENV=production refuses the example SECRET_KEY (docker/production.env, docs): "
            "set a secret of your own, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )

# Console login: mozilla-django-oidc against the provider when configured, else Django login.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = OIDC_JWKS_URL
# The console hands the provider's access token to its page for the presence channel's CONNECT (docs/console.md).
OIDC_STORE_ACCESS_TOKEN = True
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_RP_CLIENT_ID:
    AUTHENTICATION_BACKENDS.insert(0, "mozilla_django_oidc.auth.OIDCAuthenticationBackend")
LOGIN_URL = "/oidc/authenticate/" if OIDC_RP_CLIENT_ID else "/admin/login/"
LOGIN_REDIRECT_URL = "/"

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["nexa.platform.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["nexa.platform.parsers.NexaJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["nexa.platform.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"principal": env.str("NEXA_RATE_LIMIT", default="6000/min")},
    "EXCEPTION_HANDLER": "nexa.platform.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "nexa.platform.openapi.NexaAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# Bodies above this are refused with a 413 problem.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("NEXA_MAX_BODY_BYTES", default=5 * 1024 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "Nexa Operator API",
    "DESCRIPTION": (
        "Operations platform for disrupted flights. Errors are RFC 9457 problem details; "
        "every POST accepts an Idempotency-Key header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # One name for a choice set used by several fields.
    "ENUM_NAME_OVERRIDES": {
        "MealEnum": "booking.contracts.models.Meal",
        "DemandKindEnum": "cases.models.DemandKind",
        "ReservationSourceEnum": "booking.models.ReservationSource",
        "ReservationStatusEnum": "booking.models.ReservationStatus",
        "FailureCauseEnum": "agent.models.FailureCause",
        "CauseEnum": "cases.models.Cause",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "nexa.platform.openapi.postprocess_exact_schema",
    ],
}

# --- Platform contracts -------------------------------------------------------------------
NEXA_IDEMPOTENCY_RETENTION_HOURS = env.int("NEXA_IDEMPOTENCY_RETENTION_HOURS", default=24)
# An in-flight claim older than this is treated as abandoned (its process died).
NEXA_IDEMPOTENCY_IN_FLIGHT_SECONDS = env.int("NEXA_IDEMPOTENCY_IN_FLIGHT_SECONDS", default=60)
NEXA_PAGE_SIZE_DEFAULT = 50
NEXA_PAGE_SIZE_MAX = 200
# Undelivered outbox rows older than this are re-delivered by the beat sweep.
NEXA_OUTBOX_SWEEP_AFTER_SECONDS = env.int("NEXA_OUTBOX_SWEEP_AFTER_SECONDS", default=2)
# After this many failed deliveries a row is kept but skipped until requeued (a poison row).
NEXA_OUTBOX_MAX_ATTEMPTS = env.int("NEXA_OUTBOX_MAX_ATTEMPTS", default=10)
# "background": committed events are relayed by one thread per process, in batches, off the request path;
# "inline": relayed in the committing thread right after commit, one transaction each (debugging).
NEXA_OUTBOX_RELAY = env.str("NEXA_OUTBOX_RELAY", default="background")
if NEXA_OUTBOX_RELAY not in ("background", "inline"):
    raise ImproperlyConfigured(f"NEXA_OUTBOX_RELAY must be 'background' or 'inline', not {NEXA_OUTBOX_RELAY!r}")
# publish() checks every payload against its event's declaration (nexa/platform/events.py) and refuses a
# mismatch. On in the test suite (tests/conftest.py); off by default, so a payload bug can never turn a
# committed change into a 500 in production. Undeclared events are refused either way.
NEXA_EVENT_SCHEMA_CHECK = env.bool("NEXA_EVENT_SCHEMA_CHECK", default=False)
# GET /v1/cases/{urn}/events (Server-Sent Events): a ": heartbeat" comment after this many seconds of
# silence, the outbox is polled for new delivered events this often, and Last-Event-ID replay reaches
# back at most this far (older offsets resume from what is retained, with a replay-truncated notice).
NEXA_SSE_HEARTBEAT_SECONDS = env.float("NEXA_SSE_HEARTBEAT_SECONDS", default=15.0)
NEXA_SSE_POLL_SECONDS = env.float("NEXA_SSE_POLL_SECONDS", default=0.25)
NEXA_SSE_RETENTION_SECONDS = env.int("NEXA_SSE_RETENTION_SECONDS", default=3600)
NEXA_BENCH = env.bool("NEXA_BENCH", default=False)
# Composition routes (ARCHITECTURE §3.8): each section gets this long before it is reported as late.
NEXA_COMPOSITION_TIMEOUT_SECONDS = env.float("NEXA_COMPOSITION_TIMEOUT_SECONDS", default=3.0)
# GET /v1/audit/export.csv refuses (422) a range with more rows than this.
NEXA_AUDIT_EXPORT_MAX_ROWS = env.int("NEXA_AUDIT_EXPORT_MAX_ROWS", default=100_000)
# Passengers' personal data is kept this many days after the flight date, then purge_passenger_data
# anonymises it (closed cases only).
NEXA_PASSENGER_DATA_RETENTION_DAYS = env.int("NEXA_PASSENGER_DATA_RETENTION_DAYS", default=90)
# Entity locks (ARCHITECTURE §4): a lease lasts this long unless renewed (the holder's socket heartbeat
# renews it); an operator session not heard from for NEXA_SESSION_STALE_SECONDS is closed by the sweep.
NEXA_LOCK_LEASE_SECONDS = env.int("NEXA_LOCK_LEASE_SECONDS", default=120)
NEXA_SESSION_STALE_SECONDS = env.int("NEXA_SESSION_STALE_SECONDS", default=60)
# Hotel vouchers (docs/booking.md): links sent to passengers are absolute URLs on this origin (`make run`
# serves on port 8000), signed, and valid until the day after check-out, never longer than the max age.
NEXA_PUBLIC_BASE_URL = env.str("NEXA_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
NEXA_VOUCHER_LINK_MAX_AGE_SECONDS = env.int("NEXA_VOUCHER_LINK_MAX_AGE_SECONDS", default=45 * 24 * 3600)

# --- External providers (ARCHITECTURE §7; docs/providers.md) --------------------------------
# Base URLs of the PSP, ground transport (Uber- and Cabify-shaped APIs) and SMS/WhatsApp providers.
# `make run` starts the simulators and exports these; the test suite starts its own (tests/fixtures.py).
NEXA_PSP_URL = env.str("NEXA_PSP_URL", default="http://127.0.0.1:8710")
NEXA_TRANSPORT_URL = env.str("NEXA_TRANSPORT_URL", default="http://127.0.0.1:8711")
NEXA_SMS_URL = env.str("NEXA_SMS_URL", default="http://127.0.0.1:8712")
NEXA_WHATSAPP_URL = env.str("NEXA_WHATSAPP_URL", default=NEXA_SMS_URL)
# Hotel vendors (docs/hotels.md): one simulator process serves every vendor under /<vendor>; a search asks
# NEXA_HOTEL_VENDORS (codes of booking.hotel_data.VENDORS) and answers after NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS
# at the latest with what arrived. NEXA_HOTEL_VENDOR_URLS ({"stayhub": "https://…"}) overrides a vendor's URL.
NEXA_HOTELS_URL = env.str("NEXA_HOTELS_URL", default="http://127.0.0.1:8713")
NEXA_HOTEL_VENDORS = env.list("NEXA_HOTEL_VENDORS", default=["stayhub", "globerooms", "nightbed"])
NEXA_HOTEL_VENDOR_URLS = env.json("NEXA_HOTEL_VENDOR_URLS", default={})
NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS = env.float("NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS", default=2.0)
NEXA_HOTEL_SEARCH_RADIUS_KM = env.float("NEXA_HOTEL_SEARCH_RADIUS_KM", default=50.0)
NEXA_HOTEL_QUOTE_TTL_SECONDS = env.int("NEXA_HOTEL_QUOTE_TTL_SECONDS", default=900)
# Per-request timeouts of provider calls (a timeout is a transient error).
NEXA_PROVIDER_TIMEOUT_SECONDS = env.float("NEXA_PROVIDER_TIMEOUT_SECONDS", default=10.0)
NEXA_PROVIDER_CONNECT_TIMEOUT_SECONDS = env.float("NEXA_PROVIDER_CONNECT_TIMEOUT_SECONDS", default=2.0)
# Circuit breakers (ARCHITECTURE §3.9, nexa/platform/breakers.py): this many consecutive transient
# failures open a dependency's circuit for this many seconds, then one trial call is let through.
NEXA_BREAKER_FAIL_MAX = env.int("NEXA_BREAKER_FAIL_MAX", default=5)
NEXA_BREAKER_RESET_SECONDS = env.float("NEXA_BREAKER_RESET_SECONDS", default=30.0)

# --- Compensation limits (docs/compensation.md "Limits"; issue 9 §2) ------------------------
# Defaults of every airline's TenantSettings (each field there, when set in Django admin, wins):
# the currency an airline settles in, and per passenger per disruption, summed over every saga run of
# the sub-case, how much of each item type may be granted, in that currency.
NEXA_SETTLEMENT_CURRENCY = env.str("NEXA_SETTLEMENT_CURRENCY", default="EUR")
NEXA_COMPENSATION_LIMIT_MEAL = env.str("NEXA_COMPENSATION_LIMIT_MEAL", default="50.00")
NEXA_COMPENSATION_LIMIT_CASH = env.str("NEXA_COMPENSATION_LIMIT_CASH", default="600.00")
NEXA_COMPENSATION_LIMIT_TRANSPORT = env.str("NEXA_COMPENSATION_LIMIT_TRANSPORT", default="150.00")
# Other currencies are refused unless they have a rate here (or in the airline's own table):
# JSON {"USD": "0.92"} = one USD is worth 0.92 of the settlement currency. Empty: settlement only.
NEXA_COMPENSATION_CURRENCY_RATES = env.json("NEXA_COMPENSATION_CURRENCY_RATES", default={})

# --- Demand, allocation and booking (docs/booking.md; issue 12) -----------------------------------
# A demand wave not approved within this many minutes reads as EXPIRED (TenantSettings overrides it).
NEXA_DEMAND_APPROVAL_TTL_MINUTES = env.int("NEXA_DEMAND_APPROVAL_TTL_MINUTES", default=30)
# A vendor hold not confirmed within this many seconds is released by the sweep.
NEXA_HOTEL_HOLD_TTL_SECONDS = env.int("NEXA_HOTEL_HOLD_TTL_SECONDS", default=900)
# A room whose hold fails tries at most this many further compliant offers before it goes to review.
NEXA_BOOKING_MAX_OFFER_ATTEMPTS = env.int("NEXA_BOOKING_MAX_OFFER_ATTEMPTS", default=3)

# --- Manual review (docs/review.md; issue 13) --------------------------------------------------------
# Minutes an item may wait, by priority, before its SLA is breached (TenantSettings.sla_*_minutes override).
NEXA_REVIEW_SLA_HIGH_MINUTES = env.int("NEXA_REVIEW_SLA_HIGH_MINUTES", default=15)
NEXA_REVIEW_SLA_MEDIUM_MINUTES = env.int("NEXA_REVIEW_SLA_MEDIUM_MINUTES", default=60)
NEXA_REVIEW_SLA_LOW_MINUTES = env.int("NEXA_REVIEW_SLA_LOW_MINUTES", default=240)

# --- The exception agent (docs/agent.md; issue 13) ----------------------------------------------------
# A hosted model (an OpenAI-compatible chat/tool-calling endpoint) is used when both URL and key are set;
# otherwise the deterministic planner answers (no network).
NEXA_AGENT_MODEL_URL = env.str("NEXA_AGENT_MODEL_URL", default="")
NEXA_AGENT_MODEL_KEY = env.str("NEXA_AGENT_MODEL_KEY", default="")
NEXA_AGENT_MODEL_NAME = env.str("NEXA_AGENT_MODEL_NAME", default="nexa-exception-agent")
NEXA_AGENT_MODEL_TIMEOUT_SECONDS = env.float("NEXA_AGENT_MODEL_TIMEOUT_SECONDS", default=20.0)
# A proposal not executed within this many minutes reads as EXPIRED (approve/execute: 409).
NEXA_AGENT_PROPOSAL_TTL_MINUTES = env.int("NEXA_AGENT_PROPOSAL_TTL_MINUTES", default=30)

# --- Notifications (email through Django's SMTP backend; SMS/WhatsApp through their adapters) ---
# Django 6.1 configures email through MAILERS (the EMAIL_* settings are deprecated); the environment
# keeps the classic variable names.
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env.str("EMAIL_HOST", default="localhost"),
            "port": env.int("EMAIL_PORT", default=25),
            "timeout": env.int("EMAIL_TIMEOUT", default=10),
        },
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Nexa <no-reply@nexa.dev>")
# Delivery attempts per notification (transient errors retried with backoff), then FAILED for manual resend.
NEXA_NOTIFICATION_MAX_ATTEMPTS = env.int("NEXA_NOTIFICATION_MAX_ATTEMPTS", default=5)
# Manual sends (POST /v1/notifications/{case_urn}/send) cost money per SMS: at most this many passengers
# per request (more: 422), and this many sends per case in any sliding hour (more: 429 with Retry-After).
NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS = env.int("NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS", default=50)
NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR = env.int("NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR", default=10)

# --- Contracts wizard (POST /v1/contracts/analyze-pdf; docs/contracts.md) ----------------------
# The hosted-model refiner runs only when both are set; the document's text is sent to that URL.
NEXA_CONTRACTS_MODEL_URL = env.str("NEXA_CONTRACTS_MODEL_URL", default="")
NEXA_CONTRACTS_MODEL_API_KEY = env.str("NEXA_CONTRACTS_MODEL_API_KEY", default="")
NEXA_CONTRACTS_MODEL_TIMEOUT_SECONDS = env.float("NEXA_CONTRACTS_MODEL_TIMEOUT_SECONDS", default=10.0)

# --- Security (strict when NEXA_ENV=production; relaxed for local http) ----------------------
# Trust X-Forwarded-Proto only behind a TLS-terminating proxy that sets it (and strips the client's):
# without one, any client could claim https.
NEXA_BEHIND_TLS_PROXY = env.bool("NEXA_BEHIND_TLS_PROXY", default=False)
if NEXA_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Probes come from the orchestrator over plain http inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# The console's languages (nexa/locale), chosen per operator (console.ConsolePreference).
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "nexa" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files are served by the app (WhiteNoise middleware) under /static/: from the apps' own directories
# with DEBUG, from STATIC_ROOT (filled by `collectstatic`: `make run` runs it, the Docker image at build time)
# otherwise. Without DEBUG they are stored hashed and pre-compressed (far-future cache headers), which needs
# collectstatic's manifest; with DEBUG they are plain, so tests and a fresh clone need no collectstatic.
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("NEXA_STATIC_ROOT", default=str(NEXA_STATE_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING_CONFIG = None  # configured by nexa.platform.logging (structlog) below

from nexa.platform.logging import configure_logging  # noqa: E402

configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT)
