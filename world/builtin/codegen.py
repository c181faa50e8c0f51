"""The builtin compiler: a catalog domain becomes its implementation module (the environment contract)."""
from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

from skiller.world.builtin.balances import balance_code
from skiller.world.builtin.refunds import refund_code
from skiller.world.builtin.holdings import holding
from skiller.world.builtin.toolchecks import Check, checks, fee_check
from skiller.world.builtin.lineitems import line_records, lines_of
from skiller.world.builtin.lineitems_code import LineCompiler
from skiller.world.builtin.toolmodel import (
    PAYMENT_METHODS, READ_KINDS, SEARCH_LIMIT, _int, amount_source, attribute, block, browse_ceiling, charged, choices,
    find, formula, id_column, label, linked, lit, new_row, owned, pay_field, pricing, snake, tool_parameters, words,
)
from skiller.world.catalog.model import CatalogDomain, CatalogEntity, CatalogPricing, CatalogRecord, CatalogRule, CatalogTool

# The generators beside this one import the shared tool model through here too.
__all__ = [
    "PAYMENT_METHODS", "READ_KINDS", "SEARCH_LIMIT", "Check", "amount_source", "attribute", "block", "bool_columns",
    "browse_ceiling", "charged", "checks", "choices", "fee_check", "find", "formula", "id_column",
    "implementation_module", "label", "linked", "lit", "owned", "pay_field", "pricing", "snake", "template_text",
    "tool_parameters",
    "words",
]


def template_text(name: str) -> str:
    """Generated-code text kept in its own file (world/builtin/*.py.tmpl), read once by each generator."""
    return (Path(__file__).parent / f"{name}.py.tmpl").read_text(encoding="utf-8")


_PRELUDE = template_text("impl_prelude")
_EPILOGUE = template_text("impl_tail")
_CHARGE = template_text("impl_charge")
_FEE = template_text("impl_fee")
_LINES = template_text("impl_lines")


# ---------------------------------------------------------------- tool compilers
class _Compiler(LineCompiler):
    """Emits one tool function per catalog tool (line-item kinds: skiller.world.builtin.lineitems_code)."""

    def __init__(self, domain: CatalogDomain) -> None:
        self.domain = domain
        self.role_table = snake(domain.role)

    def rules_of(self, tool: CatalogTool) -> list[CatalogRule]:
        return [r for r in self.domain.rules if r.tool == tool.name]

    def function(self, tool: CatalogTool) -> str:
        body = getattr(self, f"_{tool.kind}")(tool)
        body = balance_code(self.domain, tool, refund_code(self.domain, tool, body))  # a refund; a balance used or given back
        fee = fee_check(self.domain, tool)
        if fee is not None:  # the computed fee is part of the answer: the caller must tell the customer
            source = f"a[{lit(fee.field)}]" if fee.subject == "arg" else f"row[{lit(fee.field)}]"
            assert body[-1].startswith("return "), tool.name
            body[-1:] = [f"# the fee is {_num(fee.percent)}% of {words(fee.field or '')}, rounded to cents",
                         f"return {{**{body[-1][len('return '):]}, \"fee\": _fee({source}, {_num(fee.percent)})}}"]
        head = [
            f"def {tool.name}(db: sqlite3.Connection, **args: Any) -> {'list[dict[str, Any]]' if tool.kind in ('search', 'list_records', 'browse') else 'dict[str, Any]'}:",
            f'    """{_doc(tool.description)}"""',
            f"    a = _check_args({lit(tool.name)}, args)",
        ]
        return "\n".join(head + ["    " + line if line else "" for line in body]) + "\n"

    # -- reads
    def _get_profile(self, tool: CatalogTool) -> list[str]:
        role = self.domain.role
        return [
            'person = _require(db, "person", "person_id", a["person_id"], "Person")',
            f'member = _require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(role))})',
            "return {**person, **member}",
        ]

    def _get(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key = id_column(item.name)
        row = f"_require(db, {lit(snake(item.name))}, {lit(key)}, a[{lit(key)}], {lit(label(item.name))})"
        lines = lines_of(self.domain, item.name)  # a record with line items comes with them
        return [f"return {self.returned(lines, row) if lines else row}"]

    def _search(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        filters = ", ".join(f"{lit(f)}: a[{lit(f)}]" for f in tool.fields)
        return [
            f"# exact match on every filter given; at most {SEARCH_LIMIT} rows, ordered by id",
            f"return _select(db, {lit(snake(item.name))}, {{{filters}}}, order_by={lit(id_column(item.name))}, limit={SEARCH_LIMIT})",
        ]

    def _list_records(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        assert isinstance(item, CatalogRecord)
        sf = item.status_field
        return [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f'return _select(db, {lit(snake(item.name))}, {{"person_id": a["person_id"], {lit(sf)}: a[{lit(sf)}]}}, '
            f"order_by={lit(id_column(item.name))})",
        ]

    def _summary(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        assert isinstance(item, CatalogRecord) and tool.amount_field
        sf, amount = item.status_field, tool.amount_field
        return [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f'rows = _select(db, {lit(snake(item.name))}, {{"person_id": a["person_id"], {lit(sf)}: a[{lit(sf)}]}})',
            "by_status: dict[str, int] = {}",
            "for r in rows:",
            f"    by_status[r[{lit(sf)}]] = by_status.get(r[{lit(sf)}], 0) + 1",
            f"# the total adds the stored {words(amount)} of every counted row (missing counts as 0), rounded to cents",
            f'return {{"person_id": a["person_id"], {lit(sf)}: a[{lit(sf)}], "count": len(rows),',
            f'        "total_{amount}": round(sum(float(r[{lit(amount)}] or 0) for r in rows), 2),',
            '        "by_status": dict(sorted(by_status.items()))}',
        ]

    def _browse(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, amount, ceiling = id_column(item.name), tool.amount_field or "", browse_ceiling(tool)
        filters = ", ".join(f"{lit(f)}: a[{lit(f)}]" for f in tool.fields)
        return [
            f"# exact match on every filter given, {words(amount)} at most the ceiling; cheapest first, then by id",
            f"rows = _select(db, {lit(snake(item.name))}, {{{filters}}})",
            f"rows = [r for r in rows if r[{lit(amount)}] is not None and (a[{lit(ceiling)}] is None or r[{lit(amount)}] <= a[{lit(ceiling)}])]",
            f"rows.sort(key=lambda r: (r[{lit(amount)}], r[{lit(key)}]))",
            f"return rows[:{SEARCH_LIMIT}]",
        ]

    # -- writes
    def _create(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        target = find(self.domain, rec.target)
        tkey, key, table = id_column(target.name), id_column(rec.name), snake(rec.name)
        lines = [
            f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})',
            f"target = _require(db, {lit(snake(target.name))}, {lit(tkey)}, a[{lit(tkey)}], {lit(label(target.name))})",
        ]
        if linked(self.domain, rec):  # a record naming another record: only that record's person may
            lines += ['if target["person_id"] != a["person_id"]:',
                      f'    raise ToolError(f"{label(target.name)} {{target[{tkey!r}]}} belongs to another person")']
        lines += self._checks(tool, rec)
        row = new_row(tool, rec, key, tkey)
        amount_note: list[str] = []
        price = charged(self.domain, tool)
        if price is not None:
            amount_note = [f"# the amount is {formula(price, words(target.name))} at booking time"]
            row[price.amount] = self._charge(price, "target", f"a[{lit(price.quantity)}]" if price.quantity else "1")
        elif tool.amount_field and tool.amount_field not in row:
            column, fallback = amount_source(self.domain, rec, tool.amount_field)
            if column:
                amount_note = [f"# the amount is the {words(target.name)}'s {column.replace('_', ' ')} at booking time"]
                row[tool.amount_field] = f"target[{lit(column)}]"
            else:
                amount_note = [f"# no priced attribute on {words(target.name)}: fixed amount, the midpoint of the catalog range"]
                row[tool.amount_field] = lit(fallback)
        lines.append(f"new_id = _next_id(db, {lit(table)}, {lit(key)}, {lit(rec.id_prefix)})")
        lines += amount_note
        lines.append("row = {")
        lines += [f"    {lit(k)}: {v}," for k, v in row.items()]
        lines.append("}")
        lines.append(f"_insert(db, {lit(table)}, row)")
        if holding(self.domain, tool):  # the new record holds its target alone: no longer available
            lines.append(f"_update(db, {lit(snake(target.name))}, {lit(tkey)}, a[{lit(tkey)}], {{{lit(rec.holds.flag)}: False}})"
                         f"  # the {words(target.name)} is taken")
        lines.append(f"return _require(db, {lit(table)}, {lit(key)}, new_id, {lit(label(rec.name))})")
        return lines

    @staticmethod
    def _charge(price: CatalogPricing, target: str, quantity: str) -> str:
        fixed = f", {target}[{lit(price.fixed)}]" if price.fixed else ""
        return f"_charge({target}[{lit(price.price)}], {quantity}{fixed})"

    def _load_row(self, item: CatalogEntity | CatalogRecord) -> list[str]:
        key = id_column(item.name)
        return [f"row = _require(db, {lit(snake(item.name))}, {lit(key)}, a[{lit(key)}], {lit(label(item.name))})"]

    def _set_status(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, table = id_column(item.name), snake(item.name)
        sf = item.status_field if isinstance(item, CatalogRecord) else "status"
        freed: list[str] = []
        if (h := holding(self.domain, tool)) is not None:  # taking or letting go of a target held alone
            held, tkey = h.record.holds, id_column(h.record.target)
            update = (f"_update(db, {lit(snake(h.record.target))}, {lit(tkey)}, row[{lit(tkey)}], "
                      f"{{{lit(held.flag)}: {not h.taking}}})  # its {words(h.record.target)} is "
                      f"{'taken' if h.taking else 'free again'}")
            freed = [update] if h.always else \
                [f"if row[{lit(sf)}] {'not in' if h.taking else 'in'} {lit(held.statuses)}:", "    " + update]
        return [
            *self._load_row(item),
            *self._checks(tool, item),
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {{{lit(sf)}: {lit(tool.to)}}})",
            *freed,
            f"return _require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(item.name))})",
        ]

    def _update(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, table = id_column(item.name), snake(item.name)
        lines = [*self._load_row(item)]
        if len(tool.fields) > 1:
            names = ", ".join(tool.fields)
            lines += [
                f"changes = {{k: a[k] for k in {lit(list(tool.fields))} if a[k] is not None}}",
                "if not changes:",
                f"    raise ToolError({lit('Nothing to change: give at least one of ' + names)})",
            ]
        else:
            lines.append(f"changes = {{{lit(tool.fields[0])}: a[{lit(tool.fields[0])}]}}")
        lines += self._checks(tool, item)
        price = charged(self.domain, tool)
        if price is not None:
            assert isinstance(item, CatalogRecord) and price.quantity
            target = find(self.domain, item.target)
            tkey, qty = id_column(target.name), lit(price.quantity)
            step = [f"# the amount follows the new {words(price.quantity)}: {formula(price, words(target.name))}"]
            if not any(c.subject == "target" for c in checks(self.domain, tool)):
                step.append(f"target = _require(db, {lit(snake(target.name))}, {lit(tkey)}, row[{lit(tkey)}], "
                            f"{lit(label(target.name))})")
            step.append(f"changes[{lit(price.amount)}] = {self._charge(price, 'target', f'changes[{qty}]')}")
            lines += [f"if {qty} in changes:", *["    " + x for x in step]] if len(tool.fields) > 1 else step
        lines += [
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], changes)",
            f"return _require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(item.name))})",
        ]
        return lines

    def _pay(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        key, table = id_column(item.name), snake(item.name)
        lines = [*self._load_row(item), *self._checks(tool, item)]
        amount = f"row[{lit(tool.amount_field)}]" if tool.amount_field else "None"
        if tool.amount_field:
            lines += [
                f"if row[{lit(tool.amount_field)}] is None or row[{lit(tool.amount_field)}] <= 0:",
                f'    raise ToolError(f"{label(item.name)} {{row[{key!r}]}} has nothing to pay")',
            ]
        lines += [
            f"_update(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {{{lit(pay_field(tool))}: {lit(tool.to)}}})",
            f"paid = _require(db, {lit(table)}, {lit(key)}, row[{lit(key)}], {lit(label(item.name))})",
            f'return {{**paid, "amount_paid": {amount}, "payment_method": a["payment_method"]}}',
        ]
        return lines

    # -- guards and policy rules, in checks() order
    def _checks(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord) -> list[str]:
        lines: list[str] = []
        found = checks(self.domain, tool)
        if tool.kind != "create" and any(c.subject == "target" for c in found):
            # a rule about the record's target entity (e.g. the provider of a booking)
            assert isinstance(item, CatalogRecord)
            target = find(self.domain, item.target)
            tkey = id_column(target.name)
            lines.append(f"target = _require(db, {lit(snake(target.name))}, {lit(tkey)}, row[{lit(tkey)}], {lit(label(target.name))})")
        if any(c.kind == "owner" for c in found):  # the acting person exists (else: not found, not a violation)
            lines.append(f'_require(db, {lit(self.role_table)}, "person_id", a["person_id"], {lit(label(self.domain.role))})')
        if any(c.subject == "member" or c.when for c in found):  # a rule on who asks: their profile row
            person = 'a["person_id"]' if tool.kind == "create" else 'row["person_id"]'
            lines.append(f'member = _require(db, {lit(self.role_table)}, "person_id", {person}, {lit(label(self.domain.role))})')
        for check in found:
            if check.is_rule:
                lines.append(f"# {check.label}: {check.statement}")
                fail = f"    _violation({lit(check.label)}, {lit(check.statement)})"
            else:
                fail = "    " + self._guard_error(tool, item, check)
            lines += [f"if {self._failed(tool, item, check)}:", fail]
        return lines

    def _guard_error(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord, check: Check) -> str:
        key = id_column(item.name)
        if check.kind == "status_in":
            suffix = "_" + snake(item.name)
            if tool.name.endswith(suffix):  # cancel_appointment -> "Cannot cancel appointment APT-0003"
                what = f"{tool.name.removesuffix(suffix).replace('_', ' ')} {words(item.name)}"
            else:  # accept_loan_offer -> "Cannot accept loan offer for loan application LAP-0003"
                what = f"{tool.name.replace('_', ' ')} for {words(item.name)}"
            allowed = ", ".join(str(v) for v in check.values)
            return (f'raise ToolError(f"Cannot {what} {{row[{key!r}]}} '
                    f'in status {{row[{check.field!r}]}} (allowed: {allowed})")')
        return f'raise ToolError(f"{label(item.name)} {{row[{key!r}]}} is already {check.values[0]}")'

    def _failed(self, tool: CatalogTool, item: CatalogEntity | CatalogRecord, check: Check) -> str:
        """The Python condition under which `check` fails."""
        if check.when is not None:  # a tier's check: only for people of that tier
            tier = f"member[{lit(check.when[0])}] == {lit(check.when[1])}"
            return f"{tier} and {self._failed(tool, item, replace(check, when=None))}"
        if check.kind == "count_lt":
            person = 'a["person_id"]' if check.subject == "person" else 'row["person_id"]'
            exclude = f", exclude=row[{lit(id_column(item.name))}]" if check.subject == "row" else ""
            return (f"_count(db, {lit(check.table)}, {person}, {lit(check.field)}, {lit(list(check.values))}, "
                    f"{lit(check.key)}{exclude}) >= {check.limit}")
        if check.kind == "owner":
            return 'row["person_id"] != a["person_id"]'
        if check.kind == "covers":  # the balance left covers the request (one per record without an amount)
            need = f"a[{lit(check.values[0])}]" if check.values and check.values[0] else "1"
            return f"member[{lit(check.field)}] is None or {need} > member[{lit(check.field)}]"
        ref = {"arg": "a", "row": "row", "target": "target", "member": "member"}[check.subject]
        x = raw = f"{ref}[{lit(check.field)}]"
        if check.percent is not None:  # bound the computed fee itself, as the policy states it
            x = f"_fee({x}, {_num(check.percent)})"
            check = replace(check, lo=None if check.lo is None else round(check.lo * check.percent / 100, 2),
                            hi=None if check.hi is None else round(check.hi * check.percent / 100, 2))
        if check.kind == "status_in":
            return f"{x} not in {lit(list(check.values))}"
        if check.kind == "eq":
            value = check.values[0]
            return f"{x} {'is not' if isinstance(value, bool) or value is None else '!='} {lit(value)}"
        if check.kind == "ne":
            return f"{x} == {lit(check.values[0])}"
        if check.kind == "date_range":
            lo = f"_days({_int(check.lo)})" if check.lo is not None else None
            hi = f"_days({_int(check.hi)})" if check.hi is not None else None
        else:
            lo = _num(check.lo) if check.lo is not None else None
            hi = _num(check.hi) if check.hi is not None else None
        if lo and hi and lo == hi:  # a single allowed day/value
            cond = f"{x} != {lo}"
        elif lo and hi:
            cond = f"not ({lo} <= {x} <= {hi})"
        elif lo:
            cond = f"{x} < {lo}"
        elif hi:
            cond = f"{x} > {hi}"
        else:
            cond = "False"
        if check.optional:
            return f"{raw} is not None and {cond}"
        if check.subject != "arg":  # a missing stored value cannot prove the rule holds
            return f"{raw} is None or {cond}"
        return cond


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(x)


def _doc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', "'''").strip()


def bool_columns(domain: CatalogDomain) -> dict[str, list[str]]:
    """Per table, the columns stored as 0/1 that tools return as booleans."""
    bools: dict[str, list[str]] = {}
    for item in [*domain.entities, *domain.records]:
        cols = [a.name for a in item.attributes if a.type == "bool"]
        if cols:
            bools[snake(item.name)] = cols
    role_bools = [a.name for a in domain.role_attributes if a.type == "bool"]
    if role_bools:
        bools[snake(domain.role)] = role_bools
    return bools


def implementation_module(domain: CatalogDomain, clock: str) -> str:
    """The Python source of `domain`'s implementation module (deterministic text, stdlib only)."""
    compiler = _Compiler(domain)
    bools = bool_columns(domain)
    bool_src = "{" + "".join(f"\n    {lit(t)}: frozenset({lit(c)})," for t, c in sorted(bools.items())) + ("\n}" if bools else "}")
    prelude = (_PRELUDE.replace("__SERVER__", domain.name).replace("__CLOCK__", clock)
               .replace("__DESCRIPTION__", "\n".join(textwrap.wrap(_doc(domain.description), 95))).replace("__BOOLS__", bool_src)
               .replace("__FILE__", f"{domain.name}.py"))
    priced = any(charged(domain, tool) is not None for tool in domain.tools)
    fees = any(fee_check(domain, tool) is not None for tool in domain.tools)
    parts = [prelude, _CHARGE if priced else "", _FEE if fees else "", _LINES if line_records(domain) else "",
             "\n# ---------------------------------------------------------------- tools\n"]
    for tool in domain.tools:
        parts.append("\n" + compiler.function(tool) + "\n")
    parts.append("\nTOOLS: dict[str, dict[str, Any]] = {\n")
    for tool in domain.tools:
        entry = {
            "mode": "read" if tool.kind in READ_KINDS else "write",
            "description": tool.description,
            "parameters": tool_parameters(domain, tool),
        }
        parts.append(f"    {lit(tool.name)}: {{\n        \"fn\": {tool.name},\n")
        for k, v in entry.items():
            parts.append(f"        {lit(k)}: {block(v, 8, 8 + len(lit(k)) + 2)},\n")
        parts.append("    },\n")
    parts.append("}\n")
    parts.append(_EPILOGUE)
    source = "".join(parts)
    compile(source, f"{domain.name}.py", "exec")  # fail here, not in the sandbox
    return source
