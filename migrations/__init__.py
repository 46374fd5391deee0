"""Alembic migrations for the catalog (run on SQLite and PostgreSQL)."""
