"""The builtin catalog's schema: curated service domains centred on the shared Person."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skiller.contract.policy import PolicyRule

AttrType = Literal["str", "int", "float", "bool", "date"]

# Value generators understood by skiller.catalog.values (all seeded, no Faker drift):
#   {"choice": [..]}            one of the values
#   {"int": [lo, hi]}           integer in range
#   {"money": [lo, hi]}         float with 2 decimals
#   {"bool": p}                 True with probability p
#   {"date": [lo, hi]}          ISO date, offset in days from the simulation clock
#   {"code": "AB-####"}         '#' digit, '@' upper letter
#   {"pick": "person_name" | "first_name" | "last_name" | "company" | "city" | "street"
#            | "word" | "email" | "phone"}
#   {"compose": [[..], [..]]}   one word from each list, joined by spaces: a name pool as large as
#                               the product of the lists ("Gold" + "Travel Debit"), for catalogue names
#   {"ref": "Domain.Record"}    an id of another domain's record rows (PREFIX-0001 … PREFIX-count);
#                               a cross-domain link that a create tool takes as a field, so a fused
#                               task can pass a value produced in one domain into another
# The catalog's sanity checks (skiller.catalog.check) validate every spec.
Gen = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogAttribute(_Strict):
    name: str
    type: AttrType
    description: str
    gen: Gen


class CatalogPair(_Strict):
    """Two attributes of a row that go together (a medication's name and its dosage forms): `then` takes one of
    `allowed[key]`, the key being the longest one the row's `field` value is or holds as whole words (a composed
    name "Season Vinyl Record" holds "Vinyl Record"), else "*". Generated rows obey it."""

    field: str  # a choice or compose attribute
    then: str  # a choice or int attribute of the same row
    allowed: dict[str, list[Any]]


class CatalogEntity(_Strict):
    """A peripheral entity of a service (e.g. Doctor). Its id column is `<snake>_id`."""

    name: str  # PascalCase
    description: str
    id_prefix: str  # e.g. "DOC"
    count: int | None = None  # rows; default from config
    attributes: list[CatalogAttribute]
    pairs: list[CatalogPair] = Field(default_factory=list)  # dependent vocabularies: drawn as they go together


class CatalogPricing(_Strict):
    """How a record's amount follows its target's price: `amount` = target's `price` x the record's
    `quantity` (1 without) + target's `fixed` (a standing charge). Generated rows obey it."""

    amount: str  # a numeric attribute of the record
    price: str  # a numeric attribute of the target
    quantity: str | None = None  # an int attribute of the record: nights, seats, packs...
    fixed: str | None = None  # a numeric attribute of the target added once


class CatalogMatch(_Strict):
    """The category a record's target must have: `allowed[value of field]` lists the target's
    `target_field` values; without `field`, `allowed["*"]` holds for every row."""

    target_field: str
    field: str | None = None
    allowed: dict[str, list[Any]]


class CatalogHolding(_Strict):
    """A record that holds its target alone while in one of `statuses` (a storage unit rented, a flat leased): no
    two such records share a target, and the target's bool `flag` (available) is false while one holds it."""

    flag: str
    statuses: list[str]


class CatalogLines(_Strict):
    """A record's line items (an order's products): a child table `<name>` with `<name>_id`, the record's id,
    `<target>_id`, `quantity`, `unit_price` (the target's `price` when ordered), `line_amount` (unit_price x
    quantity, rounded to cents) and `line_status` (`active` or `cancelled`). The record's `amount` is the sum
    of its active lines. Tools: create_items (the record and 1..max_lines lines in one call), cancel_item."""

    name: str  # PascalCase, e.g. OrderLine
    id_prefix: str
    target: str  # a CatalogEntity: what a line is for (Medication)
    price: str  # a numeric attribute of the target: the unit price
    amount: str  # a float attribute of the record: the sum of its active lines
    max_lines: int = 4


LINE_STATUSES = ("active", "cancelled")


class CatalogRecord(_Strict):
    """A relationship between the person and a peripheral entity, with a lifecycle
    (e.g. Appointment: person -> Doctor). Has `<snake>_id`, `person_id`, `<target>_id`."""

    name: str
    description: str
    id_prefix: str
    # a CatalogEntity name, or an earlier CatalogRecord of the domain: a record naming another record
    # (a refund naming a payment) belongs to that record's person, and its create tool checks so
    target: str
    count: int | None = None  # rows; default from config (refs to this record use it too)
    status_field: str = "status"
    statuses: list[str]
    attributes: list[CatalogAttribute]  # the status field is one of them
    # Coherent data (all optional). A status is timed against `status_date` (default: the first
    # date attribute): "past" statuses need that date <= today, "future" ones >= today. The
    # defaults come from skiller.catalog.coherence's lexicon; `status_timing` overrides it.
    status_date: str | None = None
    status_timing: dict[str, Literal["past", "future", "any"]] = Field(default_factory=dict)
    pricing: CatalogPricing | None = None  # default: the create tool's amount copies the target's price
    matches: list[CatalogMatch] = Field(default_factory=list)
    lines: CatalogLines | None = None  # line items (several products in one order)
    holds: CatalogHolding | None = None  # the target held alone (a unit rented), its availability flag kept true


ToolKind = Literal["get_profile", "get", "search", "list_records", "create", "set_status", "update", "pay",
                   "summary", "browse", "create_items", "cancel_item"]


class CatalogTool(_Strict):
    """One tool pattern; the builtin compiler turns it into a function.

    get_profile:  person profile (person row + role row) by person_id           read
    get:          one row of `entity` (entity or record) by its id              read
    search:       rows of `entity` filtered by optional `fields` (exact match)   read
    list_records: a person's rows of `entity` (a record), optional status       read
    create:       new `entity` row for person_id and target id; `fields` given  write
                  by the caller, `defaults` fixed (status first in `statuses`)
    set_status:   move `entity` row from a status in `from_statuses` to `to`     write
    update:       change `fields` of an `entity` row (allowed in `from_statuses`) write
    pay:          set `fields[0]` (payment status) to `to` for an `entity` row    write
                  whose amount is `amount_field`; takes a payment_method
    summary:      a person's rows of `entity` (a record), optional status: their   read
                  count, the total of `amount_field` and the count per status
    browse:       rows of `entity` filtered by optional exact `fields` and an      read
                  optional ceiling `max_<amount_field>`, cheapest first (then id)
    create_items: new `entity` row (a record with `lines`) and 1..n lines from    write
                  `items: [{<line target>_id, quantity}]`, priced per line; all or nothing
    cancel_item:  one line of an `entity` row -> cancelled, the row's amount      write
                  recomputed; the row must be in `from_statuses`
    """

    name: str  # snake_case, legal function name
    kind: ToolKind
    description: str
    entity: str | None = None  # None for get_profile
    fields: list[str] = Field(default_factory=list)
    from_statuses: list[str] = Field(default_factory=list)
    to: str | None = None
    amount_field: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)


class CatalogRule(PolicyRule):
    """A policy rule as the catalog states it: exactly the machine-checkable form of s07 (see there)."""


class CatalogBalance(_Strict):
    """A per-person allowance a record's create uses up and a move to a `released` status gives back (a claim
    withdrawn, a visit cancelled). The profile attribute `attribute` holds what is left, `limit` what the period
    allows: left = limit - what the person's records outside `released` hold, never below zero. `amount` is the
    record's numeric attribute each create consumes (an argument of the create); without it a record uses 1 (a
    session). A `balance_covers` rule on each create refuses a request the balance does not cover."""

    attribute: str
    limit: str
    record: str
    amount: str | None = None
    released: list[str]


class CatalogBridge(_Strict):
    """A rule on a cross-domain reference (`ref`, an argument of `tool` naming another domain's record),
    checked by a fused environment that holds both domains (never by the domain alone).

    source_status: the referenced row's `source_field` (default its status) is in `statuses`
    source_window: the referenced row's date `source_field` is within clock + [`min`, `max`] days
    not_above:     argument `field` is at most the referenced row's `source_field` (e.g. claim <= billed)
    date_after:    date argument `field` minus the referenced row's date `source_field` is within [`min`, `max`] days
    """

    id: str
    tool: str
    ref: str
    kind: Literal["source_status", "source_window", "not_above", "date_after"]
    statement: str
    statuses: list[str] = Field(default_factory=list)
    source_field: str = "status"
    field: str | None = None
    min: float | None = None
    max: float | None = None


class CatalogDomain(_Strict):
    name: str  # PascalCase, no underscore (the reference's convention)
    sector: str
    description: str
    role: str  # the person-type core entity, e.g. Patient
    role_attributes: list[CatalogAttribute]
    entities: list[CatalogEntity]  # at most 3 peripheral entities incl. records' targets
    records: list[CatalogRecord]
    tools: list[CatalogTool]
    rules: list[CatalogRule]
    # reasons people contact this service; the first verb phrase among them is why a fused task hands a record
    # over to this service's bridge tool ('needs a smart meter installed' for a field visit): it must fit that tool
    personas_hint: list[str] = Field(default_factory=list)
    bridges: list[CatalogBridge] = Field(default_factory=list)  # rules on references into other domains
    balances: list[CatalogBalance] = Field(default_factory=list)  # allowances the writes use up and give back

    @model_validator(mode="after")
    def _consistent(self) -> "CatalogDomain":
        names = {e.name for e in self.entities} | {r.name for r in self.records}
        for i, r in enumerate(self.records):
            if r.target not in {e.name for e in self.entities} | {x.name for x in self.records[:i]}:
                raise ValueError(f"{self.name}: record {r.name} targets unknown entity or earlier record {r.target}")
        tools = {t.name for t in self.tools}
        for t in self.tools:
            if t.kind != "get_profile" and t.entity not in names:
                raise ValueError(f"{self.name}: tool {t.name} names unknown entity {t.entity}")
        for rule in self.rules:
            if rule.tool not in tools:
                raise ValueError(f"{self.name}: rule {rule.id} names unknown tool {rule.tool}")
        for bridge in self.bridges:
            tool = next((t for t in self.tools if t.name == bridge.tool), None)
            if tool is None or tool.kind != "create" or bridge.ref not in tool.fields:
                raise ValueError(f"{self.name}: bridge {bridge.id} needs a create tool taking {bridge.ref}")
        return self
