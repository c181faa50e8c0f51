"""Sanity checks of catalog domains: names, generators, tools and policy rules that the builtin
compiler (skiller.world.builtin.codegen) relies on, and that every rule can be both kept and broken.

`check_domain` and `check_catalog` return problems as one-line strings naming the domain and the
tool, rule, entity or attribute at fault; `assert_valid` raises `CatalogCheckError` with all of them.
"""
from __future__ import annotations

import random

from skiller.world.catalog.check_base import (
    _PASCAL,
    _PREFIX,
    _SNAKE,
    _SQL_KEYWORDS,
    _TYPES,
    PERSON_COLUMNS,
    CatalogCheckError,
    gen_values,
    snake,
)
from skiller.world.catalog.balances import balance_problems
from skiller.world.catalog.check_lines import LineChecks
from skiller.world.catalog.pairs import pair_problems
from skiller.world.catalog.refunds import refund_column_problems
from skiller.world.catalog.check_rules import RuleChecks
from skiller.world.catalog.check_tools import ToolChecks
from skiller.world.catalog.load import SECTORS, load_catalog
from skiller.world.catalog.model import (
    CatalogAttribute,
    CatalogDomain,
    CatalogEntity,
    CatalogRecord,
)
from skiller.world.catalog.shapes import shape_problems
from skiller.world.catalog.values import GEN_KINDS, PICKS, generate

__all__ = ["CatalogCheckError", "assert_valid", "check_catalog", "check_domain", "gen_values", "snake"]

# Words that end a numeric label's head noun phrase ('Hours booked', 'Movers in the crew', 'Times the loan was
# renewed'): the head is the last word before the first of them.
_HEAD_ENDS = frozenset({"of", "in", "per", "the", "a", "to", "for", "on", "at", "without", "since", "between", "left",
                        "booked", "used", "includes", "has", "was", "is", "watering"})


def plural_head(description: str) -> str | None:
    """The plural head noun a numeric attribute's description opens on ('Rooms of furniture to move': 'Rooms'),
    which the label's sentence 'the rooms of furniture to move is 1' gets wrong; None when it is singular."""
    words = description.split()
    phrase = words[:next((i for i, w in enumerate(words) if i and w.lower() in _HEAD_ENDS), len(words))]
    head = phrase[-1].strip(".,;:").lower() if phrase else ""
    plural = head == "people" or (head.endswith("s") and not head.endswith(("ss", "us", "ics")))
    return phrase[-1] if plural else None


class _DomainChecker(ToolChecks, RuleChecks, LineChecks):
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
        if not 1 <= len(d.records) <= 3:
            self.err("records", f"needs 1 to 3 records, has {len(d.records)}")
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
        for ent in d.entities:
            for problem in pair_problems(ent):
                self.err(f"entity {ent.name}", problem)
        for rec in d.records:
            self.check_record(rec)
        self.check_lines()
        self.check_tools()
        self.check_rules()
        for problem in balance_problems(d):
            self.err("balances", problem)
        for problem in refund_column_problems(d):
            self.err("refunds", problem)
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
            elif a.type in ("int", "float") and (head := plural_head(a.description)):
                self.err(at, f"description opens on the plural {head!r}, said as 'the {a.description.lower()} is 3':"
                             f" start it 'Number of' (a count) or 'Amount of' (a sum)")
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
        if self.record(rec.target) is not None:
            self.check_linked(rec)

    def check_linked(self, rec: CatalogRecord) -> None:
        """A record naming another record takes that record's person: nothing may reassign its rows
        (no per-person limit counts it, no category match retargets it, no rule reads its target later)."""
        where = f"record {rec.name}"
        if rec.matches:
            self.err(where, f"a record naming the record {rec.target} takes no matches")
        for rule in self.d.rules:
            tool = next((t for t in self.d.tools if t.name == rule.tool), None)
            if rule.kind in ("max_active", "no_outstanding") and rule.entity == rec.name:
                self.err(f"rule {rule.id}", f"{rec.name} rows follow their {rec.target}'s person: no limit counts them")
            if tool is not None and tool.entity == rec.name and tool.kind != "create" and rule.entity == rec.target:
                self.err(f"rule {rule.id}", f"only the create tool of {rec.name} may check its {rec.target}")

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

        h = rec.holds
        if h is not None:
            if getattr(target.get(h.flag), "type", None) != "bool":
                self.err(where, f"holds names {h.flag!r}, not a bool attribute of {rec.target}")
            if not h.statuses or [s for s in h.statuses if s not in rec.statuses]:
                self.err(where, f"holds statuses {h.statuses} must be some of {rec.statuses}")

    # ------------------------------------------------------------ tools


def check_domain(domain: CatalogDomain, catalog: list[CatalogDomain] | None = None) -> list[str]:
    """Problems of one domain; `catalog` (default: the builtin one) resolves cross-domain refs."""
    if catalog is None:
        catalog = load_catalog()
    return _DomainChecker(domain, [*catalog, domain] if domain.name not in {c.name for c in catalog} else catalog).run()


def check_catalog(domains: list[CatalogDomain]) -> list[str]:
    """Problems of every domain plus catalog-wide ones (unique names, rule ids, id prefixes and shapes)."""
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
    return problems + shape_problems(domains)


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
