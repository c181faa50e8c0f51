"""Generated tests of line-item tools: a multi-item create writes the record and every line priced from its
target (or, refused, nothing at all); cancelling a line recomputes the record's amount; each rule refuses."""
from __future__ import annotations

from skiller.world.builtin.lineitems import ITEMS, LINE_STATUS, QUANTITY, Lines, guard_statuses, line_checks, lines_of
from skiller.world.builtin.testbase import WriterBase, _field_rejections, _ident, _q
from skiller.world.builtin.toolmodel import find, id_column, label, lit, snake, tool_parameters
from skiller.world.catalog.model import CatalogTool

__all__ = ["LineTests", "returned_src"]

_ACTIVE, _CANCELLED = _q("active"), _q("cancelled")


def returned_src(x: Lines, key_src: str) -> str:
    """The expected output of a tool returning record `key_src` with its lines, read by SQL."""
    return (f"{{**fetch(db, {lit(x.parent_table)}, {lit(x.parent_key)}, {key_src}), {lit(ITEMS)}: "
            f"[fetch(db, {lit(x.table)}, {lit(x.key)}, i) for i in ids(db, "
            f"\"SELECT {x.key} FROM {x.table} WHERE {x.parent_key} = ? ORDER BY {x.key}\", {key_src})]}}")


class LineTests(WriterBase):
    def _x(self, tool: CatalogTool) -> Lines:
        x = lines_of(self.domain, tool.entity)
        assert x is not None
        return x

    def _t_create_items(self, tool: CatalogTool) -> list[str]:
        x, n = self._x(tool), tool.name
        parent = find(self.domain, x.rec.target)
        pkey, found = id_column(parent.name), line_checks(self.domain, tool)
        flags = [f"{c.field} = {_q(c.values[0])}" for c in found if c.kind == "flag"]
        good = " AND ".join([f"{x.spec.price} IS NOT NULL", *flags])
        qmax = min([int(c.hi) for c in found if c.kind == "quantity" and c.hi is not None] or [3])
        quantities = [1, min(2, qmax)]
        fields = self.good_args(tool, x.rec)
        rest = "".join(f", {lit(k)}: {lit(v)}" for k, v in fields.items())
        setup = [
            f'    person = pick(db, "SELECT person_id FROM {self.role} ORDER BY person_id")',
            f'    target = pick(db, "SELECT {pkey} FROM {snake(parent.name)} ORDER BY {pkey}")',
            f'    goods = ids(db, "SELECT {x.target_key} FROM {x.target_table} WHERE {good} ORDER BY {x.target_key} LIMIT 2")',
            "    assert len(goods) == 2",
            f'    args = {{"person_id": person, {lit(pkey)}: target{rest}, {lit(ITEMS)}: '
            f"[{{{lit(x.target_key)}: g, {lit(QUANTITY)}: q}} for g, q in zip(goods, {lit(quantities)})]}}",
        ]
        fixed = {**tool.defaults}
        fixed.setdefault(x.rec.status_field, x.rec.statuses[0])
        lines = [
            f"def test_{n}_creates_the_{x.parent_table}_and_its_lines(db):",
            *setup,
            f'    count = pick(db, "SELECT COUNT(*) FROM {x.parent_table}")',
            f"    new_id = next_id(db, {lit(x.parent_table)}, {lit(x.parent_key)}, {lit(x.rec.id_prefix)})",
            f"    first = next_id(db, {lit(x.table)}, {lit(x.key)}, {lit(x.spec.id_prefix)})",
            f"    out = call(db, {lit(n)}, **args)",
            f"    assert out == {returned_src(x, 'new_id')}",
            f'    assert pick(db, "SELECT COUNT(*) FROM {x.parent_table}") == count + 1',
            f"    row, lines = fetch(db, {lit(x.parent_table)}, {lit(x.parent_key)}, new_id), out[{lit(ITEMS)}]",
            f'    assert row["person_id"] == person and row[{lit(pkey)}] == target',
            *[f"    assert row[{lit(f)}] == args[{lit(f)}]" for f in fields],
            *[f"    assert row[{lit(f)}] == {lit(v)}" for f, v in fixed.items()],
            f"    assert [r[{lit(x.target_key)}] for r in lines] == goods and [r[{lit(QUANTITY)}] for r in lines] == {lit(quantities)}",
            f"    assert lines[0][{lit(x.key)}] == first",
            "    for line in lines:  # priced from the target, computed here as the data rule states it",
            f"        unit = fetch(db, {lit(x.target_table)}, {lit(x.target_key)}, line[{lit(x.target_key)}])[{lit(x.spec.price)}]",
            f'        assert line["unit_price"] == round(unit, 2) and line[{lit(LINE_STATUS)}] == "active"',
            f'        assert line["line_amount"] == round(round(unit, 2) * line[{lit(QUANTITY)}], 2)',
            f'    assert row[{lit(x.spec.amount)}] == round(sum(r["line_amount"] for r in lines), 2)',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments_and_writes_nothing(db):",
            *setup,
            "    line = args[\"items\"][0]",
            f'    rejected(db, {lit(n)}, {{**args, "person_id": "P-9999"}}, "P-9999 not found")',
            f'    rejected(db, {lit(n)}, {{**args, {lit(pkey)}: "{parent.id_prefix}-9999"}}, "{parent.id_prefix}-9999 not found")',
            f'    rejected(db, {lit(n)}, {{**args, "items": [line, {{{lit(x.target_key)}: "{x.target.id_prefix}-9999", '
            f'"quantity": 1}}]}}, "{x.target.id_prefix}-9999 not found")  # the first line alone would pass',
            f'    rejected(db, {lit(n)}, {{**args, "items": [line, line]}}, "listed twice")',
            f'    rejected(db, {lit(n)}, {{**args, "items": []}}, "items")',
            f'    rejected(db, {lit(n)}, {{**args, "items": [line] * {x.spec.max_lines + 1}}}, "items")',
            f'    rejected(db, {lit(n)}, {{**args, "items": goods[0]}}, "items")',
            f'    rejected(db, {lit(n)}, {{k: v for k, v in args.items() if k != "items"}}, "items")',
            f'    rejected(db, {lit(n)}, {{**args, "items": [{{{lit(x.target_key)}: goods[0]}}]}}, "quantity")',
            f'    rejected(db, {lit(n)}, {{**args, "items": [{{**line, "quantity": "2"}}]}}, "quantity")',
            f'    rejected(db, {lit(n)}, {{**args, "items": [{{**line, "quantity": 0}}]}}, "quantity")',
            f'    rejected(db, {lit(n)}, {{**args, "items": [{{**line, "colour": "red"}}]}}, "colour")',
            f'    rejected(db, {lit(n)}, {{**args, "no_such_parameter": 1}}, "no_such_parameter")',
            *_field_rejections(n, tool_parameters(self.domain, tool)["properties"], list(fields)),
        ]
        for c in found:
            lines += ["", "", f"def test_{n}_enforces_{_ident(c.rule.id)}(db):  # on every line", *setup]
            if c.kind == "flag":
                lines += [f'    bad = pick(db, "SELECT {x.target_key} FROM {x.target_table} WHERE {x.spec.price} IS NOT NULL '
                          f'AND {c.field} IS NOT {_q(c.values[0])} ORDER BY {x.target_key}")',
                          f'    rejected(db, {lit(n)}, {{**args, "items": [args["items"][0], {{{lit(x.target_key)}: bad, '
                          f'"quantity": 1}}]}}, {lit(c.rule.id)})  # one refused line refuses the whole order']
            else:
                bad = [int(v) for v in ([c.hi + 1] if c.hi is not None else []) + ([c.lo - 1] if c.lo is not None else []) if v >= 1]
                lines += [f"    for bad in {lit(bad)}:",
                          f'        rejected(db, {lit(n)}, {{**args, "items": [args["items"][0], {{**args["items"][1], '
                          f'"quantity": bad}}]}}, {lit(c.rule.id)})']
        return lines

    def _t_cancel_item(self, tool: CatalogTool) -> list[str]:
        x, n = self._x(tool), tool.name
        sf, found = x.rec.status_field, line_checks(self.domain, tool)
        ruled = [set(c.values) for c in found if c.kind == "status"]
        open_ = [s for s in tool.from_statuses if all(s in r for r in ruled)]
        allowed = ruled[0].intersection(*ruled[1:]) if ruled else set(x.rec.statuses)
        active = f"(SELECT COUNT(*) FROM {x.table} o WHERE o.{x.parent_key} = l.{x.parent_key} AND o.{LINE_STATUS} = 'active')"

        def line_sql(statuses: str, extra: str) -> str:
            return (f"SELECT l.{x.key} FROM {x.table} l JOIN {x.parent_table} r ON r.{x.parent_key} = l.{x.parent_key} "
                    f"WHERE r.{sf} {statuses} AND {extra} ORDER BY l.{x.key}")

        inside = "IN (" + ", ".join(_q(s) for s in open_) + ")"
        lines = [
            f"def test_{n}_cancels_one_line_and_recomputes_the_{_ident(x.spec.amount)}(db):",
            f"    line = pick(db, {lit(line_sql(inside, f'l.{LINE_STATUS} = {_ACTIVE} AND {active} >= 2'))})",
            f"    parent = fetch(db, {lit(x.table)}, {lit(x.key)}, line)[{lit(x.parent_key)}]",
            "    before = state(db)",
            f"    out = call(db, {lit(n)}, {x.key}=line)",
            f"    assert out == {returned_src(x, 'parent')}",
            f'    assert fetch(db, {lit(x.table)}, {lit(x.key)}, line)[{lit(LINE_STATUS)}] == "cancelled"',
            f'    live = [r["line_amount"] for r in out[{lit(ITEMS)}] if r[{lit(LINE_STATUS)}] == "active"]',
            f"    assert live and out[{lit(x.spec.amount)}] == round(sum(live), 2)",
            "    after = state(db)  # that line's status and the record's amount, nothing else",
            f"    assert {{t: v for t, v in after.items() if t not in {lit([x.table, x.parent_table])}}} == "
            f"{{t: v for t, v in before.items() if t not in {lit([x.table, x.parent_table])}}}",
            f"    assert len([r for r in after[{lit(x.table)}] if r not in before[{lit(x.table)}]]) == 1",
            f"    assert len([r for r in after[{lit(x.parent_table)}] if r not in before[{lit(x.parent_table)}]]) <= 1",
            "",
            "",
            f"def test_{n}_refuses_a_cancelled_or_last_line(db):",
            f"    line = pick(db, {lit(line_sql(inside, f'l.{LINE_STATUS} = {_CANCELLED}'))})",
            f'    rejected(db, {lit(n)}, {{{lit(x.key)}: line}}, "already cancelled")',
            f"    line = pick(db, {lit(line_sql(inside, f'l.{LINE_STATUS} = {_ACTIVE} AND {active} = 1'))})",
            f'    rejected(db, {lit(n)}, {{{lit(x.key)}: line}}, "only active line")',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{{lit(x.key)}: pick(db, "SELECT {x.key} FROM {x.table} ORDER BY {x.key}")}}',
            *self._bad_id_tests(tool, x.key, "args", label(x.spec.name), f"{x.spec.id_prefix}-9999"),
        ]
        for c in found:
            outside = "NOT IN (" + ", ".join(_q(s) for s in c.values) + ")"
            lines += ["", "", f"def test_{n}_enforces_{_ident(c.rule.id)}(db):",
                      f"    line = pick(db, {lit(line_sql(outside, f'l.{LINE_STATUS} = {_ACTIVE}'))})",
                      f"    rejected(db, {lit(n)}, {{{lit(x.key)}: line}}, {lit(c.rule.id)})"]
        guarded = sorted(allowed - set(guard_statuses(self.domain, tool))) if guard_statuses(self.domain, tool) else []
        if guarded:
            wrong = "IN (" + ", ".join(_q(s) for s in guarded) + ")"
            lines += ["", "", f"def test_{n}_refuses_a_line_of_a_{_ident(x.parent_table)}_in_a_wrong_status(db):",
                      f"    line = pick(db, {lit(line_sql(wrong, '1 = 1'))})",
                      f'    rejected(db, {lit(n)}, {{{lit(x.key)}: line}}, "status")']
        return lines
