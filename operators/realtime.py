"""Fan-out of committed outbox events to Socket.IO rooms (registered as an outbox sink at start-up)."""
