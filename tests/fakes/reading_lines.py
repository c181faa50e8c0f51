"""Line items as a request states them (tests/fakes/reading_domain.py reads the rest): the policy's effects of a
create that makes a record with its lines and of a tool removing one line, and a lookup returning a record with
its lines, read back into the catalog's line-items model. Nothing is looked up by name: a fact the request does
not state makes the reader fail (Unreadable)."""
from __future__ import annotations

import re

from skiller.world.catalog.model import CatalogLines, CatalogTool
from tests.fakes.reading_domain import DomainReader, Section, _value, need

_CREATES = re.compile(r"Creates a new ([\w ]+?) for the person with the next free id \((\w+)-NNNN\) and one active "
                      r"([\w ]+?) per item \((\w+)-NNNN")
_TOTAL = re.compile(r"`(\w+)` is the sum of the active lines' `line_amount`, each the ([\w ]+?)'s `(\w+)` \(copied")
_REMOVES = re.compile(r"Sets the line's `line_status` to cancelled and recomputes the ([\w ]+?)'s amount")


def line_tables(sections: dict[str, Section]) -> set[str]:
    """The tables holding a record's lines, as the creates name them ("one active order line per item")."""
    return {found[3].replace(" ", "_") for s in sections.values() if (found := _CREATES.search(s.effects))}


def read_line_tool(reader: DomainReader, name: str, sec: Section, base: dict) -> CatalogTool | None:
    """A create of a record with its lines or a removal of one line (None: neither)."""
    if (m := _CREATES.search(sec.effects)):
        table = reader._table_named(m[1])
        target = reader.target_of(table)
        fields = [p for p in sec.params if p not in ("person_id", target.key, "items")]
        sets = need(re.search(r"^- Sets (.*?); `\w+` is the sum", sec.effects, re.M), f"what {name} sets")[1]
        defaults = {k: _value(v) for k, v in re.findall(r"`(\w+)` = (.*?)(?=, `|$)", sets)}
        return CatalogTool(kind="create_items", entity=reader.names[table.name], fields=fields, defaults=defaults, **base)
    if (m := _REMOVES.search(sec.effects)):
        table = reader._table_named(m[1])
        # the statuses a line may be removed in: the guard, else what the status rule on the tool allows
        ruled = [s for r in reader.rules if r.tool == name and r.kind == "requires_status" for s in r.statuses]
        return CatalogTool(kind="cancel_item", entity=reader.names[table.name], from_statuses=sec.allowed or ruled,
                           **base)
    return None


def lines_of_record(reader: DomainReader, record: str, tools: list[CatalogTool]) -> CatalogLines | None:
    """The lines of `record` (a table name), from what its create says and takes (None: it has none)."""
    create = next((t for t in tools if t.kind == "create_items" and t.entity == reader.names[record]), None)
    if create is None:
        return None
    effects = reader.sections[create.name].effects
    made, total = _CREATES.search(effects), need(_TOTAL.search(effects), f"how {create.name} totals its lines")
    line_table = reader._table_named(made[3])
    keys = [c.name for c in line_table.columns if c.name.endswith("_id") and c.name not in (line_table.key,)]
    target = next((reader._table_of_key(k) for k in keys if reader._table_of_key(k) in reader.entities()), None)
    target = need(target, f"what a line of {record} is for")
    listed = next(t for t in reader.tools if t["name"] == create.name)
    most = need(listed["parameters"]["properties"].get("items", {}).get("maxItems"), f"how many lines {create.name} takes")
    return CatalogLines(name=reader.names[line_table.name], id_prefix=made[4], target=reader.names[target.name],
                        price=total[3], amount=total[1], max_lines=int(most))

