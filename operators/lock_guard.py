"""Entity locks guard every sub-case write (registered with cases.services at start-up)."""
