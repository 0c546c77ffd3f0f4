"""How ``StateStore`` reads bindings: the cycle's index, all or some of them, one, counts.

A mixin of ``StateStore`` (which gives it ``begin``), so that the class keeps one public
face while its read side of ``syncd_binding`` lives here, beside the batch's statements
(``_batch``) and the mail's (``_mail``). Every read is one query, or one per
``KEYS_PER_QUERY`` keys or logins, whatever the number of bindings. Private to
``syncd.store``, which re-exports the constants and ``index_entry``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from syncd.store._rows import Binding, binding_from_row
from syncd.store.schema import binding

# Rows fetched per round trip when streaming all bindings.
STREAM_CHUNK = 1000
# Keys (or logins) per ``IN (...)`` list: well under every backend's parameter limit.
KEYS_PER_QUERY = 1000
# ``binding_entries`` values that never equal a digest (see there).
INACTIVE = ""
UNDIGESTED = "?"


def index_entry(item: Binding) -> str:
    """What ``StateStore.binding_entries`` gives for ``item``."""
    return INACTIVE if item.status == "inactive" else (item.source_fingerprint or UNDIGESTED)


def _in_chunks(column: sa.Column[Any], values: Collection[str]) -> list[sa.ColumnElement[bool]]:
    ordered = sorted(set(values))
    return [
        column.in_(ordered[i : i + KEYS_PER_QUERY]) for i in range(0, len(ordered), KEYS_PER_QUERY)
    ]


class BindingReads:
    """``StateStore``'s reads of ``syncd_binding``: for the cycle, the mailer and ``status``."""

    if TYPE_CHECKING:

        def begin(self, *, write: bool = True) -> AbstractContextManager[sa.Connection]:
            """``StateStore.begin``: one transaction, driver errors translated."""

    def binding_entries(self) -> Iterator[tuple[str, str]]:
        """(contractor key, the raw-row digest its binding was applied from) for every
        binding, streamed from one query: all a quiet cycle needs of the bindings
        (``syncd._binding_index``, which keeps them compact and may read them twice).

        An inactive binding (deactivated account) reads ``INACTIVE``, one applied before
        raw digests existed ``UNDIGESTED``: neither equals a real digest, so their
        contractors are mapped again when the ERP has them.
        """
        entry = sa.case(
            (binding.c.status == "inactive", sa.literal(INACTIVE)),
            else_=sa.func.coalesce(binding.c.source_fingerprint, sa.literal(UNDIGESTED)),
        )
        query = sa.select(binding.c.contractor_key, entry)
        with self.begin(write=False) as connection:
            result = connection.execution_options(yield_per=STREAM_CHUNK).execute(query)
            yield from result  # a Row unpacks like the (key, entry) tuple it is typed as

    def load_bindings(self, keys: Collection[str] | None = None) -> dict[str, Binding]:
        """Every binding by contractor key (only those of ``keys``, when given), read with
        one query streamed in chunks (``keys``: one query per ``KEYS_PER_QUERY`` keys)."""
        if keys is None:
            return self._bindings_where([None])
        return self._bindings_where(_in_chunks(binding.c.contractor_key, keys))

    def bindings_with_logins(self, logins: Collection[str]) -> dict[str, Binding]:
        """The bindings holding any of ``logins``, by contractor key (one query per
        ``KEYS_PER_QUERY`` logins): who owns a login, without reading every binding."""
        return self._bindings_where(_in_chunks(binding.c.login, logins))

    def _bindings_where(
        self, conditions: Sequence[sa.ColumnElement[bool] | None]
    ) -> dict[str, Binding]:
        found: dict[str, Binding] = {}
        with self.begin(write=False) as connection:
            for condition in conditions:
                query = sa.select(binding)
                if condition is not None:
                    query = query.where(condition)
                result = connection.execution_options(yield_per=STREAM_CHUNK).execute(query)
                found.update((row.contractor_key, binding_from_row(row._mapping)) for row in result)
        return found

    def bindings_for(self, keys: Collection[str]) -> dict[str, Binding]:
        """The bindings of ``keys`` (those that have one), read with one query (the
        mailer's: a batch of mail names a few dozen contractors)."""
        if not keys:
            return {}
        query = sa.select(binding).where(binding.c.contractor_key.in_(sorted(keys)))
        with self.begin(write=False) as connection:
            rows = connection.execute(query).mappings()
            return {row["contractor_key"]: binding_from_row(row) for row in rows}

    def binding(self, key: str) -> Binding | None:
        """The binding of contractor ``key``, if it has one."""
        return self._one_binding(binding.c.contractor_key == key)

    def find_binding_by_login(self, login: str) -> Binding | None:
        """The binding whose login is ``login`` (already normalised), if any."""
        return self._one_binding(binding.c.login == login)

    def _one_binding(self, where: sa.ColumnElement[bool]) -> Binding | None:
        with self.begin(write=False) as connection:
            row = connection.execute(sa.select(binding).where(where)).mappings().first()
        return None if row is None else binding_from_row(row)

    def counts_by_status(self) -> dict[str, int]:
        """How many bound accounts there are in each status."""
        query = sa.select(binding.c.status, sa.func.count()).group_by(binding.c.status)
        with self.begin(write=False) as connection:
            return {status: int(count) for status, count in connection.execute(query)}
