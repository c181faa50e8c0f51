"""Builtin database model: writes a self-contained script that generates a domain's SQLite database."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from skiller.world.catalog import get_domain
from skiller.world.catalog.model import CatalogAttribute, CatalogDomain, CatalogRecord
from skiller.world.builtin.codegen import attribute, block, choices, find, id_column, lit, snake, template_text
from skiller.world.builtin.lineitems import lines_schema_sql, lines_spec
from skiller.world.builtin.dbrules import balance_spec, database_invariants, is_name, pair_spec, pricing, timing_spec
from skiller.world.builtin.refunds import refund_spec
from skiller.world.builtin.scenarios import data_scenarios, solve

__all__ = ["database_invariants", "database_program", "data_scenarios", "solve", "schema_sql"]

_SQL_TYPE = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER", "date": "TEXT"}
PERSON_COLUMNS = ["person_id", "first_name", "last_name", "email", "phone", "date_of_birth", "city"]


# ---------------------------------------------------------------- schema
def _columns(attrs: list[CatalogAttribute], skip: set[str]) -> list[str]:
    return [f"    {a.name} {_SQL_TYPE[a.type]}" for a in attrs if a.name not in skip]


def schema_sql(domain: CatalogDomain) -> list[str]:
    """CREATE TABLE statements: person, the role table, entities, then records (FK order)."""
    person = ",\n".join(["    person_id TEXT PRIMARY KEY NOT NULL"] + [f"    {c} TEXT" for c in PERSON_COLUMNS[1:]])
    out = [f"CREATE TABLE person (\n{person}\n)"]
    cols = ["    person_id TEXT PRIMARY KEY NOT NULL REFERENCES person(person_id)", *_columns(domain.role_attributes, {"person_id"})]
    out.append(f"CREATE TABLE {snake(domain.role)} (\n" + ",\n".join(cols) + "\n)")
    for ent in domain.entities:
        key = id_column(ent.name)
        cols = [f"    {key} TEXT PRIMARY KEY NOT NULL"] + _columns(ent.attributes, {key})
        out.append(f"CREATE TABLE {snake(ent.name)} (\n" + ",\n".join(cols) + "\n)")
    for rec in domain.records:
        key, target = id_column(rec.name), find(domain, rec.target)
        tkey = id_column(target.name)
        cols = [f"    {key} TEXT PRIMARY KEY NOT NULL",
                "    person_id TEXT NOT NULL REFERENCES person(person_id)",
                f"    {tkey} TEXT NOT NULL REFERENCES {snake(target.name)}({tkey})"]
        cols += _columns(rec.attributes, {key, "person_id", tkey})
        out.append(f"CREATE TABLE {snake(rec.name)} (\n" + ",\n".join(cols) + "\n)")
    return out + lines_schema_sql(domain)  # line items last: they reference records and entities


# ---------------------------------------------------------------- the script
def _values_source() -> str:
    spec = importlib.util.find_spec("skiller.world.catalog.values")
    if spec is None or spec.origin is None:
        raise RuntimeError("skiller.world.catalog.values is not importable")
    return Path(spec.origin).read_text(encoding="utf-8")


def _embed(source: str) -> str:
    """A Python string literal holding `source`, kept readable as a raw triple-quoted block."""
    if "'''" not in source and not source.endswith("\\"):
        return "r'''" + source + "'''"
    return repr(source)


def _attr_spec(attrs: list[CatalogAttribute], skip: set[str] = frozenset()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    return [{"name": a.name, "type": a.type, "gen": a.gen} for a in attrs if a.name not in skip]


def _spec(domain: CatalogDomain, catalog: list[CatalogDomain]) -> dict[str, Any]:
    scen = data_scenarios(domain)
    refs: dict[str, str] = {}
    for attrs in [domain.role_attributes] + [e.attributes for e in domain.entities] + [r.attributes for r in domain.records]:
        for a in attrs:
            if "ref" in a.gen:
                dom_name, _, rec_name = str(a.gen["ref"]).partition(".")
                other = next((d for d in catalog if d.name == dom_name), None)
                if other is None:  # a domain outside the given list: the builtin catalog's own
                    try:
                        other = get_domain(dom_name)
                    except KeyError:
                        other = None
                rec = next((r for r in other.records if r.name == rec_name), None) if other else None
                if rec is None:
                    raise ValueError(f"{domain.name}.{a.name}: ref {a.gen['ref']} is not in the catalog")
                refs[str(a.gen["ref"])] = rec.id_prefix
    records = []
    pinned: dict[str, dict[str, Any]] = {}  # entity table -> {column: value} every forced row takes
    for rec in domain.records:
        target = find(domain, rec.target)
        for m in rec.matches:
            if m.field is None and m.allowed.get("*"):
                pinned.setdefault(snake(target.name), {})[m.target_field] = m.allowed["*"][0]
        price = pricing(domain, rec)
        key, tkey = id_column(rec.name), id_column(target.name)
        records.append({
            "table": snake(rec.name), "key": key, "prefix": rec.id_prefix,
            "target": snake(target.name), "target_key": tkey, "linked": isinstance(target, CatalogRecord),
            "status_field": rec.status_field, "statuses": list(rec.statuses),
            "attributes": _attr_spec(rec.attributes, {key, "person_id", tkey}),
            "pricing": price.model_dump() if price else None,
            "timing": timing_spec(rec),
            "matches": [m.model_dump() | {"values": choices(attribute(rec, m.field)) if m.field else None}
                        for m in rec.matches],
            "scenarios": scen["records"][snake(rec.name)],
            "quotas": scen["quotas"][snake(rec.name)],
            **({"holds": rec.holds.model_dump()} if rec.holds else {}),
        })
    return {
        "domain": domain.name,
        "role": {"table": snake(domain.role), "attributes": _attr_spec(domain.role_attributes, {"person_id"}),
                 "profiles": scen["profiles"]},
        "entities": [{
            "table": snake(e.name), "key": id_column(e.name), "prefix": e.id_prefix, "count": e.count,
            "attributes": _attr_spec(e.attributes, {id_column(e.name)}),
            "distinct": [a.name for a in e.attributes if is_name(a)],
            "pinned": pinned.get(snake(e.name), {}),
            "pairs": pair_spec(e),  # attributes that go together: a medication's dosage forms
            "scenarios": scen["entities"][snake(e.name)],
        } for e in domain.entities],
        "records": records,
        "lines": lines_spec(domain),
        "refs": refs,
        **({"balances": balance_spec(domain)} if domain.balances else {}),
        **({"refunds": refunds} if (refunds := refund_spec(domain)) else {}),
    }


_SCRIPT = '''#!/usr/bin/env python3
"""Generate the __NAME__ database (SQLite) for Skiller.

    python gen_db.py --seed S --rows N --people P --clock YYYY-MM-DD --out db.sqlite

Standard library only: the catalog's value generators are embedded below. The same arguments
always give a byte-identical file (fixed insertion order, per-table generators seeded from
(seed, table) through SHA-256, no timestamps).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sqlite3
import sys
import types
from typing import Any

# skiller/catalog/values.py, verbatim: generate(gen, rng, clock, lookup), person_rows, sub_rng.
VALUES_SOURCE = __VALUES__
values = types.ModuleType("skiller_catalog_values")
sys.modules[values.__name__] = values
exec(compile(VALUES_SOURCE, "skiller/catalog/values.py", "exec"), values.__dict__)

SCHEMA = [
__SCHEMA__
]

# The domain: tables, attribute generators, and forced rows ("scenarios") that make every
# policy rule both satisfiable and violable; quotas keep per-person limits meaningful.
SPEC: dict[str, Any] = __SPEC__


def table_rng(seed: int, table: str) -> Any:
    """One generator per table, seeded from (seed, table) by a stable hash."""
    return values.sub_rng("table", seed, table)


def stored(kind: str, value: Any, clock: str) -> Any:
    """A generated or forced value as SQLite stores it (bool 0/1, 2-decimal floats, ISO dates)."""
    if isinstance(value, dict) and "days" in value:
        return (datetime.date.fromisoformat(clock) + datetime.timedelta(days=int(value["days"]))).isoformat()
    if value is None:
        return None
    if kind == "bool":
        return int(bool(value))
    if kind == "float":
        return round(float(value), 2)
    if kind == "int":
        return int(value)
    return value


def make_rows(attrs: list[dict[str, Any]], count: int, rng: Any, clock: str, lookup: dict[str, Any],
              distinct: list[str] = ()) -> list[dict[str, Any]]:
    """`count` rows of generated values; the `distinct` columns (names) avoid repeating a value."""
    seen: dict[str, set[Any]] = {name: set() for name in distinct}
    rows = []
    for _ in range(count):
        rows.append({a["name"]: stored(a["type"], values.generate_distinct(a["gen"], rng, clock, seen[a["name"]], lookup)
                                       if a["name"] in seen else values.generate(a["gen"], rng, clock, lookup), clock)
                     for a in attrs})
    return rows


def fit(rec: dict[str, Any], rows: list[dict[str, Any]], fixed: dict[int, set[str]], targets: list[dict[str, Any]],
        rng: Any, clock: str) -> None:
    """Make every row obey the world: its target of the category it needs, its amount the target's
    price x its quantity, its status agreeing with its date. Columns in `fixed[i]` are kept."""
    by_id = {t[rec["target_key"]]: t for t in targets}
    for i, row in enumerate(rows):
        keep = fixed.get(i, set())
        for match in rec["matches"]:
            values.fit_match(row, match, rec["target_key"], targets, by_id, keep, rng)
        if rec["pricing"]:
            values.fit_amount(row, rec["pricing"], by_id.get(row[rec["target_key"]]), keep)
        if rec["timing"]:
            values.fit_timing(row, rec["timing"], keep, rng, clock)


def force(row: dict[str, Any], attrs: list[dict[str, Any]], overrides: dict[str, Any], clock: str) -> None:
    kinds = {a["name"]: a["type"] for a in attrs}
    for column, value in overrides.items():
        row[column] = stored(kinds.get(column, "str"), value, clock)


def apply_quotas(spec: dict[str, Any], rows: list[dict[str, Any]], forced: set[int], people: list[str]) -> None:
    """Each limit rule gets one designated person holding exactly `limit` counted rows; everyone
    else stays below the limit (so both outcomes of the rule exist). Forced rows are kept."""
    sf = spec["status_field"]
    counted_any = {s for q in spec["quotas"] for s in q["statuses"]}
    spare = [s for s in spec["statuses"] if s not in counted_any]
    fulls = {q["person"] for q in spec["quotas"]}
    for quota in spec["quotas"]:
        counted, limit, full = set(quota["statuses"]), quota["limit"], quota["person"]
        mine = [i for i, r in enumerate(rows) if r["person_id"] == full and r[sf] in counted]
        for i in reversed(mine):
            if len(mine) <= limit:
                break
            if i not in forced and spare:
                rows[i][sf] = spare[0]
                mine.remove(i)
        for i in reversed(range(len(rows))):
            if len(mine) >= limit:
                break
            if i not in forced and i not in mine and rows[i]["person_id"] not in fulls:  # not another limit's rows
                rows[i]["person_id"], rows[i][sf] = full, quota["statuses"][0]
                mine.append(i)
        for person in people:
            if person in fulls or not spare:  # each designated person keeps what its own rule needs
                continue
            theirs = [i for i, r in enumerate(rows) if r["person_id"] == person and r[sf] in counted]
            excess = len(theirs) - (limit - 1)
            for i in reversed(theirs):
                if excess <= 0:
                    break
                if i not in forced:
                    rows[i][sf] = spare[0]
                    excess -= 1


def insert(db: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    db.executemany(sql, [tuple(r[c] for c in columns) for r in rows])


def assign_people(person_ids: list[str], seed: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Who plays which forced part: one person per profile (from the front of the list), then per
    record table one person at each limit (a stable hash, never a profile person); returns the profile
    people and the profile row each forced person must have."""
    profiles = SPEC["role"]["profiles"]
    chosen = person_ids[: len(profiles)]
    member = {pid: p["set"] for pid, p in zip(chosen, profiles)}
    people = len(person_ids)
    for rec in SPEC["records"]:
        taken: set[str] = set()
        for quota in rec["quotas"]:
            n = values.sub_rng("quota", seed, rec["table"], quota["label"]).randrange(people)
            for _ in range(people):  # the next person free for this part (main() checks there is one)
                pid = person_ids[n]
                if pid not in taken and pid not in chosen and member.get(pid, quota.get("member")) == quota.get("member"):
                    break
                n = (n + 1) % people
            quota["person"] = person_ids[n]
            taken.add(person_ids[n])
            if quota.get("member"):
                member[person_ids[n]] = quota["member"]
    return chosen, member


__BALANCES__def build(seed: int, rows: int, people: int, clock: str, out: str) -> None:
    if os.path.exists(out):
        os.remove(out)  # never append to an old file: the output must depend on the arguments only
    lookup = {ref: (prefix, rows) for ref, prefix in SPEC["refs"].items()}  # other domains have `rows` rows too
    db = sqlite3.connect(out)
    for statement in SCHEMA:
        db.execute(statement)

    persons = values.person_rows(people, seed, clock)
    person_ids = [p["person_id"] for p in persons]
    insert(db, "person", persons)
    profiled, member = assign_people(person_ids, seed)
    owner = {f"profile:{i}": pid for i, pid in enumerate(profiled)}

    role = SPEC["role"]
    rng = table_rng(seed, role["table"])
    members = make_rows(role["attributes"], people, rng, clock, lookup)
    for pid, m in zip(person_ids, members):  # the profiles the rules on who asks need, whatever the draw
        force(m, role["attributes"], member.get(pid, {}), clock)
    insert(db, role["table"], [{"person_id": pid, **m} for pid, m in zip(person_ids, members)])

    tables: dict[str, list[dict[str, Any]]] = {}
    for ent in SPEC["entities"]:
        rng = table_rng(seed, ent["table"])
        count = max(ent["count"] or rows, len(ent["scenarios"]))  # every forced row fits
        generated = make_rows(ent["attributes"], count, rng, clock, lookup, ent["distinct"])
        for i, overrides in enumerate(ent["scenarios"][: len(generated)]):
            # forced rows are what scenario records point at: give them the category records need
            force(generated[i], ent["attributes"], {**ent["pinned"], **overrides}, clock)
        values.fit_pairs(generated, ent["pairs"], [{**ent["pinned"], **o} for o in ent["scenarios"]], rng)  # forced stay
        tables[ent["table"]] = [{ent["key"]: f"{ent['prefix']}-{i + 1:04d}", **r} for i, r in enumerate(generated)]
        insert(db, ent["table"], tables[ent["table"]])

    for rec in SPEC["records"]:
        rng = table_rng(seed, rec["table"])
        targets = tables[rec["target"]]
        out_rows = []
        # room for the forced scenarios plus each limit reached once, however small --rows is
        count = max(rows, len(rec["scenarios"]) + sum(q["limit"] for q in rec["quotas"]) + 1)
        for i, attrs in enumerate(make_rows(rec["attributes"], count, rng, clock, lookup)):
            target = rng.choice(targets)
            row = {rec["key"]: f"{rec['prefix']}-{i + 1:04d}", "person_id": rng.choice(person_ids),
                   rec["target_key"]: target[rec["target_key"]], **attrs}
            out_rows.append(row)
        # designated "full" people (assign_people): one per limit rule, spread by a stable hash
        taken = {q["person"] for q in rec["quotas"]} | set(profiled)
        full = {f"full:{q['label']}": q["person"] for q in rec["quotas"]} | owner
        # one person gets no forced rows and stays below every limit: a permitted create always exists
        room = next((p for p in reversed(person_ids) if p not in taken), None)
        free = [p for p in reversed(person_ids) if p not in taken and p != room] \
            or [p for p in person_ids if p not in taken] or person_ids
        forced: set[int] = set()
        fixed: dict[int, set[str]] = {}  # per row, the columns a scenario or a quota decided
        for i, scenario in enumerate(rec["scenarios"][: len(out_rows)]):
            row = out_rows[i]
            row["person_id"] = full.get(scenario["person"]) or free[i % len(free)]
            fixed[i] = set(scenario["set"])
            if scenario.get("target") is not None and scenario["target"] < len(targets):
                row[rec["target_key"]] = targets[scenario["target"]][rec["target_key"]]
                fixed[i].add(rec["target_key"])
            force(row, rec["attributes"], scenario["set"], clock)  # last: forced values win
            forced.add(i)
        if rec["linked"]:  # a record naming another record belongs to that record's person
            owner = {t[rec["target_key"]]: t["person_id"] for t in targets}
            for row in out_rows:
                row["person_id"] = owner[row[rec["target_key"]]]
        fit(rec, out_rows, fixed, targets, rng, clock)
        before = [r[rec["status_field"]] for r in out_rows]
        apply_quotas(rec, out_rows, forced, person_ids)
        for i, row in enumerate(out_rows):  # a status a quota set stays; its date follows it
            if row[rec["status_field"]] != before[i]:
                fixed.setdefault(i, set()).add(rec["status_field"])
        fit(rec, out_rows, fixed, targets, rng, clock)
__HOLD__        insert(db, rec["table"], out_rows)
        tables[rec["table"]] = out_rows  # a later record may name these rows
    add_lines(db, tables, seed)  # line items of records that have them, and those records' amounts
__SETTLE__
    db.commit()
    db.execute("VACUUM")
    db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate the __NAME__ database.")
    parser.add_argument("--seed", type=int, required=True, help="seed of every generator")
    parser.add_argument("--rows", type=int, required=True, help="rows per entity/record table (unless the catalog fixes a count)")
    parser.add_argument("--people", type=int, required=True, help="rows of the shared person table")
    parser.add_argument("--clock", required=True, help="simulation date, YYYY-MM-DD")
    parser.add_argument("--out", required=True, help="SQLite file to write (replaced)")
    args = parser.parse_args(argv)
    datetime.date.fromisoformat(args.clock)
    # one person per profile, one at each limit, one with room below it, one to own the forced rows
    needed = 2 + len(SPEC["role"]["profiles"]) + max([len(r["quotas"]) for r in SPEC["records"]], default=0)
    if args.rows < 1 or args.people < needed:
        parser.error(f"--rows must be positive and --people at least {needed}")
    build(args.seed, args.rows, args.people, args.clock, args.out)


if __name__ == "__main__":
    main()
'''


def database_program(domain: CatalogDomain, catalog: list[CatalogDomain]) -> str:
    """The source of `gen_db.py` for `domain`: stdlib only, deterministic for the same arguments.
    `catalog` resolves `{"ref": "Domain.Record"}` generators to that record's id prefix."""
    schema = ",\n".join("    " + lit(s) for s in schema_sql(domain))
    settled = [n for n, has in (("balances", domain.balances), ("refunds", refund_spec(domain))) if has]
    held = any(r.holds for r in domain.records)  # a record holding its target alone: hold() as each table is made
    source = (_SCRIPT.replace("__NAME__", domain.name)
              .replace("__SCHEMA__", schema)
              .replace("__SPEC__", block(_spec(domain, catalog), 0, len("SPEC: dict[str, Any] = ")))
              .replace("__VALUES__", _embed(_values_source()))
              # balances and refunds: settled after the records they follow (world/builtin/dbgen_*.py.tmpl)
              .replace("__BALANCES__", "".join(template_text(f"dbgen_{n}") + "\n\n" for n in settled + ["holdings"] * held))
              .replace("__SETTLE__\n", "".join({"balances": "    settle_balances(db, tables, member)\n",
                                                "refunds": "    settle_refunds(db, clock)\n"}[n] for n in settled))
              .replace("__HOLD__", "        hold(db, rec, out_rows, fixed, targets, rng, clock)\n" * held)
              .replace("\n\ndef main(", template_text("gen_db_lines").rstrip("\n") + "\n\n\ndef main(", 1))
    compile(source, "gen_db.py", "exec")
    return source
