"""Catalog checks of line items (a record with several products): the child table, the create_items and
cancel_item tools, and the rules they may carry (a flag every line's target must have, a quantity range per
line, the record statuses a line may be cancelled in), each keepable and breakable on the generated data."""
from __future__ import annotations

from skiller.world.catalog.check_base import _PASCAL, _PREFIX, _TYPES, DomainCheckerBase, _gen_range, gen_values, snake
from skiller.world.catalog.model import CatalogEntity, CatalogRecord, CatalogRule, CatalogTool

_LINE_RULES = {"create_items": ("target_flag", "value_range"), "cancel_item": ("requires_status",)}


class LineChecks(DomainCheckerBase):
    def check_lines(self) -> None:
        """Each record's `lines`: a new table, an entity to price from, the record's amount to total."""
        d = self.d
        taken = [snake(d.role), *(snake(i.name) for i in self.items.values())]
        prefixes = [i.id_prefix for i in self.items.values()]
        for rec in d.records:
            spec = rec.lines
            if spec is None:
                continue
            where = f"record {rec.name} lines {spec.name}"
            if not _PASCAL.match(spec.name):
                self.err(where, "name must be PascalCase without acronyms")
            if snake(spec.name) in taken or snake(spec.name) == "person":
                self.err(where, f"table {snake(spec.name)} is already a table of the domain")
            taken.append(snake(spec.name))
            if not _PREFIX.match(spec.id_prefix) or spec.id_prefix in prefixes:
                self.err(where, f"id_prefix {spec.id_prefix!r} must be 2-5 capitals, unique in the domain")
            prefixes.append(spec.id_prefix)
            target = self.items.get(spec.target)
            if not isinstance(target, CatalogEntity):
                self.err(where, f"target {spec.target!r} is not an entity of the domain")
            else:
                price = next((a for a in target.attributes if a.name == spec.price), None)
                if price is None or price.type not in ("int", "float") or (_gen_range(price.gen) or (0, 0))[0] <= 0:
                    self.err(where, f"price {spec.price!r} is not a numeric attribute of {spec.target} generated above 0")
            amount = self.attrs(rec.name).get(spec.amount)
            if amount is None or amount.type != "float":
                self.err(where, f"amount {spec.amount!r} is not a float attribute of {rec.name}")
            if not 2 <= spec.max_lines <= 10:
                self.err(where, f"max_lines must be 2 to 10, got {spec.max_lines}")
            if rec.pricing is not None:
                self.err(where, f"{rec.name} has pricing too: its amount is the sum of its lines")
            if not any(t.kind == "create_items" and t.entity == rec.name for t in d.tools):
                self.err(where, "needs a create_items tool")

    def _line_record(self, t: CatalogTool, where: str) -> CatalogRecord | None:
        rec = self.record(t.entity)
        if rec is None or rec.lines is None:
            self.err(where, f"a {t.kind} tool needs a record with lines, {t.entity} has none")
            return None
        return rec

    def tool_create_items(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "fields", "defaults")  # type: ignore[attr-defined]
        rec = self._line_record(t, where)
        attrs = self._fields_exist(t, where)  # type: ignore[attr-defined]
        if rec is None or rec.lines is None:
            return
        if rec.status_field in t.fields or rec.lines.amount in t.fields or rec.lines.amount in t.defaults:
            self.err(where, f"{rec.status_field} comes from defaults and {rec.lines.amount} from the lines, not the caller")
        for f, v in t.defaults.items():
            a = attrs.get(f)
            values = rec.statuses if f == rec.status_field else (gen_values(a.gen) if a else None)
            if a is None or not isinstance(v, _TYPES[a.type]) or (values is not None and v not in values):
                self.err(where, f"default {f}={v!r} is not a possible value of {rec.name}.{f}")
        if t.defaults.get(rec.status_field, rec.statuses[0]) != rec.statuses[0]:
            self.err(where, f"a new {rec.name} starts in the first status {rec.statuses[0]!r}")
        missing = [a for a in attrs if a not in {*t.fields, *t.defaults, rec.status_field, rec.lines.amount}]
        if missing:
            self.err(where, f"attributes {missing} of {rec.name} get no value (add them to fields or defaults)")

    def tool_cancel_item(self, t: CatalogTool, where: str) -> None:
        self._unused(t, where, "from_statuses")  # type: ignore[attr-defined]
        rec = self._line_record(t, where)
        if rec is None:
            return
        if not t.from_statuses:
            self.err(where, f"a cancel_item tool needs from_statuses: the {rec.name} statuses a line may be cancelled in")
        self._statuses_known(t, where, rec, t.from_statuses, "from_statuses")  # type: ignore[attr-defined]

    def line_rule(self, rule: CatalogRule, tool: CatalogTool, where: str) -> None:
        """A rule on a line-item tool: only the kinds the compiler applies per line (or to the record)."""
        kinds = _LINE_RULES[tool.kind]
        rec = self.record(tool.entity)
        if rule.kind not in kinds:
            self.err(where, f"a {rule.kind} rule cannot guard {tool.kind} tool {tool.name} (allowed: {', '.join(kinds)})")
            return
        if rec is None or rec.lines is None:
            return
        if rule.kind == "target_flag":
            attr = self.attrs(rec.lines.target).get(rule.field or "")
            values = gen_values(attr.gen) if attr is not None and attr.type == "bool" else None
            if rule.entity not in (None, rec.lines.target):
                self.err(where, f"entity {rule.entity} is not the line target {rec.lines.target}")
            elif values is None or rule.equals not in values or len(values) < 2:
                self.err(where, f"{rec.lines.target}.{rule.field} must be a bool generated both == {rule.equals!r} and otherwise")
        elif rule.kind == "value_range":
            if rule.field != "quantity":
                self.err(where, f"a value_range rule on {tool.name} bounds each line's quantity, not {rule.field!r}")
            elif rule.max is None or rule.max < max(1.0, rule.min or 1) or not float(rule.max).is_integer():
                self.err(where, "a line quantity range needs a whole max of at least 1 (and at least min)")
        else:
            status = self.attrs(rec.name).get(rec.status_field)
            generated = set(gen_values(status.gen) or []) if status else set()
            if rule.entity not in (None, rec.name) or not rule.statuses or not set(rule.statuses) <= set(rec.statuses):
                self.err(where, f"statuses {rule.statuses} must be non-empty statuses of {rec.name}")
            elif not generated & set(rule.statuses) & set(tool.from_statuses):
                self.err(where, f"no generated {rec.name} row that {tool.name} accepts is in {rule.statuses}: never satisfiable")
            elif not generated - set(rule.statuses):
                self.err(where, f"every generated {rec.name} status is in {rule.statuses}: never violated")
