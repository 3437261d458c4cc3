"""Shared test helpers: a scripted OpenAI-compatible server, task fixtures, seeded workspaces.

Loaded as a pytest plugin (`pytest_plugins` in tests/conftest.py); import the helpers from
`tests.helpers.scripted_server` and `tests.helpers.tasks`.
"""
