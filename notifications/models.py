"""Tables owned by the notifications domain."""
