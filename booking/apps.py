from django.apps import AppConfig

# multipart framing around the file (boundaries, part headers) on top of the file's own limit
UPLOAD_FRAMING_BYTES = 64 * 1024


class BookingConfig(AppConfig):
    name = "booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Importing the events module declares the app's events (nexa/platform/events.py).
        from booking.contracts import events  # noqa: F401
        from booking.contracts.extraction import MAX_UPLOAD_BYTES
        from nexa.platform.problems import route_body_limit_register

        # POST /v1/contracts/analyze-pdf takes a file of up to 10 MiB; every other route keeps NEXA_MAX_BODY_BYTES.
        route_body_limit_register("/v1/contracts/analyze-pdf", MAX_UPLOAD_BYTES + UPLOAD_FRAMING_BYTES)

        # The hotel search checks offers against policies.selectors.policy_resolve and offers the airline's
        # contract allotments first (booking/contract_search.py).
        from booking import policy_hook
        from booking.contract_search import contract_offers_for_search
        from booking.hotel_search import register_contract_offers_source

        policy_hook.register()
        register_contract_offers_source(contract_offers_for_search)
