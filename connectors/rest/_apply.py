"""How the REST portal applies a batch: waves of one op per account, secrets kept out.

Ops run concurrently within a wave; a wave ends before a second op on the same account, so
an account's ops reach the portal in the order the core gave them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from connectors.base import CreateAccount, PortalOp
from syncd.errors import PortalUnavailable, RecordError


def waves(ops: Sequence[PortalOp]) -> Iterator[list[int]]:
    """Indexes of ``ops`` in runs with at most one op per account, in order."""
    wave: list[int] = []
    targets: set[str] = set()
    for index, op in enumerate(ops):
        target = None if isinstance(op, CreateAccount) else op.account_id
        if target is not None and target in targets:
            yield wave
            wave, targets = [], set()
        wave.append(index)
        if target is not None:
            targets.add(target)
    if wave:
        yield wave


@contextmanager
def hiding(secret: str) -> Iterator[None]:
    """Re-raise a record or availability error with ``secret`` cut out of its text."""
    try:
        yield
    except (RecordError, PortalUnavailable) as error:
        text = str(error)
        if not secret or secret not in text:
            raise
        clean = text.replace(secret, "***")
        if isinstance(error, RecordError):
            raise RecordError(error.key, clean) from None
        raise PortalUnavailable(clean) from None
