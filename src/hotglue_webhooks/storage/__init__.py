"""Storage: the event and action tables, the work queue over them, retention.

SQLAlchemy only; no Flask, no HTTP. Works the same on SQLite (the embedded default)
and PostgreSQL (production).
"""
