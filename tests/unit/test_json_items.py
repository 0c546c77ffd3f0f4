"""``sync --json`` writes a plan's lists item by item, as the same text ``json.dump`` gives."""

from __future__ import annotations

import io
import json
from typing import Any

from syncd._render import Items, dump_json


def _document(items: Any) -> dict[str, Any]:
    return {
        "run_id": 7,
        "create": items,
        "adopt": Items(lambda: iter(()), 0),
        "conflict": [{"key": "2", "reason": 'zażółć "gęślą"\njaźń'}],
        "empty": {},
        "exit_code": 0,
    }


def _created(count: int) -> list[dict[str, Any]]:
    return [
        {"key": str(n), "fields": {"name": f"Firma {n}", "contacts": [{"a": None}], "x": []}}
        for n in range(count)
    ]


def test_a_streamed_document_is_the_text_json_dump_gives() -> None:
    """The same characters as ``json.dump(indent=2)`` of the whole document, empty lists,
    nested values, non-ASCII text and escaped line breaks included."""
    for count in (0, 1, 3):
        created = _created(count)
        streamed, whole = io.StringIO(), io.StringIO()
        dump_json(_document(Items(lambda created=created: iter(created), count)), streamed)
        dump_json(_document(created) | {"adopt": []}, whole)
        assert streamed.getvalue() == whole.getvalue()
        assert json.loads(streamed.getvalue())["create"] == created


def test_each_item_is_written_before_the_next_is_made() -> None:
    """The document is never held whole: when item n is made, item n-1 is already out."""
    out = io.StringIO()

    def make() -> Any:
        for n in range(5):
            if n:
                assert f'"key": "{n - 1}"' in out.getvalue()
            yield {"key": str(n)}

    dump_json(_document(Items(make, 5)), out)
    assert [item["key"] for item in json.loads(out.getvalue())["create"]] == list("01234")
