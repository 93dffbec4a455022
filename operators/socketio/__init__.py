"""The Socket.IO presence channel at ``/ws/cases`` (ARCHITECTURE §4, docs/presence-channel.md).

A Django Channels consumer that speaks Engine.IO v4 + Socket.IO v5 on the WebSocket transport, with
python-engineio / python-socketio's packet codecs (their server classes are not used):

* :mod:`.protocol` — frames in and out (the codecs, nothing hand-parsed);
* :mod:`.rooms` — Socket.IO rooms (``case:<urn>``, ``airline:<IATA>``) ↔ channel-layer group names;
* :mod:`.replay` — connection-state recovery: a pid's rooms kept in Redis, missed events from the outbox;
* :mod:`.consumer` — the consumer and the per-process heartbeat (session touch, revocation check).

Events reach sockets through :mod:`operators.realtime`, the outbox sink that fans committed events out
to the channel layer.
"""
