"""Sanity checks of catalog domains: names, generators, tools and policy rules that the builtin
compiler (skiller.llm.builtin.codegen) relies on, and that every rule can be both kept and broken.

`check_domain` and `check_catalog` return problems as one-line strings naming the domain and the
tool, rule, entity or attribute at fault; `assert_valid` raises `CatalogCheckError` with all of them.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from skiller.contract.environment import table_name
from skiller.world.catalog.load import SECTORS, load_catalog
from skiller.world.catalog.model import CatalogAttribute, CatalogDomain, CatalogEntity, CatalogRecord, CatalogRule, CatalogTool
from skiller.world.catalog.values import GEN_KINDS, PICKS, generate
from skiller.world.catalog.tiers import tier_rule_problems

__all__ = ["CatalogCheckError", "assert_valid", "check_catalog", "check_domain", "gen_values", "snake"]

MIN_TOOLS = 10
MIN_RULES = 5
READ_KINDS = frozenset({"get_profile", "get", "search", "list_records"})
PERSON_COLUMNS = frozenset({"person_id", "first_name", "last_name", "email", "phone", "date_of_birth", "city"})

_PASCAL = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*$")  # no acronyms: every snake() agrees
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_TOOL_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
_PREFIX = re.compile(r"^[A-Z]{2,5}$")
_RULE_ID = re.compile(r"^[A-Z]{2,5}-[0-9]+$")
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
# SQLite keywords: the compiled modules write column and table names unquoted.
_SQL_KEYWORDS = frozenset("""
abort action add after all alter always analyze and as asc attach autoincrement before begin between
by cascade case cast check collate column commit conflict constraint create cross current current_date
current_time current_timestamp database default deferrable deferred delete desc detach distinct do drop
each else end escape except exclude exclusive exists explain fail filter first following for foreign
from full generated glob group groups having if ignore immediate in index indexed initially inner insert
instead intersect into is isnull join key last left like limit match materialized natural no not nothing
notnull null nulls of offset on or order others outer over partition plan pragma preceding primary query
raise range recursive references regexp reindex release rename replace restrict returning right rollback
row rows savepoint select set table temp temporary then ties to transaction trigger unbounded union unique
update using vacuum values view virtual when where window with without
""".split())
_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "date": (str,)}


class CatalogCheckError(ValueError):
    """One or more catalog domains failed their sanity checks (the message lists every problem)."""


snake = table_name  # PascalCase -> snake_case, the contract's table naming


def gen_values(gen: dict[str, Any]) -> list[Any] | None:
    """The distinct values a finite generator can produce (choice, bool), else None."""
    if "choice" in gen and isinstance(gen["choice"], list):
        out: list[Any] = []
        for v in gen["choice"]:
            if v not in out:
                out.append(v)
        return out
    if "bool" in gen and isinstance(gen["bool"], (int, float)):
        p = float(gen["bool"])
        return [v for v, possible in ((True, p > 0), (False, p < 1)) if possible]
    return None


def _gen_range(gen: dict[str, Any]) -> tuple[float, float] | None:
    for kind in ("int", "money", "date"):
        if kind in gen and isinstance(gen[kind], list) and len(gen[kind]) == 2:
            return float(gen[kind][0]), float(gen[kind][1])
    values = gen_values(gen)
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return float(min(values)), float(max(values))
    return None


def _words(text: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", text.lower()).split())


class _DomainChecker:
    def __init__(self, domain: CatalogDomain, catalog: list[CatalogDomain]) -> None:
        self.d = domain
        self.catalog = {c.name: c for c in catalog}
        self.problems: list[str] = []
        self.items: dict[str, CatalogEntity | CatalogRecord] = {i.name: i for i in [*domain.entities, *domain.records]}

    def err(self, where: str, message: str) -> None:
        self.problems.append(f"{self.d.name}: {where}: {message}")

    def attrs(self, name: str | None) -> dict[str, CatalogAttribute]:
        item = self.items.get(name or "")
        return {a.name: a for a in item.attributes} if item else {}

    def record(self, name: str | None) -> CatalogRecord | None:
        item = self.items.get(name or "")
        return item if isinstance(item, CatalogRecord) else None

    def creates_of(self, record: str) -> list[CatalogTool]:
        return [t for t in self.d.tools if t.kind == "create" and t.entity == record]

    # ------------------------------------------------------------ structure
    def run(self) -> list[str]:
        d = self.d
        if not _PASCAL.match(d.name):
            self.err("name", "must be PascalCase letters/digits without underscores or acronyms")
        if d.sector not in SECTORS:
            self.err("sector", f"{d.sector!r} is not one of SECTORS")
        if not d.description.strip():
            self.err("description", "is empty")
        if not d.personas_hint:
            self.err("personas_hint", "give at least one reason people contact this service")
        if not _PASCAL.match(d.role):
            self.err(f"role {d.role}", "must be PascalCase without acronyms")
        if not 1 <= len(d.entities) <= 3:
            self.err("entities", f"needs 1 to 3 peripheral entities, has {len(d.entities)}")
        if not 1 <= len(d.records) <= 2:
            self.err("records", f"needs 1 or 2 records, has {len(d.records)}")
        tables = [snake(d.role), *(snake(i.name) for i in self.items.values())]
        for name in {t for t in tables if tables.count(t) > 1 or t == "person" or t in _SQL_KEYWORDS}:
            self.err(f"table {name}", "is duplicated, reserved or an SQL keyword")
        prefixes = [i.id_prefix for i in self.items.values()]
        for item in self.items.values():
            kind = "record" if isinstance(item, CatalogRecord) else "entity"
            if not _PASCAL.match(item.name):
                self.err(f"{kind} {item.name}", "must be PascalCase without acronyms")
            if not _PREFIX.match(item.id_prefix) or prefixes.count(item.id_prefix) > 1:
                self.err(f"{kind} {item.name}", f"id_prefix {item.id_prefix!r} must be 2-5 capitals, unique in the domain")
            if item.count is not None and item.count < 1:
                self.err(f"{kind} {item.name}", "count must be at least 1")
        id_columns = {f"{t}_id" for t in tables} | {"person_id"}
        self.check_attributes(f"role {d.role}", d.role_attributes, id_columns | PERSON_COLUMNS, None)
        for item in self.items.values():
            kind = "record" if isinstance(item, CatalogRecord) else "entity"
            self.check_attributes(f"{kind} {item.name}", item.attributes, id_columns, item)
        for rec in d.records:
            self.check_record(rec)
        self.check_tools()
        self.check_rules()
        return self.problems

    def check_attributes(self, where: str, attrs: list[CatalogAttribute], reserved: set[str] | frozenset[str],
                         item: CatalogEntity | CatalogRecord | None) -> None:
        names = [a.name for a in attrs]
        for a in attrs:
            at = f"{where} attribute {a.name}"
            if not _SNAKE.match(a.name) or a.name in _SQL_KEYWORDS:
                self.err(at, "name must be snake_case and not an SQL keyword")
            if names.count(a.name) > 1 or a.name in reserved:
                self.err(at, "name is duplicated or reserved (id columns, person columns)")
            if not a.description.strip():
                self.err(at, "description is empty")
            for message in self.gen_problems(a, item):
                self.err(at, message)

    def gen_problems(self, a: CatalogAttribute, item: CatalogEntity | CatalogRecord | None) -> list[str]:
        gen = a.gen
        if not isinstance(gen, dict) or len(gen) != 1 or next(iter(gen)) not in GEN_KINDS:
            return [f"gen {gen!r} must be one of {', '.join(GEN_KINDS)}"]
        (kind, arg), = gen.items()
        ok_types = _TYPES[a.type]
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                return ["choice needs a non-empty list"]
            bad = [v for v in arg if not isinstance(v, ok_types) or (a.type != "bool" and isinstance(v, bool))]
            if bad:
                return [f"choice values {bad!r} do not fit type {a.type} (quote YAML words like yes/no/on/off)"]
        elif kind in ("int", "money", "date"):
            want = {"int": ("int",), "money": ("float",), "date": ("date",)}[kind]
            if a.type not in want:
                return [f"{kind} generator on a {a.type} attribute"]
            if (not isinstance(arg, list) or len(arg) != 2 or any(isinstance(v, bool) for v in arg)
                    or not all(isinstance(v, (int, float)) for v in arg) or arg[0] > arg[1]):
                return [f"{kind} needs [lo, hi] numbers with lo <= hi, got {arg!r}"]
            if kind != "money" and not all(isinstance(v, int) for v in arg):
                return [f"{kind} bounds must be integers, got {arg!r}"]
        elif kind == "bool":
            if a.type != "bool" or isinstance(arg, bool) or not isinstance(arg, (int, float)) or not 0 <= arg <= 1:
                return ["bool needs a bool attribute and a probability in [0, 1]"]
        elif kind == "compose":
            if a.type != "str" or not isinstance(arg, list) or not arg or not all(
                    isinstance(part, list) and part and all(isinstance(w, str) for w in part) for part in arg):
                return ["compose needs a str attribute and a list of non-empty lists of words"]
        elif kind in ("code", "pick", "ref"):
            if a.type != "str" or not isinstance(arg, str):
                return [f"{kind} generator needs a str attribute and a string argument"]
            if kind == "pick" and arg not in PICKS:
                return [f"pick {arg!r} must be one of {', '.join(PICKS)}"]
            if kind == "code" and not any(c in arg for c in "#@"):
                return [f"code {arg!r} has no '#' or '@' placeholder"]
            if kind == "ref":
                problem = self.ref_problem(a, arg, item)
                if problem:
                    return [problem]
        try:
            lookup = {arg: (self.ref_prefix(arg), 5)} if kind == "ref" else None
            value = generate(gen, random.Random(0), "2026-01-01", catalog_lookup=lookup)
        except Exception as exc:  # the generator itself must work
            return [f"gen {gen!r} fails: {exc}"]
        if not isinstance(value, ok_types):
            return [f"gen {gen!r} produced {value!r}, not a {a.type}"]
        return []

    def ref_prefix(self, ref: str) -> str:
        domain_name, _, record_name = ref.partition(".")
        target = self.catalog.get(domain_name)
        return next((r.id_prefix for r in (target.records if target else []) if r.name == record_name), "REF")

    def ref_problem(self, a: CatalogAttribute, ref: str, item: CatalogEntity | CatalogRecord | None) -> str | None:
        domain_name, _, record_name = ref.partition(".")
        target = self.catalog.get(domain_name)
        if target is None or not any(r.name == record_name for r in target.records):
            return f"ref {ref!r} does not name an existing Domain.Record"
        if domain_name == self.d.name:
            return f"ref {ref!r} must point to another domain"
        if not isinstance(item, CatalogRecord):
            return "ref attributes belong on records"
        if not any(a.name in t.fields for t in self.creates_of(item.name)):
            return f"ref {ref!r} must be a field of a create tool of {item.name}"
        return None

    def check_record(self, rec: CatalogRecord) -> None:
        where = f"record {rec.name}"
        if not rec.statuses or len(set(rec.statuses)) != len(rec.statuses):
            self.err(where, "statuses must be non-empty and unique")
        for s in rec.statuses:
            if not _SNAKE.match(s):
                self.err(where, f"status {s!r} must be snake_case")
        status = self.attrs(rec.name).get(rec.status_field)
        if status is None:
            self.err(where, f"status field {rec.status_field!r} is not an attribute")
            return
        values = gen_values(status.gen) if "choice" in status.gen else None
        if status.type != "str" or values is None:
            self.err(where, f"status field {rec.status_field} must be a str with a choice generator")
            return
        extra = [v for v in values if v not in rec.statuses]
        if extra:
            self.err(where, f"status generator values {extra} are not in statuses {rec.statuses}")
        if len(values) < 2:
            self.err(where, "status generator must produce at least 2 statuses")
        self.check_coherence(rec)

    def check_coherence(self, rec: CatalogRecord) -> None:
        """The coherent-data hints name real attributes: the timed date, priced columns, categories."""
        where, own = f"record {rec.name}", self.attrs(rec.name)
        target = self.attrs(rec.target)
        if rec.status_date is not None and getattr(own.get(rec.status_date), "type", None) != "date":
            self.err(where, f"status_date {rec.status_date!r} is not a date attribute")
        for status in rec.status_timing:
            if status not in rec.statuses:
                self.err(where, f"status_timing names {status!r}, not one of its statuses")
        numeric = ("int", "float")
        p = rec.pricing
        if p is not None:
            for name, attrs, types in ((p.amount, own, numeric), (p.price, target, numeric),
                                       (p.quantity, own, ("int",)), (p.fixed, target, numeric)):
                if name is not None and getattr(attrs.get(name), "type", None) not in types:
                    whose = rec.name if attrs is own else rec.target
                    self.err(where, f"pricing names {name!r}, not a {'/'.join(types)} attribute of {whose}")
        for m in rec.matches:
            tf = target.get(m.target_field)
            if tf is None:
                self.err(where, f"match names {m.target_field!r}, not an attribute of {rec.target}")
                continue
            keys = gen_values(own[m.field].gen) if m.field in own else None
            if m.field is not None and keys is None:
                self.err(where, f"match field {m.field!r} is not a choice attribute of {rec.name}")
            elif m.field is None and list(m.allowed) != ["*"]:
                self.err(where, "a match without a field allows exactly one key, '*'")
            elif m.field is not None and [k for k in m.allowed if k not in keys]:
                self.err(where, f"match keys {[k for k in m.allowed if k not in keys]} are not values of {m.field}")
            possible = gen_values(tf.gen)
            for key, vals in m.allowed.items():
                if not vals or (possible is not None and [v for v in vals if v not in possible]):
                    self.err(where, f"match {key!r} allows {vals!r}: none or not values of {rec.target}.{m.target_field}")

    # ------------------------------------------------------------ tools
    def check_tools(self) -> None:
        d = self.d
        names = [t.name for t in d.tools]
        if len(d.tools) < MIN_TOOLS:
            self.err("tools", f"needs at least {MIN_TOOLS} tools, has {len(d.tools)}")
        kinds = [t.kind for t in d.tools]
        if kinds.count("get_profile") != 1:
            self.err("tools", "needs exactly one get_profile tool")
        if not any(k in READ_KINDS for k in kinds) or all(k in READ_KINDS for k in kinds):
            self.err("tools", "needs at least one read and one write tool")
        if "create" not in kinds:
            self.err("tools", "needs at least one create tool")
        for name, item in self.items.items():
            if not any(t.entity == name and t.kind in READ_KINDS for t in d.tools):
                self.err(f"{'record' if isinstance(item, CatalogRecord) else 'entity'} {name}", "has no read tool")
        for i, t in enumerate(d.tools):
            where = f"tool {t.name}"
            if not _TOOL_NAME.match(t.name) or t.name != t.name.lower():
                self.err(where, "name must be a legal snake_case function name")
            if len(snake(d.name)) + 1 + len(t.name) > 64:
                self.err(where, "name too long once prefixed with the domain in a fusion (64 max)")
            if t.name in names[:i]:
                self.err(where, "name is not unique in the domain")
            if not t.description.strip():
                self.err(where, "description is empty")
            getattr(self, f"tool_{t.kind}")(t, where)

    def _unused(self, t: CatalogTool, where: str, *allowed: str) -> None:
        for attr, empty in (("fields", []), ("from_statuses", []), ("to", None), ("amount_field", None), ("defaults", {})):
            if attr not in allowed and getattr(t, attr) != empty:
                self.err(where, f"a {t.kind} tool takes no {attr}")

    def _fields_exist(self, t: CatalogTool, where: str) -> dict[str, CatalogAttribute]:
        attrs = self.attrs(t.entity)
        for f in t.fields:
            if f not in attrs:
                self.err(where, f"field {f!r} is not an attribute of {t.entity}")
        if len(set(t.fields)) != len(t.fields):
            self.err(where, "fields are duplicated")
        return attrs

    def _needs_record(self, t: CatalogTool, where: str) -> CatalogRecord | None:
        rec = self.record(t.entity)
        if rec is None:
            self.err(where, f"a {t.kind} tool needs a record, {t.entity} is not one")
        return rec

    def _statuses_known(self, t: CatalogTool, where: str, rec: CatalogRecord, values: Iterable[str], what: str) -> None:
        values = list(values)
        unknown = [s for s in values if s not in rec.statuses]
        if unknown:
            self.err(where, f"{what} {unknown} are not statuses of {rec.name} {rec.statuses}")
        status = self.attrs(rec.name).get(rec.status_field)
        generated = gen_values(status.gen) if status else None
        if values and generated and not set(values) & set(generated):
            self.err(where, f"no generated {rec.name} row is in {what} {values}: the tool never applies to the data")

    def tool_get_profile(self, t: CatalogTool, where: str) -> None:
        if t.entity is not None:
            self.err(where, "a get_profile tool has no entity")
        self._unused(t, where)

    def tool_get(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where)

    def tool_search(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields")
        self._fields_exist(t, where)

    def tool_list_records(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where)
        self._needs_record(t, where)

    def tool_create(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "defaults", "amount_field")
        rec = self._needs_record(t, where)
        attrs = self._fields_exist(t, where)
        if rec is None or not rec.statuses:
            return
        if rec.status_field in t.fields:
            self.err(where, f"the status field {rec.status_field} is set by defaults, not by the caller")
        for f, v in t.defaults.items():
            a = attrs.get(f)
            if a is None:
                self.err(where, f"default {f!r} is not an attribute of {rec.name}")
                continue
            if f in t.fields:
                self.err(where, f"default {f!r} is also a caller field")
            values = rec.statuses if f == rec.status_field else gen_values(a.gen)
            if not isinstance(v, _TYPES[a.type]) or (a.type != "bool" and isinstance(v, bool)) or \
                    (values is not None and v not in values):
                self.err(where, f"default {f}={v!r} is not a possible value of {rec.name}.{f}")
        if t.defaults.get(rec.status_field, rec.statuses[0]) != rec.statuses[0]:
            self.err(where, f"a new {rec.name} starts in the first status {rec.statuses[0]!r}")
        covered = set(t.fields) | set(t.defaults) | {rec.status_field}
        if t.amount_field:
            a = attrs.get(t.amount_field)
            if a is None or a.type not in ("int", "float"):
                self.err(where, f"amount_field {t.amount_field!r} is not a numeric attribute of {rec.name}")
            elif t.amount_field not in covered:
                target = self.items[rec.target]
                source = next((x for x in target.attributes if x.name == t.amount_field and x.type in ("int", "float")), None) \
                    or next((x for x in target.attributes if "money" in x.gen), None)
                if source is None:
                    self.err(where, f"amount_field {t.amount_field}: target {rec.target} has no money attribute to copy")
                elif (_gen_range(source.gen) or (0, 0))[0] <= 0:
                    self.err(where, f"amount source {rec.target}.{source.name} can be 0, so the record could not be paid")
            covered.add(t.amount_field)
        missing = [a for a in attrs if a not in covered]
        if missing:
            self.err(where, f"attributes {missing} of {rec.name} get no value (add them to fields or defaults)")

    def tool_set_status(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "from_statuses", "to")
        rec = self._needs_record(t, where)
        if rec is None:
            return
        if not t.from_statuses:
            self.err(where, "a set_status tool needs from_statuses")
        if t.to is None or t.to not in rec.statuses:
            self.err(where, f"to {t.to!r} is not a status of {rec.name} {rec.statuses}")
        if t.to in t.from_statuses:
            self.err(where, f"to {t.to!r} is also in from_statuses")
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")

    def tool_update(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "from_statuses")
        self._fields_exist(t, where)
        if not t.fields:
            self.err(where, "an update tool needs fields")
        rec = self.record(t.entity)
        if rec is None:
            if t.from_statuses:
                self.err(where, f"from_statuses given but {t.entity} has no statuses")
            return
        if rec.status_field in t.fields:
            self.err(where, f"the status field {rec.status_field} changes through set_status tools")
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")

    def tool_pay(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "to", "amount_field", "from_statuses")
        rec = self._needs_record(t, where)
        attrs = self._fields_exist(t, where)
        if rec is None:
            return
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")
        if len(t.fields) != 1 or t.fields[0] not in attrs:
            self.err(where, "a pay tool names exactly one payment-status field")
        else:
            field = t.fields[0]
            values = rec.statuses if field == rec.status_field else gen_values(attrs[field].gen)
            if attrs[field].type != "str" or not values:
                self.err(where, f"payment field {field} must be a str with a choice generator")
            elif t.to not in values or not [v for v in values if v != t.to]:
                self.err(where, f"payment field {field} values {values} must include {t.to!r} and an unpaid value")
        a = attrs.get(t.amount_field or "")
        if a is None or a.type not in ("int", "float"):
            self.err(where, f"amount_field {t.amount_field!r} is not a numeric attribute of {rec.name}")
        elif "money" in a.gen and (_gen_range(a.gen) or (0, 0))[0] <= 0:
            self.err(where, f"amount_field {a.name} can be 0: generated rows would have nothing to pay")

    # ------------------------------------------------------------ rules
    def check_rules(self) -> None:
        d = self.d
        if len(d.rules) < MIN_RULES:
            self.err("rules", f"needs at least {MIN_RULES} rules, has {len(d.rules)}")
        ids = [r.id for r in d.rules]
        tools = {t.name: t for t in d.tools}
        for i, rule in enumerate(d.rules):
            where = f"rule {rule.id}"
            if not _RULE_ID.match(rule.id) or rule.id in ids[:i]:
                self.err(where, "id must look like ABC-1 and be unique")
            if not rule.statement.strip().endswith("."):
                self.err(where, "statement must be a sentence ending with '.'")
            tool = tools.get(rule.tool)
            if tool is None:
                self.err(where, f"names unknown tool {rule.tool}")
                continue
            for attr, used_by in (("limit", {"max_active"}), ("equals", {"target_flag"}),
                                  ("statuses", {"max_active", "requires_status", "member_attr", "no_outstanding"}),
                                  ("field", {"value_range", "date_window", "target_flag", "lead_time", "member_attr",
                                             "tier_limit", "computed_fee"}),
                                  ("min", {"value_range", "date_window", "lead_time", "member_attr", "computed_fee"}),
                                  ("max", {"value_range", "date_window", "member_attr", "computed_fee"}),
                                  ("attribute", {"tier_limit"}), ("limits", {"tier_limit"}),
                                  ("percent", {"computed_fee"})):
                if rule.kind not in used_by and getattr(rule, attr) not in (None, [], {}):
                    self.err(where, f"a {rule.kind} rule takes no {attr}")
            if rule.kind in ("member_attr", "tier_limit", "no_outstanding", "ownership", "computed_fee"):
                # rules on who asks and on computed amounts: skiller.world.catalog.tiers
                for problem in tier_rule_problems(d, rule, tool):
                    self.err(where, problem)
                continue
            getattr(self, f"rule_{rule.kind}")(rule, tool, where)
            self.statement_problems(rule, where)

    def _arg_attr(self, rule: CatalogRule, tool: CatalogTool, where: str, types: tuple[str, ...]) -> CatalogAttribute | None:
        if tool.kind not in ("create", "update"):
            self.err(where, f"a {rule.kind} rule checks an argument of a create or update tool, not {tool.kind} {tool.name}")
            return None
        if rule.entity not in (None, tool.entity):
            self.err(where, f"entity {rule.entity} differs from the tool's {tool.entity}")
        attr = self.attrs(tool.entity).get(rule.field or "")
        if attr is None or rule.field not in tool.fields:
            self.err(where, f"field {rule.field!r} is not an argument of {tool.name} (fields {tool.fields})")
            return None
        if attr.type not in types:
            self.err(where, f"field {rule.field} is a {attr.type}, a {rule.kind} rule needs {'/'.join(types)}")
            return None
        return attr

    def rule_max_active(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        if tool.kind != "create":
            self.err(where, f"a max_active rule guards a create tool, not {tool.kind} {tool.name}")
        rec = self.record(rule.entity or tool.entity)
        if rec is None:
            self.err(where, f"entity {rule.entity or tool.entity} is not a record")
            return
        if not isinstance(rule.limit, int) or rule.limit < 1:
            self.err(where, "limit must be a positive integer")
        unknown = [s for s in rule.statuses if s not in rec.statuses]
        if not rule.statuses or unknown:
            self.err(where, f"statuses {rule.statuses} must be non-empty statuses of {rec.name}")
            return
        if set(rule.statuses) >= set(rec.statuses):
            self.err(where, "statuses must leave some status that does not count as active")
        if rec.name == tool.entity:
            first = tool.defaults.get(rec.status_field, rec.statuses[0])
            if first not in rule.statuses:
                self.err(where, f"new rows start as {first!r}, which the rule does not count: it can never be violated")
        else:
            status = self.attrs(rec.name).get(rec.status_field)
            if status is None or not set(gen_values(status.gen) or []) & set(rule.statuses):
                self.err(where, f"no generated {rec.name} row is in {rule.statuses}: the rule can never be violated")

    def rule_value_range(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        attr = self._arg_attr(rule, tool, where, ("int", "float"))
        if rule.min is None and rule.max is None:
            self.err(where, "a value_range rule needs min and/or max")
            return
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            self.err(where, f"min {rule.min} > max {rule.max}: no value is legal")
        if attr is None:
            return
        lo, hi = _gen_range(attr.gen) or (None, None)
        if lo is not None and hi is not None:
            if (rule.max is not None and lo > rule.max) or (rule.min is not None and hi < rule.min):
                self.err(where, f"no realistic value: {attr.name} is generated in [{lo:g}, {hi:g}]")

    def rule_date_window(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        self._arg_attr(rule, tool, where, ("date",))
        if rule.min is None or rule.max is None or not float(rule.min).is_integer() or not float(rule.max).is_integer():
            self.err(where, "a date_window rule needs whole-day min and max")
        elif rule.min > rule.max:
            self.err(where, f"min {rule.min:g} > max {rule.max:g}: no date is legal")

    def rule_target_flag(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        if tool.kind != "create":
            self.err(where, f"a target_flag rule guards a create tool, not {tool.kind} {tool.name}")
            return
        rec = self.record(tool.entity)
        if rec is None:
            return
        if rule.entity not in (None, rec.target):
            self.err(where, f"entity {rule.entity} is not {tool.name}'s target {rec.target}")
        attr = self.attrs(rec.target).get(rule.field or "")
        if attr is None:
            self.err(where, f"field {rule.field!r} is not an attribute of {rec.target}")
            return
        values = gen_values(attr.gen)
        if values is None or rule.equals not in values or len(values) < 2:
            self.err(where, f"{rec.target}.{rule.field} must be generated both == {rule.equals!r} and otherwise")

    def rule_lead_time(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        if tool.kind not in ("set_status", "update", "pay"):
            self.err(where, f"a lead_time rule guards an existing row (set_status/update/pay), not {tool.kind}")
            return
        rec = self.record(tool.entity)
        if rec is None or rule.entity not in (None, tool.entity):
            self.err(where, f"entity {rule.entity or tool.entity} must be the tool's record")
            return
        attr = self.attrs(rec.name).get(rule.field or "")
        if attr is None or attr.type != "date":
            self.err(where, f"field {rule.field!r} is not a date attribute of {rec.name}")
            return
        if rule.field in tool.fields:
            self.err(where, f"field {rule.field} is also an argument of {tool.name}; the rule would read the argument")
        if rule.min is None or rule.min < 0 or not float(rule.min).is_integer():
            self.err(where, "a lead_time rule needs a whole-day min >= 0")
            return
        lo, hi = _gen_range(attr.gen) or (None, None)
        if lo is None or hi is None or not lo < rule.min <= hi:
            self.err(where, f"{rec.name}.{attr.name} offsets must fall both before and from {rule.min:g} days")

    def rule_requires_status(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        if tool.kind not in ("set_status", "update", "pay"):
            self.err(where, f"a requires_status rule guards set_status/update/pay, not {tool.kind} {tool.name}")
            return
        rec = self.record(tool.entity)
        if rec is None or rule.entity not in (None, tool.entity):
            self.err(where, f"entity {rule.entity or tool.entity} must be the tool's record")
            return
        unknown = [s for s in rule.statuses if s not in rec.statuses]
        if not rule.statuses or unknown:
            self.err(where, f"statuses {rule.statuses} must be non-empty statuses of {rec.name}")
            return
        status = self.attrs(rec.name).get(rec.status_field)
        generated = set(gen_values(status.gen) or []) if status else set()
        allowed = set(rule.statuses) & generated
        if tool.from_statuses:
            allowed &= set(tool.from_statuses)
        if not allowed:
            self.err(where, f"no generated {rec.name} row that {tool.name} accepts is in {rule.statuses}: never satisfiable")
        if not generated - set(rule.statuses):
            self.err(where, f"every generated {rec.name} status is in {rule.statuses}: never violated")

    # ------------------------------------------------------------ statements
    def statement_problems(self, rule: CatalogRule, where: str) -> None:
        text = _words(rule.statement)
        numbers = {float(n.replace(",", "")) for n in _NUMBER.findall(rule.statement)}
        wanted: list[float] = []
        if rule.kind == "max_active" and rule.limit is not None:
            wanted.append(rule.limit)
        if rule.kind in ("value_range", "date_window", "lead_time"):
            wanted += [abs(v) for v in (rule.min, rule.max) if v is not None]
        for n in wanted:
            if n not in (0, 1) and n not in numbers:
                self.err(where, f"statement does not mention {n:g}: {rule.statement!r}")
        if rule.kind in ("max_active", "requires_status"):
            for s in rule.statuses:
                if _words(s) not in text:
                    self.err(where, f"statement does not mention status {s!r}: {rule.statement!r}")
        if rule.kind == "target_flag" and rule.field:
            stems = {w[:5] for w in re.findall(r"[a-z0-9]+", text)}
            if any(w[:5] not in stems for w in _words(rule.field).split()):
                self.err(where, f"statement does not mention {rule.field.replace('_', ' ')!r}: {rule.statement!r}")


def check_domain(domain: CatalogDomain, catalog: list[CatalogDomain] | None = None) -> list[str]:
    """Problems of one domain; `catalog` (default: the builtin one) resolves cross-domain refs."""
    if catalog is None:
        catalog = load_catalog()
    return _DomainChecker(domain, [*catalog, domain] if domain.name not in {c.name for c in catalog} else catalog).run()


def check_catalog(domains: list[CatalogDomain]) -> list[str]:
    """Problems of every domain plus catalog-wide ones (unique names, rule ids and id prefixes)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    rule_ids: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for d in domains:
        key = d.name.lower()
        if key in seen:
            problems.append(f"{d.name}: name: duplicates domain {seen[key]}")
        seen.setdefault(key, d.name)
        for rule in d.rules:
            if rule.id in rule_ids and rule_ids[rule.id] != d.name:
                problems.append(f"{d.name}: rule {rule.id}: id also used by {rule_ids[rule.id]}")
            rule_ids.setdefault(rule.id, d.name)
        for item in [*d.entities, *d.records]:
            if item.id_prefix in prefixes and prefixes[item.id_prefix] != d.name:
                problems.append(f"{d.name}: {item.name}: id_prefix {item.id_prefix} also used by {prefixes[item.id_prefix]}")
            prefixes.setdefault(item.id_prefix, d.name)
        problems += check_domain(d, domains) + _bridge_problems(d, domains)
    return problems


def _bridge_problems(d: CatalogDomain, domains: list[CatalogDomain]) -> list[str]:
    """A bridge rule names a ref argument whose record (in another domain) has the columns and statuses it reads."""
    out = []
    for b in d.bridges:
        where = f"{d.name}: bridge {b.id}"
        tool = next(t for t in d.tools if t.name == b.tool)
        rec = next((r for r in d.records if r.name == tool.entity), None)
        attr = next((a for a in rec.attributes if a.name == b.ref), None) if rec else None
        source, _, record = str((attr.gen if attr else {}).get("ref", "")).partition(".")
        src = next((r for x in domains if x.name == source for r in x.records if r.name == record), None)
        if src is None:
            out.append(f"{where}: {b.ref} is not a ref of a known record")
            continue
        columns = {a.name for a in src.attributes}
        if b.source_field not in columns:
            out.append(f"{where}: {source}.{record} has no column {b.source_field}")
        if b.kind == "source_status" and (not b.statuses or set(b.statuses) - set(src.statuses)):
            out.append(f"{where}: statuses must be among {src.statuses}")
        if b.kind in ("not_above", "date_after") and b.field not in tool.fields:
            out.append(f"{where}: field {b.field} is not an argument of {b.tool}")
        if b.kind in ("source_window", "date_after") and (b.min is None or b.max is None):
            out.append(f"{where}: a {b.kind} bridge needs min and max days")
    return out


def assert_valid(domains: list[CatalogDomain]) -> None:
    """Raise CatalogCheckError listing every problem of `domains`, if any."""
    problems = check_catalog(domains)
    if problems:
        raise CatalogCheckError(f"{len(problems)} catalog problem(s):\n  " + "\n  ".join(problems))
