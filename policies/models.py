"""Tables owned by the policies domain."""
