"""Renderers for routes that answer a body they build themselves (CSV export, HTML voucher): DRF's content
negotiation must accept their media type, and the view's body passes through untouched."""

from rest_framework.renderers import BaseRenderer


def passthrough_renderer(media_type: str, format_name: str) -> type[BaseRenderer]:
    """A renderer class that lets ``Accept: <media_type>`` through and returns the view's body as is."""

    class PassthroughRenderer(BaseRenderer):
        charset = "utf-8"

        def render(self, data, accepted_media_type=None, renderer_context=None):
            return data

    PassthroughRenderer.media_type = media_type
    PassthroughRenderer.format = format_name
    PassthroughRenderer.__name__ = PassthroughRenderer.__qualname__ = f"{format_name.upper()}Renderer"
    return PassthroughRenderer
