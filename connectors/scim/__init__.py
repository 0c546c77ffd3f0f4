"""A portal that speaks SCIM 2.0 (``portal.kind: scim``, RFC 7643/7644): accounts are Users."""
