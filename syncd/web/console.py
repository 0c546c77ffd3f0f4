"""What the console's pages show and do, on one set of open connections.

Every read and every action goes through the modules the command line uses: the
dashboard is ``syncd.status.collect``, the directory ``Support.find_everywhere``, the card
``syncd.explain.collect``, the actions ``syncd.accounts.Support`` (with the person's name
as the ``actor``) and ``syncd.cycle.run_cycle``. Nothing here re-implements them; this
module only decides who may see what and turns outcomes into notices.

The connections are used by one request at a time (``Console.use``): the console is for a
handful of people, and connectors need not be thread-safe. A request that waits longer
than ``busy_wait`` for them gets "busy, try again" rather than hanging.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from syncd import explain, lookup, status
from syncd.accounts import Support
from syncd.config import Config
from syncd.cycle import CycleRequest, run_cycle
from syncd.errors import RecordError, UnavailableError, UnknownContractor
from syncd.mail.mailer import mail_after_sync
from syncd.store import Binding
from syncd.support_cli import MAIL_STATUSES
from syncd.web.chart import cycle_chart
from syncd.web.notices import Notice, cycle_notice, mail_notice
from syncd.web.people import Person
from syncd.wiring import Services

ACTION_WAIT = timedelta(seconds=30)  # for the cycle lease; a person will not wait longer


class NotFound(Exception):
    """No such contractor, or not one this person may see: both are a 404."""


class Busy(Exception):
    """Another request of this console holds the connections for longer than ``busy_wait``."""


@dataclass(slots=True)
class Console:
    """The console's state: configuration, connections and the lock that shares them."""

    config: Config
    services: Services
    busy_wait: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def use(self) -> Iterator[Services]:
        if not self._lock.acquire(timeout=self.busy_wait):
            raise Busy
        try:
            yield self.services
        finally:
            self._lock.release()

    def support(self, person: Person) -> Support:
        return Support(self.services, person.name, lock_wait=ACTION_WAIT)

    # -- pages ---------------------------------------------------------------------------

    def dashboard(self) -> dict[str, Any]:
        """``syncd status``'s document plus the chart of recent cycles."""
        store = self.services.store
        document = status.collect(store, self.config, self.services.clock())
        document["chart"] = cycle_chart(store.last_runs(30))
        return document

    def directory(self, person: Person, query: str) -> dict[str, Any]:
        """``accounts find`` for this person: the accounts they may see and, for those who
        may see them, the contractors without one, each with the kind and the reason the
        CLI shows (conflict, quarantined, retrying, not created yet, out of scope)."""
        support = self.support(person)
        if person.is_salesperson:  # no account, no known salesperson: nothing to match
            accounts = [a for a in support.find(query) if person.sees(a["owner_email"])]
            return {
                "query": query,
                "accounts": accounts,
                "without": [],
                "more_out_of_scope": 0,
                "erp_error": None,
            }
        found = support.find_everywhere(query)
        return {
            "query": query,
            "accounts": found["accounts"],
            "without": [entry for entry in found["results"] if not entry["account"]],
            "more_out_of_scope": found["more_out_of_scope"],
            "erp_error": found["erp_error"],
        }

    def card(self, person: Person, ident: str) -> dict[str, Any]:
        """Everything ``explain`` knows about one contractor; when the ERP cannot be reached,
        what the state store knows (``erp_error`` says why the rest is missing)."""
        services = self.services
        try:
            document = explain.collect(services, ident)
        except UnknownContractor:
            raise NotFound(ident) from None
        except UnavailableError as error:
            known = self._binding(ident)
            document = {"key": known.key, "erp": None, "erp_error": str(error)}
            document["history"] = self.support(person).history(known.key)["history"]
            document["mail"] = self.support(person).show(known.key)["mail"]
        binding = services.store.binding(document["key"])
        fields = binding.fields if binding else (document.get("mapping") or {}).get("fields", {})
        if not person.sees(fields.get("owner_email")):
            raise NotFound(ident)
        document["account"] = self.support(person).show(binding.key) if binding else None
        document["owner"] = {"name": fields.get("owner_name"), "email": fields.get("owner_email")}
        return document

    def mail(self, state: str | None) -> list[dict[str, Any]]:
        return self.support_reader().mail_list(state if state in MAIL_STATUSES else None, 200)

    def support_reader(self) -> Support:
        return Support(self.services, "console")

    # -- who may act on what -------------------------------------------------------------

    def owned_key(self, person: Person, ident: str) -> str:
        """The key of a contractor this person may act on; ``NotFound`` otherwise."""
        return self._binding(ident, person).key

    def visible_key(self, person: Person, ident: str) -> str:
        """The key of a contractor this person may resync (it may have no account yet)."""
        try:
            return self.owned_key(person, ident)
        except NotFound:
            if person.is_salesperson:
                raise
        services = self.services
        try:
            return lookup.resolve(ident, source=services.source, store=services.store)[0]
        except UnknownContractor:
            raise NotFound(ident) from None

    def act(self, person: Person, ident: str, action: str, form: dict[str, str]) -> Notice:
        """A support action on one contractor: the same ``Support`` call, and so the same
        audit record, as ``syncd accounts ACTION K --actor NAME``. Raises ``NotFound`` for a
        contractor this person may not act on, ``SyncdError`` when it cannot be done."""
        if action == "resync":
            return self.resync(person, self.visible_key(person, ident))
        key = self.owned_key(person, ident)
        support = self.support(person)
        typed = form.get("password") if form.get("mode") == "typed" else None
        if action == "block":
            reason = form.get("reason", "").strip()
            if not reason:
                raise RecordError(key, "a block needs a reason: the customer sees it at sign-in")
            document = support.block(key, reason)
        elif action == "unblock":
            document = support.unblock(key)
        elif action == "reset-password":
            document = support.reset_password(key, typed)
        elif action == "resend-activation":
            document = support.resend_activation(key)
        else:
            raise NotFound(action)
        return mail_notice(action, document, typed=typed is not None)

    def _binding(self, ident: str, person: Person | None = None) -> Binding:
        try:
            binding = self.support_reader().resolve(ident)
        except Exception as error:  # RecordError: no account by that id, symbol or login
            raise NotFound(ident) from error
        if person is not None and not person.sees(binding.fields.get("owner_email")):
            raise NotFound(ident)
        return binding

    # -- cycles --------------------------------------------------------------------------

    def resync(self, person: Person, key: str) -> Notice:
        """``syncd sync --contractor K`` as this person."""
        return self._cycle(person, only=frozenset({key}))

    def sync_now(self, person: Person) -> Notice:
        """``syncd sync`` as this person (admins only: the caller checks)."""
        return self._cycle(person, only=None)

    def held_removals(self) -> tuple[list[dict[str, Any]], str]:
        """What a cycle would hold back now, and a digest of it for the confirmation form."""
        result = run_cycle(
            self.services, CycleRequest(dry_run=True, trigger="web", actor="console")
        )
        if result.error:
            raise UnavailableError(result.error)
        held = [r.as_json() for r in (result.plan.held if result.plan else [])]
        return held, removals_digest(held)

    def let_removals_through(self, person: Person, digest: str) -> Notice:
        """Apply the held removals, if they are still the ones the person confirmed."""
        held, now = self.held_removals()
        if not held:
            return Notice("warning", "No removals are held back any more.")
        if now != digest:
            return Notice("warning", "The held removals changed since you looked: check again.")
        return self._cycle(person, only=None, allow_removals=True)

    def _cycle(
        self, person: Person, *, only: frozenset[str] | None, allow_removals: bool = False
    ) -> Notice:
        request = CycleRequest(
            only_keys=only,
            allow_removals=allow_removals,
            trigger="web",
            actor=person.name,
            lock_wait=ACTION_WAIT,
        )
        result = run_cycle(self.services, request)
        mail = mail_after_sync(self.services, result.exit_code)
        return cycle_notice(result, mail.document)


def removals_digest(held: list[dict[str, Any]]) -> str:
    keys = "\n".join(sorted(f"{r['key']}:{r['account_id']}" for r in held))
    return hashlib.sha256(keys.encode()).hexdigest()[:32]
