"""Tables owned by the review domain."""
