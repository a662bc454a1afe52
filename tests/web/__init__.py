"""Dashboard, admin API, OpenAPI, metrics and redaction tests (a package, so that no
conftest of its own could shadow tests/conftest.py)."""
