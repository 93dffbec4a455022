"""Tables owned by the operators domain."""
