"""A portal whose accounts live in SQL tables (``portal.kind: sql``, spec section 5)."""
