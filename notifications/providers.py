"""SMS and WhatsApp provider adapters (ARCHITECTURE §7; docs/providers.md).

``sms_client().send(idempotency_key=…, to=…, body=…)`` and ``whatsapp_client().send(idempotency_key=…,
to=…, template=…, language=…, parameters=[…])`` → ``{messageId, status}``. WhatsApp sends only approved
templates (the provider refuses others: permanent ``template_not_approved``); the passenger's opt-in
is the caller's check. Calls go through the ``sms`` / ``whatsapp`` circuit breakers.
"""

from __future__ import annotations

from django.conf import settings

from nexa.platform.providers import ProviderHttpClient


class SmsClient:
    def __init__(self, base_url: str | None = None):
        self.http = ProviderHttpClient(provider="sms", breaker="sms", base_url=base_url or settings.NEXA_SMS_URL)

    def send(self, *, idempotency_key: str, to: str, body: str) -> dict:
        answer = self.http.request(
            "POST", "/sms", operation="send_sms", idempotency_key=idempotency_key, json={"to": to, "body": body}
        )
        return {"messageId": answer["messageId"], "status": answer.get("status", "queued")}


class WhatsAppClient:
    def __init__(self, base_url: str | None = None):
        self.http = ProviderHttpClient(
            provider="whatsapp", breaker="whatsapp", base_url=base_url or settings.NEXA_WHATSAPP_URL
        )

    def send(self, *, idempotency_key: str, to: str, template: str, language: str, parameters: list[str]) -> dict:
        body = {
            "messaging_product": "whatsapp",
            "to": to,
            "type": "template",
            "template": {
                "name": template,
                "language": {"code": language},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": str(value)} for value in parameters]}
                ],
            },
        }
        answer = self.http.request(
            "POST", "/whatsapp/messages", operation="send_whatsapp", idempotency_key=idempotency_key, json=body
        )
        message = (answer.get("messages") or [{}])[0]
        return {"messageId": message["id"], "status": message.get("message_status", "accepted")}


def sms_client() -> SmsClient:
    return SmsClient()


def whatsapp_client() -> WhatsAppClient:
    return WhatsAppClient()
