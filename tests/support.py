"""Test helpers: a configuration on SQLite files, and a Source that serves a list.

``ListSource`` is a real implementation of the Source protocol (not a mock): it lets the
property tests drive thousands of cycles quickly, while the end-to-end tests use the real
Subiekt GT connector on GT-shaped databases.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import yaml

from connectors.base import ContractorFacts, DirectoryEntry, SourceCheck
from syncd.config import Config, load_config
from syncd.model import SourceContractor


class ListSource:
    """A Source whose ERP is a Python list, replaced between cycles by the test."""

    def __init__(self, contractors: list[SourceContractor] | None = None) -> None:
        self.contractors_list = list(contractors or [])
        self.fail = False

    def check(self) -> SourceCheck:
        return SourceCheck(in_scope=len(self.contractors_list))

    def contractors(self, keys: Collection[str] | None = None) -> Iterator[SourceContractor]:
        from syncd.errors import SourceUnavailable

        for index, contractor in enumerate(self.contractors_list):
            if self.fail and index == len(self.contractors_list) // 2:
                raise SourceUnavailable("the test ERP went away half-way through the read")
            if keys is None or contractor.key in keys:
                yield contractor

    def describe(self, key: str) -> ContractorFacts | None:
        return None

    def directory(self) -> Iterator[DirectoryEntry]:
        for c in self.contractors_list:
            yield DirectoryEntry(c.key, c.symbol, c.name, c.email_raw, c.tax_id, in_scope=True)

    def close(self) -> None:
        pass


def write_config(directory: Path, **sections: dict[str, Any]) -> Config:
    """A config on SQLite files in ``directory``; ``sections`` override keys per section."""
    data: dict[str, dict[str, Any]] = {
        "state": {"url": f"sqlite:///{directory}/state.db"},
        "source": {"kind": "subiekt_gt", "url": f"sqlite:///{directory}/erp.db", "feature": "b2b"},
        "portal": {"kind": "sql", "url": f"sqlite:///{directory}/portal.db"},
        "mail": {
            "transport": "file",
            "directory": str(directory / "outbox"),
            "sender": "B2B <b2b@example.com>",
            "portal_url": "https://b2b.example.com",
        },
        "safety": {"max_removals": "100%", "min_scope": 0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(path)
