"""A JSON REST portal described in YAML (``portal.kind: rest``)."""
