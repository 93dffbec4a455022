"""Tables owned by the booking domain."""
