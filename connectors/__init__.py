"""The connector registry: the YAML ``kind:`` of a source or portal, mapped to its class.

An explicit mapping, not entry-point discovery: what can be configured is what is listed
here. Kinds that the configuration accepts but that are not built yet are absent, and
``syncd.wiring`` says so in plain words instead of failing with "unknown kind".
"""

from __future__ import annotations

from connectors.sql_portal import SqlPortal
from connectors.subiekt_gt import SubiektGtSource

SOURCES = {"subiekt_gt": SubiektGtSource}
PORTALS = {"sql": SqlPortal}
