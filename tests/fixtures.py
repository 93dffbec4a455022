"""Fixture plugins shared by the whole suite (real services, never mocks of our own stack)."""
