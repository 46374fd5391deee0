"""Shared core of footage: settings, the catalog schema and the database session."""
