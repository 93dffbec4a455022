"""The SMS + WhatsApp simulator.

    POST /sms                {to, body, from?}             → 201 {messageId, status: "queued", to, segments}
    POST /whatsapp/messages  Meta Cloud API template shape  → 200 {messaging_product, contacts, messages: [{id}]}
        {messaging_product: "whatsapp", to, type: "template",
         template: {name, language: {code}, components: [{type: "body", parameters: [{type: "text", text}]}]}}

Recipients must be E.164 (``+`` and 7 to 15 digits), else 422 ``invalid_recipient``. WhatsApp templates
must be in ``approvedTemplates`` (``/_control``; the default list is below, or
``NEXA_SIM_WHATSAPP_TEMPLATES``, comma-separated), else 422 ``template_not_approved``. Refusals
(``refuse``) are keyed by recipient number or ``*``.
"""

from __future__ import annotations

import os
import re

from nexa.platform.simulator import Simulator, SimulatorError, new_id, route

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
DEFAULT_TEMPLATES = (
    "disruption_notice",
    "compensation_issued",
    "hotel_voucher",
    "hotel_voucher_link",
    "transport_booked",
)


def _approved_default() -> list[str]:
    configured = os.environ.get("NEXA_SIM_WHATSAPP_TEMPLATES", "")
    names = [name.strip() for name in configured.split(",") if name.strip()]
    return names or list(DEFAULT_TEMPLATES)


class SmsSimulator(Simulator):
    name = "sms"

    def __init__(self) -> None:
        self.default_config = {"approvedTemplates": _approved_default()}
        super().__init__()

    def _recipient(self, to) -> str:
        to = str(to or "")
        if not E164.match(to):
            raise SimulatorError(422, "invalid_recipient", "the recipient must be an E.164 number")
        if code := self.refusal_for(to):
            raise SimulatorError(422, code, f"refused: {code}")
        return to

    @route("POST", r"/sms")
    def sms(self, body: dict):
        to = self._recipient(body.get("to"))
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            raise SimulatorError(400, "invalid_request", "body is required")
        message_id = new_id("SM")
        segments = max(1, -(-len(text) // 153)) if len(text) > 160 else 1
        self.record("sms", messageId=message_id, to=to, body=text, segments=segments)
        return 201, {"messageId": message_id, "status": "queued", "to": to, "segments": segments}

    @route("POST", r"/whatsapp/messages")
    def whatsapp(self, body: dict):
        if body.get("messaging_product") != "whatsapp" or body.get("type") != "template":
            raise SimulatorError(400, "invalid_request", 'messaging_product must be "whatsapp" and type "template"')
        to = self._recipient(body.get("to"))
        template = body.get("template") or {}
        name = template.get("name")
        language = (template.get("language") or {}).get("code")
        if not name or not language:
            raise SimulatorError(400, "invalid_request", "template.name and template.language.code are required")
        if name not in (self.config.get("approvedTemplates") or []):
            raise SimulatorError(422, "template_not_approved", f"template {name!r} is not approved")
        parameters = [
            parameter.get("text")
            for component in template.get("components") or []
            if component.get("type") == "body"
            for parameter in component.get("parameters") or []
        ]
        message_id = f"wamid.{new_id('WA')}"
        self.record("whatsapp", messageId=message_id, to=to, template=name, language=language, parameters=parameters)
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": message_id, "message_status": "accepted"}],
        }
