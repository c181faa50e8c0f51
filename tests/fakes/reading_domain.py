"""The domain a model would understand from an s09 request alone: the tool list (names, typed parameters,
enums), the database summary (tables, columns, types, value sets, ranges, id prefixes) and the policy (what
each tool does, its allowed statuses, defaults, pricing and rule markers) are read back into the catalog's
domain model, so the builtin's code and test generators can write the answer. Nothing is looked up by name:
a fact the request does not state makes the reader fail (reading_model.Unreadable)."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from skiller.contract.policy import parse_rules
from skiller.world.builtin.codegen import snake
from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogBalance,
    CatalogDomain,
    CatalogEntity,
    CatalogHolding,
    CatalogPricing,
    CatalogRecord,
    CatalogRule,
    CatalogTool,
)


class Unreadable(AssertionError):
    """The prompt does not state a fact the answer needs."""


def need(found: Any, what: str) -> Any:
    if found is None:
        raise Unreadable(f"the prompt does not state {what}")
    return found


# ------------------------------------------------------------------ the database summary
@dataclass
class Column:
    name: str
    type: str  # TEXT | INTEGER | REAL | ANY
    values: list[Any] | None = None
    lo: str | None = None
    hi: str | None = None


@dataclass
class Table:
    name: str
    key: str
    columns: list[Column] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def prefix(self) -> str:
        key = need(self.column(self.key), f"the key of {self.name}")
        sample = key.lo or (key.values or [None])[0]
        return need(re.match(r"^([A-Z0-9]+)-\d+$", str(sample)), f"the id prefix of {self.name}")[1]


_LINE = re.compile(r"^- (\w+) \((\d+) rows, key ([\w, ]+)\): (.*?)(?:\. Sample ids: .*)?$")
_COL = re.compile(r"^(\w+) (\w+)(?: in \{(.*)\}| (.+?)\.\.(.+?))?(?: \(\d+ null\))?$")


def _typed(text: str, sql_type: str) -> Any:
    if sql_type == "TEXT":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_tables(text: str) -> dict[str, Table]:
    """`- table (N rows, key k): col TYPE in {a, b}; col TYPE lo..hi; ...` lines (steps/prompt_text.py)."""
    tables = {}
    for line in text.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        table = Table(found[1], found[3])
        for part in found[4].split("; "):
            col = need(_COL.match(part), f"column {part!r} of {found[1]}")
            values = [_typed(v, col[2]) for v in col[3].split(", ")] if col[3] is not None else None
            table.columns.append(Column(col[1], col[2], values, col[4], col[5]))
        tables[table.name] = table
    return need(tables or None, "the database tables")


# ------------------------------------------------------------------ the policy: one section per tool
@dataclass
class Section:
    effects: str
    params: list[str]  # in the order the tool takes them (its fields' order)
    allowed: list[str] | None  # the status guard, when stated


def read_sections(policy: str) -> dict[str, Section]:
    out = {}
    for name, body in re.findall(r"<!-- TOOL: (\w+) -->\n(.*?)<!-- TOOL_END: \1 -->", policy, re.S):
        effects = need(re.search(r"\*\*Effects\.\*\*\n(.*?)(?:\n\n|\n<!--|$)", body, re.S), f"the effects of {name}")[1]
        allowed = re.search(r"is not in an allowed status \(allowed: (.*?)\)\.", body)
        params = re.findall(r"^- `(\w+)` \(", body, re.M)
        out[name] = Section(effects, params, allowed[1].split(", ") if allowed else None)
    return need(out or None, "the policy's tool sections")


def pascal(table: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in table.split("_"))


def _value(text: str) -> Any:
    """A value the policy prints with str(): True/False, numbers, else the text."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except ValueError:
        return text


_FORMULA = re.compile(r"the [\w ]+'s `(\w+)`(?: x `(\w+)`)?(?: \+ the [\w ]+'s `(\w+)`)?, rounded to cents")


# ------------------------------------------------------------------ the domain
class DomainReader:
    """Rebuilds a CatalogDomain from the facts an s09 prompt states."""

    def __init__(self, name: str, tools: list[dict], modes: dict[str, str], tables: dict[str, Table],
                 sections: dict[str, Section], rules: list[CatalogRule], head: tuple[str, str], clock: str,
                 meanings: dict[tuple[str, str], str] | None = None, names: dict[str, str] | None = None,
                 links: dict[tuple[str, str], str] | None = None,
                 ranges: dict[tuple[str, str], list[Any]] | None = None) -> None:
        self.name, self.tools, self.modes, self.tables, self.sections = name, tools, modes, tables, sections
        self.rules, self.head, self.meanings, self.links = rules, head, meanings or {}, links or {}
        self.clock = dt.date.fromisoformat(clock)
        self.ranges = ranges or {}  # (table, column) -> the stated range its values are drawn from
        # PascalCase names: as the prompt spells them (column meanings, rule markers), else from the table name
        spelled = {snake(r.entity): r.entity for r in self.rules if r.entity} | (names or {})
        self.names = {t: spelled.get(t, pascal(t)) for t in tables}
        # (table, column) -> the parameter schema a tool acting on that table gives the column (filled by domain())
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self.price_columns: set[str] = set()
        from tests.fakes import reading_lines  # deferred: it reads with this module's reader
        self.lines = reading_lines
        self.line_tables = reading_lines.line_tables(sections)  # a record's lines: neither an entity nor a record

    # -- tables by role
    def _table_of_key(self, key: str) -> Table | None:
        return next((t for t in self.tables.values() if t.key == key), None)

    def role_table(self) -> Table:
        found = [t for t in self.tables.values() if t.key == "person_id" and t.name != "person"]
        return need(found[0] if len(found) == 1 else None, "the role table (keyed by person_id)")

    def records(self) -> list[Table]:
        return [t for t in self.tables.values() if t.key != "person_id" and t.column("person_id")]

    def entities(self) -> list[Table]:
        return [t for t in self.tables.values() if t.key != "person_id" and not t.column("person_id")
                and t.name not in self.line_tables]

    def target_of(self, record: Table) -> Table:
        keys = [c.name for c in record.columns if c.name not in (record.key, "person_id") and c.name.endswith("_id")]
        found = [self._table_of_key(k) for k in keys if self._table_of_key(k) in self.entities()]
        # a record naming another of the person's records (a claim on an order) targets that record
        found = found or [self._table_of_key(k) for k in keys if self._table_of_key(k) in self.records()]
        return need(found[0] if found else None, f"the target of {record.name}")

    # -- attributes and their value generators
    def _gen(self, table: Table, col: Column, kind: str) -> dict[str, Any]:
        schema = self.schemas.get((table.name, col.name))
        stated = self.ranges.get((table.name, col.name))
        if stated is not None and kind in ("int", "float", "date"):
            return {{"int": "int", "float": "money", "date": "date"}[kind]: stated}
        if schema and schema.get("enum"):
            return {"choice": list(schema["enum"])}
        if kind == "bool":
            return {"bool": 0.5}
        if col.values is not None and col.type == "TEXT" and schema is None:  # a value set no tool takes
            return {"choice": list(col.values)}
        numbers = [v for v in col.values or [] if isinstance(v, (int, float))]
        lo, hi = (min(numbers), max(numbers)) if numbers else (col.lo, col.hi)
        if kind == "date" and lo and hi:
            return {"date": [(dt.date.fromisoformat(x) - self.clock).days for x in (lo, hi)]}
        if kind in ("int", "float") and lo is not None:
            lo, hi = float(lo), float(hi)
            # a target's price is money; other amounts of a target are not (its price would be ambiguous)
            if kind == "float" and (col.name in self.price_columns or table.name not in self.targets):
                return {"money": [lo, hi]}
            return {"int": [int(lo), int(hi) + (hi > int(hi))]}
        if (table.name, col.name) in self.links:  # an id of a record another service keeps, as the prompt says
            return {"ref": self.links[(table.name, col.name)]}
        if not self.meanings and col.lo and re.match(r"^[A-Z]+-\d+$", col.lo) and not self._table_of_key(col.name):
            return {"ref": "another service's record"}  # looks like an id of a record kept elsewhere
        said = self.meanings.get((table.name, col.name), "").lower()  # e.g. "instructor's name"
        for word, pick in (("city", "city"), ("email", "email"), ("phone", "phone"), ("street", "street"), ("address", "street"),
                           ("company", "company"), ("name", "person_name")):
            if (word in col.name or (word == "name" and word in said)) and not (word == "name" and col.lo and " " not in col.lo):
                return {"pick": pick}
        return {"pick": "word"}

    def _kind(self, table: Table, col: Column) -> str:
        if col.type == "INTEGER":
            return "bool" if col.values is not None and set(col.values) <= {0, 1} else "int"
        if col.type == "REAL":
            return "float"
        if self.schemas.get((table.name, col.name), {}).get("format") == "date" or (col.lo and re.match(r"^\d{4}-\d\d-\d\d$", col.lo)):
            return "date"
        return "str"

    def attributes(self, table: Table, skip: set[str]) -> list[CatalogAttribute]:
        out = []
        for col in table.columns:
            if col.name in skip:
                continue
            kind = self._kind(table, col)
            out.append(CatalogAttribute(name=col.name, type=kind, description=self._described(table, col.name),
                                        gen=self._gen(table, col, kind)))
        return out

    def _described(self, table: Table, column: str) -> str:
        """The column's stated meaning, else the description a tool acting on the table gives it, else its name
        in words."""
        if (table.name, column) in self.meanings:
            return self.meanings[(table.name, column)]
        text = self.schemas.get((table.name, column), {}).get("description")
        if text:
            return text.removesuffix(" (optional filter)").removesuffix(" (YYYY-MM-DD)")
        return column.replace("_", " ").capitalize()

    # -- tools, from what the policy says each does
    def _table_named(self, words_text: str) -> Table:
        table = words_text.strip().replace(" ", "_")
        return need(self.tables.get(table), f"a table for {words_text!r}")

    def _by_key(self, params: list[str], what: str) -> Table:
        found = [self._table_of_key(p) for p in params if p != "person_id" and self._table_of_key(p)]
        return need(found[0] if found else None, f"the table {what} acts on")

    def read_tool(self, tool: dict) -> tuple[CatalogTool, CatalogPricing | None]:
        """The catalog tool behind one listed tool, and the pricing its effects state (if any)."""
        name, sec = tool["name"], need(self.sections.get(tool["name"]), f"a policy section for {tool['name']}")
        fx, params = sec.effects, sec.params
        base = {"name": name, "description": tool["description"]}
        if "Returns the person's details merged" in fx:
            return CatalogTool(kind="get_profile", **base), None
        if (line_tool := self.lines.read_line_tool(self, name, sec, base)) is not None:
            return line_tool, None
        if (m := re.search(r"None\. Returns the ([\w ]+) row(?:\.| with its [\w ]+ under `items`)", fx)):
            return CatalogTool(kind="get", entity=self.names[self._table_named(m[1]).name], **base), None
        if (m := re.search(r"matching rows whose `(\w+)` is at most `(\w+)` \(when given\), lowest", fx)):
            fields = [p for p in params if p != m[2]]
            holders = [t for t in self.tables.values() if t.column(m[1]) and all(t.column(p) for p in fields)]
            table = need(holders[0] if len(holders) == 1 else None, f"the one table {name} browses")
            return CatalogTool(kind="browse", entity=self.names[table.name], fields=fields, amount_field=m[1], **base), None
        if (m := re.search(r"None\. Returns how many ([\w ]+?)s the person has .*?the sum of their `(\w+)`", fx)):
            return CatalogTool(kind="summary", entity=self.names[self._table_named(m[1]).name], amount_field=m[2],
                               **base), None
        if "matching rows" in fx:
            holders = [t for t in self.tables.values() if all(t.column(p) for p in params)]
            table = need(holders[0] if len(holders) == 1 else None, f"the one table {name} searches")
            return CatalogTool(kind="search", entity=self.names[table.name], fields=params, **base), None
        if (m := re.search(r"None\. Returns the person's ([\w ]+?)s ordered by id\.", fx)):
            return CatalogTool(kind="list_records", entity=self.names[self._table_named(m[1]).name], **base), None
        if (m := re.search(r"Creates a new ([\w ]+?) for the person", fx)):
            return self._create(self._table_named(m[1]), params, fx, base)
        if (m := re.search(r"Sets the ([\w ]+?)'s `(\w+)` to (.+?)(?:; nothing else changes)?\. Returns", fx)):
            table = self._table_named(m[1])
            return CatalogTool(kind="set_status", entity=self.names[table.name], to=m[3],
                               from_statuses=sec.allowed or [], **base), None
        if (m := re.search(r"Changes (.+?) of the ([\w ]+?) \(`\w+`\) to the given values", fx)):
            table = self._table_named(m[2])
            price = _FORMULA.search(fx)
            amount = re.search(r"recomputes `(\w+)`", fx)
            pricing = CatalogPricing(amount=amount[1], price=price[1], quantity=price[2], fixed=price[3]) if price else None
            return CatalogTool(kind="update", entity=self.names[table.name], fields=re.findall(r"`(\w+)`", m[1]),
                               from_statuses=sec.allowed or [], **base), pricing
        if (m := re.search(r"Records the payment(?: of `(\w+)`)?: sets `(\w+)` to (.+?)\. Returns", fx)):
            table = self._by_key(params, name)
            return CatalogTool(kind="pay", entity=self.names[table.name], fields=[m[2]], to=m[3], amount_field=m[1],
                               from_statuses=sec.allowed or [], **base), None
        raise Unreadable(f"what {name} does (its effects: {fx!r})")

    def _create(self, table: Table, params: list[str], fx: str, base: dict) -> tuple[CatalogTool, CatalogPricing | None]:
        target = self.target_of(table)
        fields = [p for p in params if p not in ("person_id", target.key)]
        sets = need(re.search(r"^- Sets (.*)\.$", fx, re.M), f"what {base['name']} sets")[1]
        defaults = {k: _value(v) for k, v in re.findall(r"`(\w+)` = (.*?)(?=, `|$)", sets)}
        tool = {"kind": "create", "entity": self.names[table.name], "fields": fields, "defaults": defaults, **base}
        amount = re.search(r"^- `(\w+)` is (.*)\.$", fx, re.M)
        if amount is None:
            return CatalogTool(**tool), None
        price = _FORMULA.search(amount[2])
        if price:  # priced by quantity or a fixed charge
            return CatalogTool(**tool, amount_field=amount[1]), CatalogPricing(
                amount=amount[1], price=price[1], quantity=price[2], fixed=price[3])
        copied = re.match(r"the [\w ]+'s `(\w+)`", amount[2])
        if copied:
            self.price_columns.add(copied[1])
        else:
            self.fixed_amounts[amount[1]] = float(need(re.match(r"a fixed ([\d.]+)", amount[2]), "the fixed amount")[1])
        return CatalogTool(**tool, amount_field=amount[1]), None

    # -- the whole domain
    def domain(self) -> CatalogDomain:
        self.fixed_amounts: dict[str, float] = {}
        tools, pricings = [], {}
        for listed in self.tools:
            tool, price = self.read_tool(listed)
            reads = ("get", "search", "list_records", "browse", "summary")
            if tool.kind != "get_profile" and self.modes.get(tool.name) != ("read" if tool.kind in reads else "write"):
                raise Unreadable(f"the mode of {tool.name}")
            tools.append(tool)
            if tool.entity:
                table = snake(tool.entity) if snake(tool.entity) in self.tables else None
                for p, schema in listed["parameters"]["properties"].items():
                    if table and p not in ("person_id", "payment_method") and self.tables[table].column(p):
                        self.schemas.setdefault((table, p), schema)
            if price is not None:
                pricings[tool.entity] = price
                self.price_columns.add(price.price)
        balances = self._balances(tools)
        role = self.role_table()
        self.targets = {self.target_of(t).name for t in self.records()}
        entities = [CatalogEntity(name=self.names[t.name], description=self.names[t.name], id_prefix=t.prefix,
                                  attributes=self.attributes(t, {t.key})) for t in self.entities()]
        records = []
        for t in self.records():
            target = self.target_of(t)
            name = self.names[t.name]
            listing = next((x for x in tools if x.kind == "list_records" and x.entity == name), None)
            status_field = next((p for p in (self.sections[listing.name].params if listing else []) if p != "person_id"),
                                "status")
            attrs = self.attributes(t, {t.key, "person_id", target.key})
            attrs = [a.model_copy(update={"gen": {"money": [v, v]}}) if (v := self.fixed_amounts.get(a.name)) is not None
                     else a for a in attrs]
            col = t.column(status_field)
            statuses = self.schemas.get((t.name, status_field), {}).get("enum") if listing else None
            statuses = statuses or (col.values if col is not None and col.values else [])
            records.append(CatalogRecord(name=name, description=name, id_prefix=t.prefix, target=self.names[target.name],
                                         status_field=status_field, statuses=[str(s) for s in statuses],
                                         attributes=attrs, pricing=pricings.get(name), holds=self._holds(name, tools),
                                         lines=self.lines.lines_of_record(self, t.name, tools)))
        return CatalogDomain(name=self.name, sector=self.head[0], description=self.head[1], role=self.names[role.name],
                             role_attributes=self.attributes(role, {"person_id"}), entities=entities, records=records,
                             tools=tools, rules=self.rules, balances=balances)

    def _holds(self, record: str, tools: list[CatalogTool]) -> CatalogHolding | None:
        """The target a record holds alone, as the effects of its writes say they take or free it."""
        for tool in (t for t in tools if t.entity == record):
            m = re.search(r"^- (?:Takes|Frees) the [\w ]+?: sets its `(\w+)` to \w+ \(a [\w ]+ in status (.+?) holds its",
                          self.sections[tool.name].effects, re.M)
            if m:
                return CatalogHolding(flag=m[1], statuses=re.split(r", | or ", m[2]))
        return None

    def _balances(self, tools: list[CatalogTool]) -> list[CatalogBalance]:
        """The balances the policy says a create uses up (of an allowance) and a status change gives back."""
        found: dict[str, CatalogBalance] = {}
        for tool in (t for t in tools if t.kind == "create"):
            used = re.search(r"^- Uses up (?:the given `(\w+)`|one) of the [\w ]+'s `(\w+)` \(what is left of their "
                             r"`(\w+)`\)", self.sections[tool.name].effects, re.M)
            if used:
                found[used[2]] = CatalogBalance(attribute=used[2], limit=used[3], record=tool.entity or "",
                                                amount=used[1], released=[])
        for tool in (t for t in tools if t.kind == "set_status"):
            back = re.search(r"^- Gives (?:the [\w ]+'s `\w+`|one) back to the [\w ]+'s `(\w+)`",
                             self.sections[tool.name].effects, re.M)
            if back:
                held = need(found.get(back[1]), f"which create uses up the balance {back[1]}")
                held.released.append(tool.to or "")
        return list(found.values())


_RANGE = re.compile(r"^- ([A-Z]\w*)\.(\w+) \(\w+(?:, an id of \w+\.\w+)?, range (\S+?)\.\.(\S+?)\): ", re.M)


def domain_of_implementation_prompt(prompt: str) -> tuple[CatalogDomain, str]:
    """The domain and the clock an s09 request states."""
    name = need(re.search(r"^Implement the MCP server (\w+) as", prompt, re.M), "the server's name")[1]
    clock = need(re.search(r'CLOCK = "(\d{4}-\d\d-\d\d)"', prompt), "the clock")[1]
    tools_json = need(re.search(r"matching exactly this tool list:\n(.*?)\nModes: ", prompt, re.S), "the tool list")[1]
    modes = json.loads(need(re.search(r"^Modes: (\{.*\})$", prompt, re.M), "the tool modes")[1])
    database = need(re.search(r"\nThe database `db.sqlite` [^\n]*\n(.*?)\n\n", prompt, re.S), "the database")[1]
    policy = need(re.search(r"<!-- POLICY_START -->.*<!-- POLICY_END -->", prompt, re.S), "the policy")[0]
    head = need(re.search(rf"You are the assistant of \*\*{name}\*\* \((\w+)\)\. (.*?) You serve ", policy),
                "the service's sector and description")
    rules = [CatalogRule.model_validate(r.model_dump()) for r in parse_rules(policy)]
    stated = need(re.search(r"\nThe ranges the values of the person's records are drawn from [^\n]*\n[^\n]*\n(.*?)\n\n",
                            prompt, re.S), "the ranges of the records' values")[1]
    ranges = {(snake(e), c): [json.loads(lo), json.loads(hi)] for e, c, lo, hi in _RANGE.findall(stated)}
    reader = DomainReader(name, json.loads(tools_json), modes, read_tables(database), read_sections(policy), rules,
                          (head[1], head[2]), clock, ranges=ranges)
    return reader.domain(), clock
