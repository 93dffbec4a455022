"""Tables owned by the agent domain."""
