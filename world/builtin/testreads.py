"""Generated tests of read tools: each returns what the database holds, and rejects unknown ids."""
from __future__ import annotations


from skiller.world.catalog.model import CatalogRecord, CatalogTool
from skiller.world.builtin.codegen import (
    browse_ceiling,
    find,
    id_column,
    label,
    lit,
    snake,
    tool_parameters,
)
from skiller.world.builtin.lineitems import lines_of
from skiller.world.builtin.lineitems_tests import returned_src
from skiller.world.builtin.testbase import WriterBase, _wrong_type


class ReadTests(WriterBase):
    def _t_get_profile(self, tool: CatalogTool) -> list[str]:
        n = tool.name
        return [
            f"def test_{n}_returns_person_and_{self.role}(db):",
            f'    pid = pick(db, "SELECT person_id FROM {self.role} ORDER BY person_id")',
            f"    out = call(db, {lit(n)}, person_id=pid)",
            f'    assert out == {{**fetch(db, "person", "person_id", pid), **fetch(db, {lit(self.role)}, "person_id", pid)}}',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{"person_id": pick(db, "SELECT person_id FROM {self.role} ORDER BY person_id")}}',
            *self._bad_id_tests(tool, "person_id", "args", "Person", "P-9999"),
        ]

    def _t_get(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        table, key, n = snake(item.name), id_column(item.name), tool.name
        lines = lines_of(self.domain, item.name)  # a record with line items comes with them
        expected = f"fetch(db, {lit(table)}, {lit(key)}, key)"
        return [
            f"def test_{n}_returns_the_row(db):",
            f'    for key in ids(db, "SELECT {key} FROM {table} ORDER BY {key} LIMIT 3"):',
            f"        assert call(db, {lit(n)}, {key}=key) == {returned_src(lines, 'key') if lines else expected}",
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{{lit(key)}: pick(db, "SELECT {key} FROM {table} ORDER BY {key}")}}',
            *self._bad_id_tests(tool, key, "args", label(item.name), f"{item.id_prefix}-9999"),
        ]

    def _t_search(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        table, key, n = snake(item.name), id_column(item.name), tool.name
        params = tool_parameters(self.domain, tool)["properties"]
        lines = [
            f"def test_{n}_filters_exactly_sorted_and_limited(db):",
            f"    everything = call(db, {lit(n)})",
            f'    assert [r[{lit(key)}] for r in everything] == ids(db, "SELECT {key} FROM {table} ORDER BY {key} LIMIT 20")',
            f"    assert all(r == fetch(db, {lit(table)}, {lit(key)}, r[{lit(key)}]) for r in everything)",
        ]
        for f in tool.fields:
            conv = "bool" if params[f]["type"] == "boolean" else ""
            lines += [
                f'    value = {conv}(pick(db, "SELECT {f} FROM {table} ORDER BY {key}"))',
                f"    rows = call(db, {lit(n)}, {f}=value)",
                f"    assert rows and all(r[{lit(f)}] == value for r in rows)",
                f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE {f} = ? ORDER BY {key} LIMIT 20", value)',
            ]
        lines += ["", "", f"def test_{n}_rejects_bad_arguments(db):"]
        for f in tool.fields:
            lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: {lit(_wrong_type(params[f]))}}}, {lit(f)})")
            if "enum" in params[f]:
                lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: \"not a listed value\"}}, {lit(f)})")
        lines.append(f"    rejected(db, {lit(n)}, {{\"no_such_parameter\": 1}}, \"no_such_parameter\")")
        return lines

    def _t_list_records(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        table, key, n, sf = snake(rec.name), id_column(rec.name), tool.name, rec.status_field
        return [
            f"def test_{n}_lists_the_persons_records(db):",
            f'    pid = pick(db, "SELECT person_id FROM {table} ORDER BY {key}")',
            f"    rows = call(db, {lit(n)}, person_id=pid)",
            f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE person_id = ? ORDER BY {key}", pid)',
            f"    assert all(r == fetch(db, {lit(table)}, {lit(key)}, r[{lit(key)}]) for r in rows)",
            f'    status = pick(db, "SELECT {sf} FROM {table} WHERE person_id = ? ORDER BY {key}", pid)',
            f"    rows = call(db, {lit(n)}, person_id=pid, {sf}=status)",
            f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE person_id = ? AND {sf} = ? ORDER BY {key}", pid, status)',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{"person_id": pick(db, "SELECT person_id FROM {table} ORDER BY {key}")}}',
            *self._bad_id_tests(tool, "person_id", "args", label(self.domain.role), "P-9999"),
            f"    rejected(db, {lit(n)}, {{**args, {lit(sf)}: \"not a listed value\"}}, {lit(sf)})",
        ]

    def _t_summary(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        table, key, n, sf, amount = snake(rec.name), id_column(rec.name), tool.name, rec.status_field, tool.amount_field
        total = f"round(sum(float(v or 0) for v in ids(db, \"SELECT {amount} FROM {table} WHERE person_id = ?{{}}\", {{}})), 2)"
        return [
            f"def test_{n}_counts_and_totals_the_persons_records(db):",
            f'    pid = pick(db, "SELECT person_id FROM {table} GROUP BY person_id ORDER BY COUNT(*) DESC, person_id")',
            f"    out = call(db, {lit(n)}, person_id=pid)",
            f'    statuses = ids(db, "SELECT {sf} FROM {table} WHERE person_id = ?", pid)',
            f'    assert out["count"] == len(statuses) >= 1 and out["person_id"] == pid',
            f'    assert out["by_status"] == {{s: statuses.count(s) for s in sorted(set(statuses))}}',
            f'    assert out[{lit("total_" + amount)}] == ' + total.format("", "pid"),
            f'    status = pick(db, "SELECT {sf} FROM {table} WHERE person_id = ? ORDER BY {key}", pid)',
            f"    out = call(db, {lit(n)}, person_id=pid, {sf}=status)",
            f'    assert out["count"] == statuses.count(status) and out["by_status"] == {{status: statuses.count(status)}}',
            f'    assert out[{lit("total_" + amount)}] == ' + total.format(f" AND {sf} = ?", "pid, status"),
            f'    empty = pick(db, "SELECT person_id FROM {self.role} WHERE person_id NOT IN (SELECT person_id FROM {table}) '
            f'UNION SELECT \'\' ORDER BY 1 DESC")',
            "    if empty:  # a person without any: zero, not an error",
            f'        assert call(db, {lit(n)}, person_id=empty) == {{"person_id": empty, {lit(sf)}: None, "count": 0, '
            f'{lit("total_" + amount)}: 0, "by_status": {{}}}}',
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f'    args = {{"person_id": pick(db, "SELECT person_id FROM {table} ORDER BY {key}")}}',
            *self._bad_id_tests(tool, "person_id", "args", label(self.domain.role), "P-9999"),
            f"    rejected(db, {lit(n)}, {{**args, {lit(sf)}: \"not a listed value\"}}, {lit(sf)})",
        ]

    def _t_browse(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        table, key, n, amount = snake(item.name), id_column(item.name), tool.name, tool.amount_field
        ceiling = browse_ceiling(tool)
        params = tool_parameters(self.domain, tool)["properties"]
        order = f"ORDER BY {amount}, {key} LIMIT 20"
        lines = [
            f"def test_{n}_filters_caps_and_sorts_cheapest_first(db):",
            f"    everything = call(db, {lit(n)})",
            f'    assert [r[{lit(key)}] for r in everything] == ids(db, "SELECT {key} FROM {table} WHERE {amount} IS NOT NULL {order}")',
            f"    assert all(r == fetch(db, {lit(table)}, {lit(key)}, r[{lit(key)}]) for r in everything)",
            f'    cap = pick(db, "SELECT MAX({amount}) FROM (SELECT {amount} FROM {table} WHERE {amount} IS NOT NULL ORDER BY {amount} LIMIT 4)")',
            f"    rows = call(db, {lit(n)}, {ceiling}=cap)",
            f'    assert rows and [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE {amount} <= ? {order}", cap)',
        ]
        for f in tool.fields:
            conv = "bool" if params[f]["type"] == "boolean" else ""
            lines += [
                f'    value = {conv}(pick(db, "SELECT {f} FROM {table} WHERE {amount} IS NOT NULL ORDER BY {key}"))',
                f"    rows = call(db, {lit(n)}, {f}=value, {ceiling}=cap)",
                f"    assert all(r[{lit(f)}] == value and r[{lit(amount)}] <= cap for r in rows)",
                f'    assert [r[{lit(key)}] for r in rows] == ids(db, "SELECT {key} FROM {table} WHERE {f} = ? AND {amount} <= ? {order}", value, cap)',
            ]
        lines += ["", "", f"def test_{n}_rejects_bad_arguments(db):"]
        for f in [*tool.fields, ceiling]:
            lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: {lit(_wrong_type(params[f]))}}}, {lit(f)})")
            if "enum" in params[f]:
                lines.append(f"    rejected(db, {lit(n)}, {{{lit(f)}: \"not a listed value\"}}, {lit(f)})")
        lines.append(f"    rejected(db, {lit(n)}, {{\"no_such_parameter\": 1}}, \"no_such_parameter\")")
        return lines
