"""Line items (an order with several products) as every builtin generator sees them: the child table and its
columns, the `items` argument's JSON Schema, the rules a line or its record must keep, and the world rules
(line amount = unit price x quantity, record amount = sum of its active lines) the data and the integrity
check share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skiller.contract.invariants import AmountRule, LineTotal
from skiller.world.builtin.toolmodel import find, id_column, label, snake, words
from skiller.world.catalog.model import (
    LINE_STATUSES,
    CatalogDomain,
    CatalogEntity,
    CatalogLines,
    CatalogRecord,
    CatalogRule,
    CatalogTool,
)

__all__ = ["ITEMS", "LINE_KINDS", "Lines", "items_schema", "line_checks", "line_invariants", "line_records",
           "lines_of", "lines_schema_sql", "lines_spec"]

LINE_KINDS = frozenset({"create_items", "cancel_item"})
ITEMS = "items"  # the create_items list argument, and the key a record's lines come back under
QUANTITY, UNIT_PRICE, LINE_AMOUNT, LINE_STATUS = "quantity", "unit_price", "line_amount", "line_status"
ACTIVE, CANCELLED = LINE_STATUSES


@dataclass(frozen=True)
class Lines:
    """A record with line items, resolved: its table names, keys and the entity each line is for."""

    rec: CatalogRecord
    spec: CatalogLines
    target: CatalogEntity

    @property
    def table(self) -> str:
        return snake(self.spec.name)

    @property
    def key(self) -> str:
        return id_column(self.spec.name)

    @property
    def parent_table(self) -> str:
        return snake(self.rec.name)

    @property
    def parent_key(self) -> str:
        return id_column(self.rec.name)

    @property
    def target_table(self) -> str:
        return snake(self.target.name)

    @property
    def target_key(self) -> str:
        return id_column(self.target.name)

    @property
    def label(self) -> str:
        return label(self.spec.name)


def lines_of(domain: CatalogDomain, name: str | None) -> Lines | None:
    """The line items of record `name` (None when it has none)."""
    rec = next((r for r in domain.records if r.name == name), None)
    if rec is None or rec.lines is None:
        return None
    target = find(domain, rec.lines.target)
    assert isinstance(target, CatalogEntity), f"{domain.name}: lines of {rec.name} target a record"
    return Lines(rec, rec.lines, target)


def line_records(domain: CatalogDomain) -> list[Lines]:
    return [x for x in (lines_of(domain, r.name) for r in domain.records) if x is not None]


def items_schema(lines: Lines) -> dict[str, Any]:
    """The `items` argument: an array of {<target>_id, quantity} objects, each target once."""
    what = words(lines.target.name)
    line = {
        "type": "object",
        "properties": {
            lines.target_key: {"type": "string", "description": f"{label(lines.target.name)} id, e.g. {lines.target.id_prefix}-0001"},
            QUANTITY: {"type": "integer", "minimum": 1, "description": f"How many of this {what}"},
        },
        "required": sorted([lines.target_key, QUANTITY]),
        "additionalProperties": False,
    }
    return {"type": "array", "description": f"The {what} lines to order, each {what} once with its quantity "
            f"(1 to {lines.spec.max_lines} lines)", "minItems": 1, "maxItems": lines.spec.max_lines, "items": line}


def line_parameters(domain: CatalogDomain, tool: CatalogTool) -> tuple[dict[str, Any], list[str]]:
    """(properties, required) of a create_items / cancel_item tool besides the create's own fields."""
    lines = lines_of(domain, tool.entity)
    assert lines is not None, f"{domain.name}: {tool.name} names {tool.entity}, which has no lines"
    if tool.kind == "cancel_item":
        schema = {"type": "string", "description": f"{lines.label} id, e.g. {lines.spec.id_prefix}-0001"}
        return {lines.key: schema}, [lines.key]
    parent = find(domain, lines.rec.target)
    props = {"person_id": {"type": "string", "description": f"The {words(domain.role)}'s person id, e.g. P-0001"},
             id_column(parent.name): {"type": "string", "description": f"{label(parent.name)} id, e.g. {parent.id_prefix}-0001"},
             ITEMS: items_schema(lines)}
    return props, ["person_id", id_column(parent.name), ITEMS]


@dataclass(frozen=True)
class LineCheck:
    """One rule a line-items tool keeps: `flag` (each line's target has `field` == `value`), `quantity` (each
    line's quantity within [lo, hi]) or `status` (the record's status in `values`, for cancel_item)."""

    rule: CatalogRule
    kind: str
    field: str | None = None
    values: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None


def line_checks(domain: CatalogDomain, tool: CatalogTool) -> list[LineCheck]:
    """The rules of a line-items tool in catalog order (the catalog check admits only these kinds)."""
    out: list[LineCheck] = []
    for r in domain.rules:
        if r.tool != tool.name:
            continue
        if r.kind == "target_flag":
            out.append(LineCheck(r, "flag", r.field, (r.equals,)))
        elif r.kind == "value_range":
            out.append(LineCheck(r, "quantity", QUANTITY, lo=r.min, hi=r.max))
        elif r.kind == "requires_status":
            lines = lines_of(domain, tool.entity)
            assert lines is not None
            out.append(LineCheck(r, "status", lines.rec.status_field, tuple(r.statuses)))
    return out


def guard_statuses(domain: CatalogDomain, tool: CatalogTool) -> list[str]:
    """The record statuses cancel_item allows that no status rule already narrows (empty: implied)."""
    ruled = [c for c in line_checks(domain, tool) if c.kind == "status"]
    if any(set(c.values) <= set(tool.from_statuses) for c in ruled):
        return []
    return list(tool.from_statuses)


def lines_schema_sql(domain: CatalogDomain) -> list[str]:
    """CREATE TABLE of every line table (after the records: it references its record and its target)."""
    out = []
    for x in line_records(domain):
        cols = [f"    {x.key} TEXT PRIMARY KEY NOT NULL",
                f"    {x.parent_key} TEXT NOT NULL REFERENCES {x.parent_table}({x.parent_key})",
                f"    {x.target_key} TEXT NOT NULL REFERENCES {x.target_table}({x.target_key})",
                f"    {QUANTITY} INTEGER", f"    {UNIT_PRICE} REAL", f"    {LINE_AMOUNT} REAL", f"    {LINE_STATUS} TEXT"]
        out.append(f"CREATE TABLE {x.table} (\n" + ",\n".join(cols) + "\n)")
    return out


def line_invariants(domain: CatalogDomain) -> tuple[list[AmountRule], list[LineTotal]]:
    """Each line's amount = its target's price x quantity; each record's amount = the sum of its active lines."""
    amounts, totals = [], []
    for x in line_records(domain):
        amounts.append(AmountRule(table=x.table, amount_column=LINE_AMOUNT, target_table=x.target_table,
                                  target_key=x.target_key, price_column=x.spec.price, quantity_column=QUANTITY))
        totals.append(LineTotal(table=x.parent_table, key=x.parent_key, amount_column=x.spec.amount,
                                lines_table=x.table, line_amount_column=LINE_AMOUNT, status_column=LINE_STATUS,
                                active=ACTIVE))
    return amounts, totals


def lines_spec(domain: CatalogDomain) -> list[dict[str, Any]]:
    """What the database script needs to write each record's lines (gen_db.py's SPEC["lines"])."""
    out = []
    for x in line_records(domain):
        cancel = next((t for t in domain.tools if t.kind == "cancel_item" and t.entity == x.rec.name), None)
        create = next((t for t in domain.tools if t.kind == "create_items" and t.entity == x.rec.name), None)
        checks = line_checks(domain, create) if create else []
        ruled = [c for c in (line_checks(domain, cancel) if cancel else []) if c.kind == "status"]
        open_ = [s for s in (cancel.from_statuses if cancel else []) if all(s in c.values for c in ruled)]
        qty = next((c for c in checks if c.kind == "quantity"), None)
        out.append({"table": x.table, "key": x.key, "prefix": x.spec.id_prefix, "parent": x.parent_table,
                    "parent_key": x.parent_key, "status_field": x.rec.status_field, "amount": x.spec.amount,
                    "target": x.target_table, "target_key": x.target_key, "price": x.spec.price,
                    "max_lines": x.spec.max_lines, "max_quantity": int(qty.hi) if qty and qty.hi else 3,
                    "flags": {c.field: c.values[0] for c in checks if c.kind == "flag"},
                    "open": open_})  # statuses in which a line may be cancelled: the data has such orders
    return out
