"""Shared fixtures live in tests/fixtures/; each module there is a pytest plugin."""

pytest_plugins = ["fixtures.peers", "fixtures.lab"]
