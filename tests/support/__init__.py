"""Helpers shared by the test suite: services, databases, factories."""
