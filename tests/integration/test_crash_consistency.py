"""Crash consistency (issue 9): real syncd processes SIGKILLed at seeded random points.

On a GT-shaped ERP of about two thousand contractors that keeps changing between rounds
(new contractors, new terms, new e-mails, some leaving scope), ``syncd sync`` and the
daemon (``syncd run``) are killed with SIGKILL while reading, applying and mailing
(``tests.crash_support`` aims each round at one of them and records what it hit),
restarted each time, then run to completion. After that the portal must be exactly what
the ERP says, the state store's bindings and the portal's accounts must match one to one,
every account must have its creation in the audit trail, and every account must have
received exactly one activation mail, except where a kill fell in the documented duplicate
window (the SMTP server had accepted the mail, the outbox had not recorded it yet): those
may come twice, no others.

``SYNCD_SOAK_KILLS`` sets the kills per portal (default 26, so 52 in ``make test``);
``make soak`` runs 200 per portal.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import rest_server
from tests.contract.portal_rest import section as rest_section
from tests.crash_site import Erp, PortalView, RestPortalView, SqlPortalView, counting_smtp
from tests.crash_support import Harness
from tests.mail_env import smtp_section
from tests.support import write_config

KILLS = int(os.environ.get("SYNCD_SOAK_KILLS", "26"))
SEED = int(os.environ.get("SYNCD_SOAK_SEED", "20261201"))
# The REST portal takes one request per account (and the test server runs in this
# process), so it gets fewer contractors for the same time.
CONTRACTORS = {"postgres-sql": 2000, "rest": 800}
PLAN_KINDS = ("create", "adopt", "update", "remove", "block", "unblock")


@pytest.fixture(params=[pytest.param("postgres-sql", marks=pytest.mark.postgres), "rest"])
def portal_kind(request: pytest.FixtureRequest) -> str:
    """Each portal the suite runs on."""
    return str(request.param)


@pytest.fixture
def site(
    portal_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Harness, Erp, PortalView]]:
    """The ERP, the portal of ``portal_kind``, the SMTP server and a config on them."""
    view: SqlPortalView | RestPortalView
    with counting_smtp() as smtp, rest_server.running() as rest:
        # A killed syncd resets its connections; the server need not print each one.
        rest.handle_error = lambda request, address: None  # type: ignore[method-assign]
        if portal_kind == "rest":
            portal: dict[str, Any] = rest_section(rest.url)
            view = RestPortalView(rest.store)
        else:
            url = str(request.getfixturevalue("pg_url"))
            portal = {"kind": "sql", "url": url, "password_cost": 4}
            view = SqlPortalView(url)
        erp = Erp(tmp_path / "erp.db", CONTRACTORS[portal_kind])
        config = write_config(
            tmp_path,
            source={"url": erp.url},
            portal=portal,
            mail=smtp_section(smtp),
            schedule={"interval": "1s"},
        )
        assert config.path is not None
        rng = random.Random(f"{SEED}-{portal_kind}")
        harness = Harness(
            tmp_path,
            config.path,
            erp=erp,
            portal=view,
            smtp=smtp,
            state_url=f"sqlite:///{tmp_path}/state.db",
            rng=rng,
        )
        try:
            yield harness, erp, view
        finally:
            harness.close()
            view.close()
            erp.close()


def test_killed_anywhere_syncd_converges_without_loss_or_duplicates(
    site: tuple[Harness, Erp, PortalView],
) -> None:
    """After SIGKILLs while reading, applying and mailing, the portal equals the ERP, state
    and portal match one to one, no audit row is missing and no mail came twice outside
    the duplicate window."""
    harness, erp, view = site
    try:
        harness.play(KILLS)
    except Exception:
        print(_summary(harness))
        raise
    summary = _summary(harness)
    print(summary)
    phases = Counter(kill.phase.removesuffix("(late)") for kill in harness.kills)
    assert {"read", "apply", "mail"} <= set(phases), summary

    # Then to completion: a light cycle with its mail, a full reconcile (it puts right a
    # portal status left pending by a kill after the mail's commit), nothing left to do.
    assert harness.run_to_end("sync") == 0
    assert harness.run_to_end("sync", "--full") == 0
    plan = json.loads(harness.output_of("plan", "--full", "--json"))
    left = {kind: plan.get(kind) for kind in PLAN_KINDS if plan.get(kind)}
    assert left == {}, summary

    accounts = view.accounts()
    per_key = Counter(account.key for account in accounts)
    assert [key for key, count in per_key.items() if count > 1] == []
    assert {a.key: a.login for a in accounts} == erp.expected
    assert Counter(a.status for a in accounts) == Counter({"active": len(erp.expected)})

    bindings = harness.bindings()
    assert {key: b[0] for key, b in bindings.items()} == {a.key: a.id for a in accounts}
    assert {key: b[1] for key, b in bindings.items()} == erp.expected

    done = harness.audit_actions()
    no_creation = [key for key in bindings if not done.get(key, set()) & {"create", "rebind"}]
    assert no_creation == []

    _check_mail(harness, set(bindings), summary)


def _check_mail(harness: Harness, present: set[str], summary: str) -> None:
    rows = harness.outbox_rows()
    accepted = harness.accepted_ids()
    assert set(accepted) <= set(rows)
    in_window = Counter(mail_id for kill in harness.kills for mail_id in kill.window)
    extra = {mail_id: count - 1 for mail_id, count in accepted.items() if count > 1}
    outside = {mail_id: n for mail_id, n in extra.items() if n > in_window[mail_id]}
    assert outside == {}, f"duplicate mails outside the window: {outside}\n{summary}"
    assert sum(extra.values()) <= sum(1 for kill in harness.kills if kill.window)

    activations: dict[str, set[int]] = {}
    for mail_id in accepted:
        key, _, template, _ = rows[mail_id]
        if template == "activation":
            activations.setdefault(key, set()).add(mail_id)
    assert {key: ids for key, ids in activations.items() if len(ids) > 1} == {}
    assert sorted(present - set(activations)) == []
    unsettled = {i: row for i, row in rows.items() if row[3] == "pending"}
    assert unsettled == {}


def _summary(harness: Harness) -> str:
    phases = Counter(f"{k.process}:{k.phase}" for k in harness.kills)
    windows = [k.window for k in harness.kills if k.window]
    return (
        f"crash suite: {len(harness.kills)} kills in {harness.rounds} rounds "
        f"({len(harness.exits)} processes finished first); phases {dict(sorted(phases.items()))}; "
        f"kills in the duplicate window: {len(windows)} {windows}; "
        f"contractors expected {len(harness.erp.expected)}; "
        f"seconds per kill {[round(k.seconds, 1) for k in harness.kills]}"
    )
