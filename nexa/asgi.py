"""ASGI entry point: HTTP through Django; the Socket.IO presence channel at /ws/cases (operators app)."""

import os

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexa.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up (the consumer uses the ORM and the apps' services).
from operators.socketio.consumer import SocketIOConsumer  # noqa: E402

websocket_urlpatterns: list = [
    # socket.io-client asks for "/ws/cases/" (trailing slash); other clients may omit it.
    re_path(r"^ws/cases/?$", SocketIOConsumer.as_asgi(), name="socketio"),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
