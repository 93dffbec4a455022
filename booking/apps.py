from django.apps import AppConfig

# multipart framing around the file (boundaries, part headers) on top of the file's own limit
UPLOAD_FRAMING_BYTES = 64 * 1024


class BookingConfig(AppConfig):
    name = "booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from booking.contracts.extraction import MAX_UPLOAD_BYTES
        from nexa.platform.problems import route_body_limit_register

        # POST /v1/contracts/analyze-pdf takes a file of up to 10 MiB; every other route keeps NEXA_MAX_BODY_BYTES.
        route_body_limit_register("/v1/contracts/analyze-pdf", MAX_UPLOAD_BYTES + UPLOAD_FRAMING_BYTES)
