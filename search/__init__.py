"""Read side of footage: SQL over the catalog views (and, later, vector search)."""
