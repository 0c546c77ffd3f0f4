"""``portal.kind: scim``: the keys a SCIM 2.0 portal (RFC 7643/7644) takes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator

from connectors._http_config import HttpPortalSection
from syncd.config.base import Text

DEFAULT_EXTENSION = "urn:ietf:params:scim:schemas:extension:syncd:2.0:B2BAccount"


def _urn(value: str) -> str:
    if not value.lower().startswith("urn:"):
        raise ValueError(f"must be a schema URN like {DEFAULT_EXTENSION}")
    return value


def _attribute_name(value: str) -> str:
    if not value.replace("_", "").replace("-", "").isalnum() or not value[0].isalpha():
        raise ValueError("must be a plain SCIM attribute name like blockReason")
    return value


def _page_size(value: int) -> int:
    if not 1 <= value <= 1000:
        raise ValueError("must be a whole number from 1 to 1000 (users per listing request)")
    return value


class ScimPortalConfig(HttpPortalSection):
    """A SCIM 2.0 service provider: its ``/Users`` hold the accounts.

    The core User attributes carry the login, name, e-mail, phone and status; the rest of
    the synced fields live in the ``extension`` schema, when the server knows it.
    ``block_reason_attribute`` names the extension's attribute that holds the reason the
    portal shows a blocked user.
    """

    kind: Literal["scim"] = "scim"
    extension: Annotated[Text, AfterValidator(_urn)] = DEFAULT_EXTENSION
    block_reason_attribute: Annotated[Text, AfterValidator(_attribute_name)] = "blockReason"
    page_size: Annotated[int, AfterValidator(_page_size)] = 100
