"""``portal.kind: sql``: syncd's own SQL schema, or (with ``table:``) an existing user table.

Without ``table`` the portal holds spec section 5's ``b2b_account`` and ``b2b_contact``,
created by syncd. With ``table`` it writes an existing table that syncd never creates or
migrates, e.g. a PHP shop's ``users``::

    portal:
      kind: sql
      url: mysql+pymysql://shop@db/shop
      password_scheme: bcrypt_2y      # PHP's password_hash() writes $2y$
      table: users
      columns: {id: id, login: username, email: email, name: company, status: status,
                password_hash: password, price_level: b2b_price, contractor_key: erp_id}
      status_values: {pending: 0, active: 1, blocked: 2, inactive: 3}
      constants: {role: customer}     # NOT NULL columns syncd has no value for

``password_cost`` is bcrypt's rounds (4 to 31, default 12) for ``bcrypt`` and
``bcrypt_2y``, and for ``argon2id`` the number of passes over 64 MiB of memory with 4 lanes
(1 to 10, default 3: RFC 9106's second recommended profile).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from syncd.config.base import NO_VALUE, DatabaseUrl, FieldProblems, PortalSection, Secret, Text

Scalar = str | int | float | bool
# The names ``columns`` may map: the key column, SYNCED_FIELDS but contacts (syncd.model;
# not imported, to keep this module cheap: a test checks that both agree), the account's
# state, and two optional timestamps syncd fills in.
MAPPABLE: tuple[str, ...] = (
    "id",
    "login",
    "contractor_key",
    "symbol",
    "name",
    "tax_id",
    "email",
    "phone",
    "address",
    "price_level",
    "discount",
    "owner_name",
    "owner_email",
    "customer_group",
    "status",
    "block_reason",
    "password_hash",
    "created_at",
    "updated_at",
)
REQUIRED: tuple[str, ...] = ("id", "login", "status")
STATUSES: tuple[str, ...] = ("pending", "active", "blocked", "inactive")
# Each scheme's password_cost: the lowest, the highest, and what it counts.
COST_RANGE = {
    "bcrypt": (4, 31, "rounds"),
    "bcrypt_2y": (4, 31, "rounds"),
    "argon2id": (1, 10, "passes"),
}
_MAPPED_ONLY = ("columns", "status_values", "constants", "schema")

Problems = list[tuple[tuple[str, ...], str, Any]]


def _known_scheme(value: str) -> str:
    if value not in COST_RANGE:
        raise ValueError(f"must be {', '.join(list(COST_RANGE)[:-1])} or {list(COST_RANGE)[-1]}")
    return value


class SqlPortalConfig(PortalSection):
    """A portal whose accounts live in SQL tables: syncd's own, or an existing ``table``."""

    kind: Literal["sql"] = "sql"
    url: DatabaseUrl
    password: Secret = None  # merged into url on connect
    password_scheme: Annotated[str, AfterValidator(_known_scheme)] = "bcrypt"  # noqa: S105 - a name
    password_cost: int | None = None  # None: 12 bcrypt rounds, or 3 argon2id passes
    table: Text | None = None
    db_schema: Text | None = Field(default=None, alias="schema")
    columns: dict[str, Text] = Field(default_factory=dict)
    status_values: dict[str, Scalar] = Field(default_factory=dict)
    constants: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mapping_is_complete(self) -> SqlPortalConfig:
        problems = self._cost_problems()
        if self.table is None:
            for key in _MAPPED_ONLY:
                given = self.db_schema if key == "schema" else getattr(self, key)
                if given:
                    text = "is only for an existing table: set portal.table too, or remove it"
                    problems.append(((key,), text, NO_VALUE))
        else:
            problems += self._column_problems() + self._status_problems()
        if problems:
            raise FieldProblems(problems)
        return self

    def _cost_problems(self) -> Problems:
        low, high, unit = COST_RANGE[self.password_scheme]
        cost = self.password_cost
        if cost is None or low <= cost <= high:
            return []
        text = f"{self.password_scheme} takes {low} to {high} {unit}"
        return [(("password_cost",), text, cost)]

    def _column_problems(self) -> Problems:
        problems: Problems = []
        choices = ", ".join(MAPPABLE)
        for name in self.columns:
            if name not in MAPPABLE:
                text = f"syncd has no field {name!r}; the fields are {choices}"
                problems.append((("columns", name), text, NO_VALUE))
        for name in REQUIRED:
            if name not in self.columns:
                text = f"is required: name the table's column for {name}"
                problems.append((("columns", name), text, NO_VALUE))
        if self.passwords == "set" and "password_hash" not in self.columns:
            text = (
                "is required while portal.passwords is set: name the table's password column, "
                "or set portal.passwords: none if the portal keeps passwords itself"
            )
            problems.append((("columns", "password_hash"), text, NO_VALUE))
        first: dict[str, str] = {}
        for name, column in self.columns.items():
            if column in first:
                text = f"column {column} is already mapped from {first[column]}: map it once"
                problems.append((("columns", name), text, column))
            first.setdefault(column, name)
        for column in self.constants:
            if column in first:
                text = f"column {column} is mapped from {first[column]}: give it no constant"
                problems.append((("constants", column), text, NO_VALUE))
        return problems

    def _status_problems(self) -> Problems:
        if not self.status_values:
            return []  # the status column holds syncd's own words
        problems: Problems = []
        for status in self.status_values:
            if status not in STATUSES:
                text = f"is not a status; the statuses are {', '.join(STATUSES)}"
                problems.append((("status_values", status), text, NO_VALUE))
        for status in STATUSES:
            if status not in self.status_values:
                text = "is required once status_values is given: the table's value for it"
                problems.append((("status_values", status), text, NO_VALUE))
        seen: dict[str, str] = {}
        for status, value in self.status_values.items():
            if str(value) in seen:
                text = (
                    f"has the same value as {seen[str(value)]}: each status needs its own, "
                    f"or syncd could not read the status back"
                )
                problems.append((("status_values", status), text, value))
            seen.setdefault(str(value), status)
        return problems
