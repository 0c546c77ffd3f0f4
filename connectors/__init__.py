"""The connector registry: each YAML ``kind:`` of a source or portal, on one line.

An explicit mapping, not entry-point discovery: what can be configured is what is listed
here. Each entry names, as ``"module:attribute"`` strings, the connector class and its
configuration section; nothing is imported until a command needs it, so ``syncd --help``
loads no database driver. Adding a kind is its own package plus one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Kind:
    """Where a connector kind lives: its class and its config section, as import paths."""

    connector: str
    config: str
    fake: str | None = None  # a FakeErp of this kind, for the demo, tests and benchmark

    def load_connector(self) -> Any:
        """The connector class (imports its module, and so its driver, on first use)."""
        return _load(self.connector)

    def load_config(self) -> Any:
        """The frozen pydantic section that this kind's YAML is validated with."""
        return _load(self.config)

    def load_fake(self) -> Any:
        """The fake ERP class of a source kind (``connectors.fake.FakeErp``)."""
        if self.fake is None:
            message = f"{self.connector} has no fake ERP"
            raise LookupError(message)
        return _load(self.fake)


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


# One line a kind: connector class, config section and (sources) fake ERP, as
# "module:attribute" inside this package.
# fmt: off
SOURCES: dict[str, Kind] = {
    "subiekt_gt": Kind("subiekt_gt.source:SubiektGtSource", "subiekt_gt.config:SubiektGtConfig", "subiekt_gt.fake:GtFake"),  # noqa: E501
    "subiekt_nexo": Kind("subiekt_nexo.source:SubiektNexoSource", "subiekt_nexo.config:SubiektNexoConfig", "subiekt_nexo.fake:NexoFake"),  # noqa: E501
    "sql": Kind("sql_source.source:SqlSource", "sql_source.config:SqlSourceConfig", "sql_source.fake:PlainSqlFake"),  # noqa: E501
}
PORTALS: dict[str, Kind] = {
    "sql": Kind("sql_portal.portal:SqlPortal", "sql_portal.config:SqlPortalConfig"),
    "scim": Kind("scim.portal:ScimPortal", "scim.config:ScimPortalConfig"),
    "rest": Kind("rest.portal:RestPortal", "rest.config:RestPortalConfig"),
}
# fmt: on
