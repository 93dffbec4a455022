"""Tables owned by the cases domain."""
