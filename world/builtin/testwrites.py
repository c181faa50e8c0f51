"""Generated tests of write tools: the permitted case changes exactly what it should, each check's
violation is refused with nothing changed."""
from __future__ import annotations


from skiller.world.catalog.model import CatalogEntity, CatalogRecord, CatalogTool
from skiller.world.builtin.codegen import (
    Check,
    amount_source,
    charged,
    checks,
    fee_check,
    find,
    id_column,
    label,
    linked,
    lit,
    owned,
    pay_field,
    snake,
    tool_parameters,
)
from skiller.world.builtin.balances import balance_test_lines
from skiller.world.builtin.holdings import holding
from skiller.world.builtin.refunds import REFUND_COLUMN, refund_rule, refund_tests
from skiller.world.builtin.dbgen import solve
from skiller.world.builtin.testbase import WriterBase, _charge_src, _field_rejections, _ident


class WriteTests(WriterBase):
    def _t_create(self, tool: CatalogTool) -> list[str]:
        rec = find(self.domain, tool.entity or "")
        assert isinstance(rec, CatalogRecord)
        target = find(self.domain, rec.target)
        table, key, n = snake(rec.name), id_column(rec.name), tool.name
        ttable, tkey = snake(target.name), id_column(target.name)
        found = checks(self.domain, tool)
        person_ok = [(c, True) for c in found if c.subject in ("person", "member")]
        target_ok = [(c, True) for c in found if c.subject == "target"]
        args = self.good_args(tool, rec)
        find_person = self.select(self.role, "person_id", person_ok, rec, "p")
        find_target = self.select(ttable, tkey, target_ok, target, "t")
        rest = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in args.items())
        setup = [
            f"    person = pick(db, {lit(find_person)})",
            f"    target = pick(db, {lit(find_target)})",
            f"    args = {{\"person_id\": person, {lit(tkey)}: target, " + rest + "}",
        ]
        if linked(self.domain, rec):  # the target is a record: one of the person's own
            setup = [f"    args = {{{rest}}}", *self.owned(rec, target_ok, person_ok)]
        held, told = balance_test_lines(self.domain, tool, "person", "args")  # a balance it uses up
        lines = [
            f"def test_{n}_creates_the_{table}(db):",
            *setup,
            f'    count = pick(db, "SELECT COUNT(*) FROM {table}")',
            f"    new_id = next_id(db, {lit(table)}, {lit(key)}, {lit(rec.id_prefix)})",
            *held,
            f"    out = call(db, {lit(n)}, **args)",
            *self._fee_lines(tool, "args"),
            *told,
            f"    assert out[{lit(key)}] == new_id",
            f"    row = fetch(db, {lit(table)}, {lit(key)}, new_id)",
            "    assert out == row",
            f'    assert pick(db, "SELECT COUNT(*) FROM {table}") == count + 1',
            f'    assert row["person_id"] == person and row[{lit(tkey)}] == target',
        ]
        for f in args:
            lines.append(f"    assert row[{lit(f)}] == args[{lit(f)}]")
        fixed = dict(tool.defaults)
        fixed.setdefault(rec.status_field, rec.statuses[0])
        for f, v in fixed.items():
            if f not in args:
                lines.append(f"    assert row[{lit(f)}] == {lit(v)}")
        if holding(self.domain, tool):  # the new record holds its target alone
            lines.append(f"    assert fetch(db, {lit(ttable)}, {lit(tkey)}, target)[{lit(rec.holds.flag)}] == 0")
        price = charged(self.domain, tool)
        if price is not None:
            lines += [f"    t = fetch(db, {lit(ttable)}, {lit(tkey)}, target)",
                      f"    assert row[{lit(price.amount)}] == {_charge_src(price, 't', 'args')}"]
        elif tool.amount_field and tool.amount_field not in args and tool.amount_field not in fixed:
            column, fallback = amount_source(self.domain, rec, tool.amount_field)
            if column:
                lines.append(f"    assert row[{lit(tool.amount_field)}] == fetch(db, {lit(ttable)}, {lit(tkey)}, target)[{lit(column)}]")
            else:
                lines.append(f"    assert row[{lit(tool.amount_field)}] == {lit(fallback)}")
        lines += ["", "", f"def test_{n}_rejects_bad_arguments(db):", *setup,
                  *self._bad_id_tests(tool, "person_id", "args", label(self.domain.role), "P-9999"),
                  *self._bad_id_tests(tool, tkey, "args", label(target.name), f"{target.id_prefix}-9999")[:1]]
        params = tool_parameters(self.domain, tool)["properties"]
        lines += _field_rejections(n, params, list(args))
        if linked(self.domain, rec):
            lines += ["", "", f"def test_{n}_refuses_another_persons_{snake(target.name)}(db):", *setup,
                      f'    other = pick(db, "SELECT person_id FROM {self.role} WHERE person_id <> ? ORDER BY person_id", person)',
                      f'    rejected(db, {lit(n)}, {{**args, "person_id": other}}, "belongs to another person")']
        for i, check in enumerate(found):
            lines += ["", ""] + self._create_violation(tool, rec, target, found, i, setup, find_person, find_target)
        return lines

    def owned(self, rec: CatalogRecord, target_conds: list[tuple[Check, bool]], person_conds: list[tuple[Check, bool]],
              extra: tuple[str, ...] = ()) -> list[str]:
        """Lines choosing a target record meeting `target_conds` whose own person meets `person_conds`,
        and acting as that person (a record naming another record must name one of the person's own)."""
        target = find(self.domain, rec.target)
        ttable, tkey = snake(target.name), id_column(target.name)
        where = [self.sql(c, h, target, "t") for c, h in target_conds] + [self.sql(c, h, rec, "p") for c, h in person_conds]
        sql = (f"SELECT t.{tkey} FROM {ttable} t JOIN {self.role} p ON p.person_id = t.person_id"
               + (" WHERE " + " AND ".join([*where, *extra]) if where or extra else "") + f" ORDER BY t.{tkey}")
        return [f"    args[{lit(tkey)}] = target = pick(db, {lit(sql)})",
                f'    args["person_id"] = person = pick(db, "SELECT person_id FROM {ttable} WHERE {tkey} = ?", target)']

    def _create_violation(self, tool: CatalogTool, rec: CatalogRecord, target: CatalogEntity | CatalogRecord,
                          found: list[Check], i: int, setup: list[str], find_person: str, find_target: str) -> list[str]:
        check = found[i]
        head = f"def test_{tool.name}_enforces_{_ident(check.label)}(db):"
        needle = lit(check.label)
        if linked(self.domain, rec) and check.subject != "arg":
            return self._linked_violation(tool, rec, found, i, head, setup)
        if check.subject == "arg":
            bad = self.bad_values(tool, check)
            if not bad:
                return [f"# {check.label} cannot be broken without breaking an earlier rule first"]
            if check.when is not None:  # a tier's limit: act as a person of that tier
                head = f"def test_{tool.name}_enforces_{_ident(check.label)}_for_{_ident(str(check.when[1]))}(db):"
                person_ok = [(c, True) for c in found if c.subject in ("person", "member")]
                tiered = self.select(self.role, "person_id", person_ok, rec, "p", (self.tier(check, "p"),))
                if linked(self.domain, rec):
                    target_ok = [(c, True) for c in found if c.subject == "target"]
                    setup = [*setup, *self.owned(rec, target_ok, person_ok, (self.tier(check, "p"),))]
                else:
                    setup = [*setup, f"    args[\"person_id\"] = pick(db, {lit(tiered)})"]
            return [head, *setup, f"    for bad in {lit(bad)}:",
                    f"        rejected(db, {lit(tool.name)}, {{**args, {lit(check.field)}: bad}}, {needle})"]
        same = [(c, True) for c in found[:i] if c.subject == check.subject] + [(check, False)]
        subject = rec if check.subject in ("person", "member") else target
        if check.subject == "target" and solve(target, same) is None:
            return [f"# {check.label} cannot be broken without breaking an earlier rule first"]
        if check.subject in ("person", "member"):
            same = [(c, True) for c in found[:i] if c.subject in ("person", "member")] + [(check, False)]
            sql = self.select(self.role, "person_id", same, rec, "p")
            swap = [f"    args[\"person_id\"] = pick(db, {lit(sql)})"]
        else:
            tkey = id_column(subject.name)
            sql = self.select(snake(subject.name), tkey, same, subject, "t")
            swap = [f"    args[{lit(tkey)}] = pick(db, {lit(sql)})"]
        return [head, *setup, *swap, f"    rejected(db, {lit(tool.name)}, args, {needle})"]

    def _linked_violation(self, tool: CatalogTool, rec: CatalogRecord, found: list[Check], i: int, head: str,
                          setup: list[str]) -> list[str]:
        """A create naming one of the person's own records, where the person or that record breaks check i."""
        check, people = found[i], ("person", "member")
        target_conds = [(c, True) for c in found if c.subject == "target"]
        person_conds = [(c, True) for c in found if c.subject in people]
        if check.subject == "target":
            target_conds = [(c, True) for c in found[:i] if c.subject == "target"] + [(check, False)]
            if solve(find(self.domain, rec.target), target_conds) is None:
                return [f"# {check.label} cannot be broken without breaking an earlier rule first"]
        else:
            person_conds = [(c, True) for c in found[:i] if c.subject in people] + [(check, False)]
        return [head, *setup, *self.owned(rec, target_conds, person_conds),
                f"    rejected(db, {lit(tool.name)}, args, {lit(check.label)})"]

    def _row_tool(self, tool: CatalogTool, effect: list[str], setup: list[str] = ()) -> list[str]:  # type: ignore[assignment]
        """Tests shared by set_status / update / pay: permitted case, each check's rejection, bad ids."""
        item = find(self.domain, tool.entity or "")
        table, key, n = snake(item.name), id_column(item.name), tool.name
        found = checks(self.domain, tool)
        row_ok = [(c, True) for c in found if c.subject in ("row", "target", "member")]
        extra = self.good_args(tool, item)
        if tool.kind == "pay":
            extra["payment_method"] = tool_parameters(self.domain, tool)["properties"]["payment_method"]["enum"][0]
        extra_src = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in extra.items())
        if owned(self.domain, tool):  # the record's owner acts
            extra_src = ", ".join([f'"person_id": fetch(db, {lit(table)}, {lit(key)}, key)["person_id"]'] + ([extra_src] if extra_src else []))
        held, told = balance_test_lines(self.domain, tool, 'before["person_id"]', "before")  # a balance given back
        lines = [
            f"def test_{n}_is_permitted(db):",
            f"    key = pick(db, {lit(self.select(table, key, row_ok, item, 'r'))})",
            f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
            f"    before = fetch(db, {lit(table)}, {lit(key)}, key)",
            *held,
            *setup,
            f"    out = call(db, {lit(n)}, **args)",
            *self._fee_lines(tool, "before" if (fee_check(self.domain, tool) or Check("", "arg", "")).subject == "row" else "args"),
            *told,
            f"    after = fetch(db, {lit(table)}, {lit(key)}, key)",
            *effect,
            *refund_tests(self.domain, tool, lambda conds: self.select(table, key, conds, item, "r"), extra_src),
            "",
            "",
            f"def test_{n}_rejects_bad_arguments(db):",
            f"    key = pick(db, {lit(self.select(table, key, row_ok, item, 'r'))})",
            f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
            *self._bad_id_tests(tool, key, "args", label(item.name), f"{item.id_prefix}-9999"),
        ]
        params = tool_parameters(self.domain, tool)["properties"]
        lines += _field_rejections(n, params, list(extra))
        if tool.kind == "update" and len(tool.fields) > 1:
            lines.append(f"    rejected(db, {lit(n)}, {{{lit(key)}: key}}, \"Nothing to change\")")
        for i, check in enumerate(found):
            lines += ["", ""]
            name = f"def test_{n}_enforces_{_ident(check.label)}(db):" if check.is_rule else \
                f"def test_{n}_refuses_{'a_row_in_a_wrong_status' if check.label == 'guard' else 'a_row_already_' + _ident(str(check.values[0]))}(db):"
            needle = lit(check.label) if check.is_rule else (lit("status") if check.kind == "status_in" else lit("already"))
            if check.kind == "owner":  # a permitted row, asked for by someone else (and by no one known)
                lines += [name,
                          f"    key = pick(db, {lit(self.select(table, key, row_ok, item, 'r'))})",
                          f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
                          f"    rejected(db, {lit(n)}, {{**args, \"person_id\": \"P-9999\"}}, \"P-9999 not found\")",
                          f"    other = pick(db, \"SELECT person_id FROM {self.role} WHERE person_id <> ? ORDER BY person_id\", "
                          "args[\"person_id\"])",
                          f"    rejected(db, {lit(n)}, {{**args, \"person_id\": other}}, {needle})"]
                continue
            if check.subject == "arg":
                bad = self.bad_values(tool, check)
                if not bad:
                    lines[-2:] = []
                    continue
                tier = (self.tier(check, "r"),) if check.when is not None else ()
                chosen = self.select(table, key, row_ok, item, 'r', tier)
                if tier:  # a tier's limit: a row of a person of that tier
                    name = name.replace("(db):", f"_for_{_ident(str(check.when[1]))}(db):")
                lines += [name,
                          f"    key = pick(db, {lit(chosen)})",
                          f"    args = {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}",
                          f"    for bad in {lit(bad)}:",
                          f"        rejected(db, {lit(n)}, {{**args, {lit(check.field)}: bad}}, {needle})"]
                continue
            case = [(c, True) for c in found[:i] if c.subject in ("row", "target", "member")] + [(check, False)]
            solvable = solve(item, [(c, h) for c, h in case if c.subject == "row"])
            if solvable is None:
                lines[-2:] = []
                continue
            lines += [name,
                      f"    key = pick(db, {lit(self.select(table, key, case, item, 'r'))})",
                      f"    rejected(db, {lit(n)}, {{{lit(key)}: key{', ' + extra_src if extra_src else ''}}}, {needle})"]
        return lines

    def _fee_lines(self, tool: CatalogTool, source: str) -> list[str]:
        """A tool with a computed fee returns it: percent% of the base amount (an argument or the row's
        column before the call), computed here from the rule, not by calling the implementation."""
        fee = fee_check(self.domain, tool)
        if fee is None:
            return []
        base = f"{source}.get({lit(fee.field)})"
        return [f"    fee = out.pop(\"fee\")",
                f"    assert fee == (None if {base} is None else round(float({base}) * {fee.percent!r} / 100, 2))"]

    def _t_set_status(self, tool: CatalogTool) -> list[str]:
        item = find(self.domain, tool.entity or "")
        sf = item.status_field if isinstance(item, CatalogRecord) else "status"
        moved = [sf, REFUND_COLUMN] if refund_rule(self.domain, tool) else [sf]  # a cancel with a refund writes it too
        held: list[str] = []
        setup: list[str] = []
        if (h := holding(self.domain, tool)) is not None:  # a target held alone is taken or freed with the record
            flag, tkey, free = h.record.holds.flag, id_column(h.record.target), int(not h.taking)
            crossing = f"(before[{lit(sf)}] in {lit(h.record.holds.statuses)}) != {h.taking}"
            setup = [f"    if {crossing}:  # the flag as it was not, so that the change shows",
                     f'        db.execute("UPDATE {snake(h.record.target)} SET {flag} = ? WHERE {tkey} = ?", ({1 - free}, before[{lit(tkey)}]))']
            held = [f"    if {crossing}:",
                    f"        assert fetch(db, {lit(snake(h.record.target))}, {lit(tkey)}, after[{lit(tkey)}])[{lit(flag)}] == {free}"]
        return self._row_tool(tool, [
            f"    assert after[{lit(sf)}] == {lit(tool.to)} and out == after",
            f"    assert {{k: v for k, v in after.items() if k not in {lit(moved)}}} == {{k: v for k, v in before.items() if k not in {lit(moved)}}}",
            *held,
        ], setup)

    def _t_update(self, tool: CatalogTool) -> list[str]:
        fields = list(tool.fields)
        price = charged(self.domain, tool)
        recharge: list[str] = []
        if price is not None and price.quantity in self.good_args(tool, find(self.domain, tool.entity or "")):
            rec = find(self.domain, tool.entity or "")
            assert isinstance(rec, CatalogRecord)
            target = find(self.domain, rec.target)
            tkey = id_column(target.name)
            fields.append(price.amount)  # the amount follows the new quantity
            recharge = [f"    t = fetch(db, {lit(snake(target.name))}, {lit(tkey)}, before[{lit(tkey)}])",
                        f"    assert after[{lit(price.amount)}] == {_charge_src(price, 't', 'args')}"]
        return self._row_tool(tool, [
            "    assert out == after",
            *[f"    assert after[{lit(f)}] == args[{lit(f)}]" for f in tool.fields],
            *recharge,
            f"    assert {{k: v for k, v in after.items() if k not in {lit(fields)}}} == {{k: v for k, v in before.items() if k not in {lit(fields)}}}",
        ])

    def _t_pay(self, tool: CatalogTool) -> list[str]:
        pf = pay_field(tool)
        lines = [
            f"    assert after[{lit(pf)}] == {lit(tool.to)}",
            f"    assert {{k: v for k, v in after.items() if k != {lit(pf)}}} == {{k: v for k, v in before.items() if k != {lit(pf)}}}",
            '    assert out["payment_method"] == args["payment_method"]',
        ]
        if tool.amount_field:
            lines.append(f'    assert out["amount_paid"] == before[{lit(tool.amount_field)}]')
        return self._row_tool(tool, lines)
