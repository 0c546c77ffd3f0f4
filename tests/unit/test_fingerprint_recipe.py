"""An account's fingerprint keeps its recipe when its fields are encoded only once."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from syncd.model import Contact, DesiredAccount, canonical_json, fingerprint


def test_fingerprint_from_encoded_fields_equals_the_original_recipe() -> None:
    """Bindings written before keep matching: same digest with or without ``encoded``."""
    desired = DesiredAccount(
        "7", "zażółć@x.pl", "K7", 'Firma "Ąę" \\ Sp. z o.o.', "zażółć@x.pl",
        discount=Decimal("5.5"), erp_blocked=True,
        contacts=(Contact("Jan Żak", "j@x.pl", None, "szef\\n", True),),
    )  # fmt: skip
    fields = desired.fields()
    for blocked in (True, False):
        original = json.dumps(
            {"fields": fields, "erp_blocked": blocked},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        expected = hashlib.sha256(original.encode("utf-8")).hexdigest()
        encoded = canonical_json(fields)
        assert fingerprint(fields, erp_blocked=blocked, encoded=encoded) == expected
        assert fingerprint(fields, erp_blocked=blocked) == expected
