"""Tables owned by the audit domain."""
