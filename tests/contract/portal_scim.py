"""The SCIM portal's factory for the portal contract: a real scim2-server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Portal
from connectors.scim.config import ScimPortalConfig
from connectors.scim.portal import ScimPortal
from tests.scim_server import start


def make_scim_portal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Portal, dict[str, Any], Callable[[str, str], bool]]:
    """A ready SCIM portal on its own scim2-server (syncd's extension loaded), the YAML
    ``portal`` section that reaches it, and a password check the server does itself; the
    server stops when the test ends."""
    server = start(tmp_path / "scim")
    request.addfinalizer(server.stop)
    section = server.section()
    portal = ScimPortal.from_config(ScimPortalConfig.model_validate(section))
    request.addfinalizer(portal.close)
    portal.ensure_ready()
    return portal, section, server.verify_password
