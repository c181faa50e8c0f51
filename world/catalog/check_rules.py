"""Catalog checks of a domain's policy rules: each rule kind is well formed, can be kept and broken on the
generated data, and its statement names its values."""
from __future__ import annotations

import re

from skiller.world.catalog.check_base import (
    _NUMBER,
    _RULE_ID,
    MIN_RULES,
    DomainCheckerBase,
    _gen_range,
    _words,
    gen_values,
)
from skiller.world.catalog.model import CatalogAttribute, CatalogRule, CatalogTool
from skiller.world.catalog.tiers import tier_rule_problems


class RuleChecks(DomainCheckerBase):
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
                                             "tier_limit", "computed_fee", "balance_covers", "refund_schedule"}),
                                  ("min", {"value_range", "date_window", "lead_time", "member_attr", "computed_fee"}),
                                  ("max", {"value_range", "date_window", "member_attr", "computed_fee"}),
                                  ("attribute", {"tier_limit", "balance_covers", "refund_schedule"}),
                                  ("limits", {"tier_limit", "refund_schedule"}),
                                  ("percent", {"computed_fee"})):
                if rule.kind not in used_by and getattr(rule, attr) not in (None, [], {}):
                    self.err(where, f"a {rule.kind} rule takes no {attr}")
            if tool.kind in ("create_items", "cancel_item"):  # rules per line or on the record: check_lines
                self.line_rule(rule, tool, where)  # type: ignore[attr-defined]
                self.statement_problems(rule, where)
                continue
            if rule.kind in ("member_attr", "tier_limit", "no_outstanding", "ownership", "computed_fee", "balance_covers",
                             "refund_schedule"):
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
        if not any(t.kind == "get" and t.entity == rec.target for t in self.d.tools):  # else refused blind
            self.err(where, f"no get tool reads {rec.target}: the assistant could not see {rule.field} before refusing")

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
