"""The builtin compiler's line-item tools: create_items (a record and its lines in one call, all or nothing) and
cancel_item (one line cancelled, the record's amount recomputed); a record with lines is returned with them."""
from __future__ import annotations

from skiller.world.builtin.lineitems import ITEMS, LineCheck, Lines, guard_statuses, line_checks, lines_of
from skiller.world.builtin.toolmodel import find, id_column, label, lit, new_row, snake, words
from skiller.world.catalog.model import CatalogDomain, CatalogTool

__all__ = ["LineCompiler"]


def _fails(c: LineCheck, x: str) -> str:
    """The Python condition under which line check `c` fails for the value `x`."""
    if c.kind == "flag":
        value = c.values[0]
        return f"{x} {'is not' if isinstance(value, bool) or value is None else '!='} {lit(value)}"
    if c.kind == "status":
        return f"{x} not in {lit(list(c.values))}"
    lo, hi = c.lo, c.hi
    num = lambda v: repr(int(v)) if float(v).is_integer() else repr(v)  # noqa: E731
    if lo is not None and hi is not None:
        return f"not ({num(lo)} <= {x} <= {num(hi)})"
    return f"{x} < {num(lo)}" if lo is not None else (f"{x} > {num(hi)}" if hi is not None else "False")


class LineCompiler:
    """Mixed into the compiler (skiller.world.builtin.codegen): one method per line-item tool kind."""

    domain: CatalogDomain
    role_table: str

    def _lines(self, tool: CatalogTool) -> Lines:
        lines = lines_of(self.domain, tool.entity)
        assert lines is not None, f"{self.domain.name}: {tool.name} names {tool.entity}, which has no lines"
        return lines

    def returned(self, lines: Lines, row: str) -> str:
        return f"_with_lines(db, {row}, {lit(lines.table)}, {lit(lines.parent_key)}, {lit(lines.key)})"

    def _create_items(self, tool: CatalogTool) -> list[str]:
        x = self._lines(tool)
        rec, target = x.rec, find(self.domain, x.rec.target)
        tkey, table, key = id_column(target.name), x.parent_table, x.parent_key
        lines = [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f"_require(db, {lit(snake(target.name))}, {lit(tkey)}, a[{lit(tkey)}], {lit(label(target.name))})",
            f"lines = _order_lines(db, a[{lit(ITEMS)}], {lit(x.target_table)}, {lit(x.target_key)}, "
            f"{lit(label(x.target.name))}, {lit(x.spec.price)})",
        ]
        found = line_checks(self.domain, tool)
        if found:  # every line keeps every rule: one refused line refuses the whole order
            lines.append(f"for {'item' if any(c.kind == 'flag' for c in found) else '_'}, quantity in lines:")
            for c in found:
                x_ = f"item[{lit(c.field)}]" if c.kind == "flag" else "quantity"
                lines += [f"    # {c.rule.id}: {c.rule.statement}", f"    if {_fails(c, x_)}:",
                          f"        _violation({lit(c.rule.id)}, {lit(c.rule.statement)})"]
        row = new_row(tool, rec, key, tkey)
        row[x.spec.amount] = "0.0"  # set from the lines once they are written
        lines += [f"new_id = _next_id(db, {lit(table)}, {lit(key)}, {lit(rec.id_prefix)})", "row = {",
                  *[f"    {lit(k)}: {v}," for k, v in row.items()], "}", f"_insert(db, {lit(table)}, row)",
                  f"_add_lines(db, {lit(x.table)}, {lit(x.key)}, {lit(x.spec.id_prefix)}, ({lit(key)}, new_id), "
                  f"{lit(x.target_key)}, {lit(x.spec.price)}, lines)",
                  f"# the {words(x.spec.amount)} is the sum of the lines: each the {words(x.target.name)}'s "
                  f"{words(x.spec.price)} x its quantity, rounded to cents",
                  f"_update(db, {lit(table)}, {lit(key)}, new_id, {{{lit(x.spec.amount)}: "
                  f"_line_total(db, {lit(x.table)}, {lit(key)}, new_id)}})",
                  f"return {self.returned(x, f'_require(db, {lit(table)}, {lit(key)}, new_id, {lit(label(rec.name))})')}"]
        return lines

    def _cancel_item(self, tool: CatalogTool) -> list[str]:
        x = self._lines(tool)
        rec, table, key, sf = x.rec, x.parent_table, x.parent_key, x.rec.status_field
        lines = [
            f"line = _require(db, {lit(x.table)}, {lit(x.key)}, a[{lit(x.key)}], {lit(x.label)})",
            f"row = _require(db, {lit(table)}, {lit(key)}, line[{lit(key)}], {lit(label(rec.name))})",
        ]
        for c in line_checks(self.domain, tool):
            lines += [f"# {c.rule.id}: {c.rule.statement}", f"if {_fails(c, f'row[{lit(sf)}]')}:",
                      f"    _violation({lit(c.rule.id)}, {lit(c.rule.statement)})"]
        allowed = guard_statuses(self.domain, tool)
        if allowed:
            lines += [f"if row[{lit(sf)}] not in {lit(allowed)}:",
                      f'    raise ToolError(f"Cannot cancel a line of {words(rec.name)} {{row[{key!r}]}} in status '
                      f'{{row[{sf!r}]}} (allowed: {", ".join(allowed)})")']
        lines += [
            f'if line["line_status"] == "cancelled":',
            f'    raise ToolError(f"{x.label} {{line[{x.key!r}]}} is already cancelled")',
            f'if len(_select(db, {lit(x.table)}, {{{lit(key)}: row[{lit(key)}], "line_status": "active"}})) == 1:',
            f'    raise ToolError(f"{x.label} {{line[{x.key!r}]}} is the only active line of {words(rec.name)} '
            f'{{row[{key!r}]}}: cancel the {words(rec.name)} instead")',
            f'_update(db, {lit(x.table)}, {lit(x.key)}, line[{lit(x.key)}], {{"line_status": "cancelled"}})',
            f"# the {words(x.spec.amount)} is recomputed: the sum of the lines still active",
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {{{lit(x.spec.amount)}: "
            f"_line_total(db, {lit(x.table)}, {lit(key)}, row[{lit(key)}])}})",
            f"return {self.returned(x, f'_require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(rec.name))})')}",
        ]
        return lines
