"""A REAL SMTP server (aiosmtpd) for the notification tests, reached by the test process (settings)
and by subprocesses such as the Celery worker (environment)."""

import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.fixtures import free_port

# A recipient whose local part starts with one of these is refused by the server.
TEMPFAIL_PREFIX = "tempfail"  # 451: try again later (transient)
REJECT_PREFIX = "reject"  # 550: no such mailbox (permanent)


@dataclass
class ReceivedMail:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()


@dataclass
class _Handler:
    received: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith(TEMPFAIL_PREFIX):
            return "451 4.3.0 Mailbox temporarily unavailable"
        if local.startswith(REJECT_PREFIX):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _Handler

    @property
    def received(self) -> list[ReceivedMail]:
        with self.handler.lock:
            return list(self.handler.received)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()

    def to(self, address: str) -> list[ReceivedMail]:
        return [mail for mail in self.received if address in mail.envelope_to]


@pytest.fixture(scope="session")
def smtp_server():
    handler = _Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(host="127.0.0.1", port=controller.port, handler=handler)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def subprocess_env(subprocess_env, smtp_server):
    """Workers started by these tests send mail to the same SMTP server and give up after 3 attempts."""
    return {
        **subprocess_env,
        "EMAIL_HOST": smtp_server.host,
        "EMAIL_PORT": str(smtp_server.port),
        "NEXA_NOTIFICATION_MAX_ATTEMPTS": "3",
    }


def smtp_mailers(host: str, port: int) -> dict:
    """``settings.MAILERS`` sending over SMTP to ``host:port`` (the test runner sets every mailer to locmem)."""
    return {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": host, "port": port, "timeout": 5},
        }
    }


@pytest.fixture
def mailbox(settings, smtp_server) -> SmtpServer:
    """Email in the test process goes over SMTP to the real server; its inbox starts empty."""
    settings.MAILERS = smtp_mailers(smtp_server.host, smtp_server.port)
    settings.DEFAULT_FROM_EMAIL = "Nexa <no-reply@nexa.test>"
    settings.NEXA_NOTIFICATION_MAX_ATTEMPTS = 3
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()
