"""Builtin policy model: writes a domain's assistant policy (reference markers plus machine-checkable rules)."""
from __future__ import annotations

import json
from typing import Any

from skiller.contract.policy import parse_rules as parse_rule_markers, reference_marker
from skiller.world.catalog.model import CatalogDomain, CatalogRecord, CatalogRule, CatalogTool
from skiller.world.builtin.balances import balance_effects
from skiller.world.builtin.holdings import holding, holding_effects
from skiller.world.builtin.refunds import refund_effects
from skiller.world.builtin.codegen import (
    READ_KINDS,
    browse_ceiling,
    linked,
    SEARCH_LIMIT,
    amount_source,
    charged,
    checks,
    fee_check,
    formula,
    find,
    id_column,
    owned,
    pay_field,
    tool_parameters,
    words,
)

from skiller.world.builtin.lineitems import LINE_KINDS, lines_of
from skiller.world.builtin.lineitems_policy import line_effects, line_outcomes, line_preconditions

__all__ = ["policy_markdown", "parse_rules", "rule_marker"]

def rule_marker(rule: CatalogRule) -> str:
    """`<!-- RULE {json} -->` with sorted keys; '<', '>' and '--' are JSON-escaped so the comment stays closed."""
    text = json.dumps(rule.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("--", "-\\u002d")
    return f"<!-- RULE {text} -->"


def parse_rules(markdown: str) -> list[dict[str, Any]]:
    """The rules embedded in a policy, in document order (inverse of the RULE markers): s07's parser."""
    return [rule.model_dump(mode="json") for rule in parse_rule_markers(markdown)]


def _param_line(name: str, schema: dict[str, Any], required: bool) -> str:
    kind = "date" if schema.get("format") == "date" else schema["type"]
    extra = "required" if required else "optional"
    if "enum" in schema:
        extra += "; one of: " + ", ".join(str(v) for v in schema["enum"])
    if schema["type"] == "array":  # line items: the fields of each element
        extra += "; each element an object with " + ", ".join(
            f"`{k}` ({v['type']})" for k, v in schema["items"]["properties"].items())
    return f"- `{name}` ({kind}, {extra}): {schema.get('description', '')}"


class _Writer:
    def __init__(self, domain: CatalogDomain) -> None:
        self.d = domain
        self.role = words(domain.role)
        self.profile = next((t.name for t in domain.tools if t.kind == "get_profile"), None)
        self.writes = [t.name for t in domain.tools if t.kind not in READ_KINDS]

    def header(self) -> list[str]:
        d = self.d
        verify = (f"look up their profile with `{self.profile}` and check it matches the name they gave"
                  if self.profile else "check that the records you look up belong to them")
        writes = ", ".join(f"`{w}`" for w in self.writes) or "none"
        return [
            "<!-- POLICY_START -->",
            f"# {d.name} policy",
            "",
            f"You are the assistant of **{d.name}** ({d.sector}). {d.description} You serve {self.role}s: "
            "people identified by a person id such as P-0001. Dates are ISO (YYYY-MM-DD) and relative to "
            "today's date in the environment; amounts are in USD.",
            "",
            "## Global rules",
            "",
            f"1. **Identity.** Before reading or changing a person's data, ask for their person id and confirm "
            f"it is theirs: {verify}. Never act on another person's data, and never guess an id.",
            "2. **One action at a time.** Make at most one tool call at a time and wait for its result before "
            "deciding the next step.",
            f"3. **Confirm writes.** Before any tool that changes data ({writes}), list the action and its "
            "arguments to the user and proceed only after an explicit yes.",
            "4. **Refuse what breaks a rule.** If a request would break a rule of this policy, do not attempt "
            "the action: refuse, and say which rule (by its id, e.g. "
            f"[{d.rules[0].id if d.rules else d.name[:3].upper() + '-1'}]) and what it requires.",
            "5. **Be truthful.** Only state what the tools returned; never invent ids, dates, amounts or "
            "outcomes. When a tool reports an error, explain it and do not retry blindly.",
            f"6. **Stay in scope.** Help only with {d.name} matters these tools support; say so otherwise.",
            "",
            *self.references(),
            "<!-- GLOBAL_RULES_END -->",
            "",
            "## Tools",
        ]

    def references(self) -> list[str]:
        """Rules on records of other services that a tool takes (a claim naming a visit): checked only where
        both services are fused, so the fusion steps read them here (s11 states them, s13 bridges them)."""
        if not self.d.bridges:
            return []
        lines = ["## Records of other services", "",
                 "Where this service works together with the service a record comes from, these rules govern the "
                 "records its tools take; alone, take such a record's id as the person gives it.", ""]
        for b in self.d.bridges:
            lines += [f"- [{b.id}] {b.statement} (`{b.tool}`, `{b.ref}`)",
                      reference_marker(b.model_dump(mode="json", exclude_none=True))]
        return [*lines, ""]

    def tool(self, tool: CatalogTool) -> list[str]:
        params = tool_parameters(self.d, tool)
        mode = "read-only" if tool.kind in READ_KINDS else "write: changes data, confirm first"
        rules = [r for r in self.d.rules if r.tool == tool.name]
        lines = [
            "",
            f"<!-- TOOL: {tool.name} -->",
            f"### Tool: {tool.name}",
            "",
            f"**Purpose.** {tool.description} ({mode})",
            "",
            "**Preconditions.**",
            *self.preconditions(tool),
            "",
            "**Input validation.**",
            *[_param_line(n, s, n in params["required"]) for n, s in params["properties"].items()],
            "- Missing required arguments, wrong types, values outside the listed choices, unknown "
            "parameters and unknown ids are rejected with an error; nothing changes.",
            "",
            "**Permission outcomes.**",
            *self.outcomes(tool),
            "",
            "**Effects.**",
            *self.effects(tool),
            *self.fee(tool),
            *balance_effects(self.d, tool),
            *holding_effects(self.d, tool),
            *refund_effects(self.d, tool),
        ]
        if rules:
            lines += ["", *[rule_marker(r) for r in rules]]
        lines.append(f"<!-- TOOL_END: {tool.name} -->")
        return lines

    def preconditions(self, tool: CatalogTool) -> list[str]:
        item = find(self.d, tool.entity) if tool.entity else None
        if tool.kind in LINE_KINDS:  # line items: skiller.world.builtin.lineitems_policy
            return line_preconditions(self.d, tool, self.role)
        out = []
        if tool.kind in ("get_profile", "list_records", "create", "summary"):
            out.append(f"- The person's id is confirmed (global rule 1) and they are a {self.role} of {self.d.name}.")
        if tool.kind in ("get", "set_status", "update", "pay") and item is not None:
            what = words(item.name)
            out.append(f"- The {what} id (`{id_column(item.name)}`) comes from a lookup for the confirmed person"
                       + (", not from guesswork." if isinstance(item, CatalogRecord) else "."))
        if tool.kind == "create" and isinstance(item, CatalogRecord):
            out.append(f"- The {words(item.target)} (`{id_column(item.target)}`) exists; find it with a search or lookup tool."
                       if not linked(self.d, item) else
                       f"- The {words(item.target)} (`{id_column(item.target)}`) is one of the person's own; find it with a lookup.")
        if tool.kind in ("search", "browse"):
            out.append("- None: anyone may search; filters are optional and match exactly.")
        if owned(self.d, tool) and item is not None:
            out.append(f"- `person_id` is the confirmed person's own id: they act only on a {words(item.name)} "
                       "that is theirs, never on someone else's (the tool checks the owner).")
        if tool.kind not in READ_KINDS:
            out.append("- The user explicitly confirmed this action and its arguments (global rule 3).")
        return out

    def outcomes(self, tool: CatalogTool) -> list[str]:
        if tool.kind in READ_KINDS:
            return ["- Permitted: for the confirmed person, or for public catalogue data (searches, lookups).",
                    "- Rejected: unknown ids or invalid arguments (an error is returned)."]
        if tool.kind in LINE_KINDS:
            return line_outcomes(self.d, tool)
        found = checks(self.d, tool)
        item = find(self.d, tool.entity or "")
        out = ["- Permitted: when every condition below is met."]
        if tool.kind == "create" and isinstance(item, CatalogRecord) and linked(self.d, item):
            out.append(f"- Rejected: the {words(item.target)} belongs to another person.")
        stated: set[str] = set()
        for c in found:
            if c.is_rule and c.label in stated:  # a tier rule is one check per tier, stated once
                continue
            if c.is_rule:
                stated.add(c.label)
                out.append(f"- Rejected [{c.label}]: {c.statement}")
            elif c.label == "guard" and c.kind == "status_in":
                allowed = ", ".join(str(v) for v in c.values)
                out.append(f"- Rejected: the {words(item.name)} is not in an allowed status (allowed: {allowed}).")
            else:
                out.append(f"- Rejected: the {words(item.name)} is already {c.values[0]}.")
        if tool.kind == "pay" and tool.amount_field:
            out.append(f"- Rejected: there is nothing to pay (`{tool.amount_field}` is zero or missing).")
        return out

    def fee(self, tool: CatalogTool) -> list[str]:
        fee = fee_check(self.d, tool)
        if fee is None:
            return []
        whose = "the given" if fee.subject == "arg" else "the stored"
        return [f"- Charges a fee of {fee.percent:g}% of {whose} `{fee.field}`, rounded to cents, and returns it as "
                "`fee`; tell the user the fee."]

    def effects(self, tool: CatalogTool) -> list[str]:
        item = find(self.d, tool.entity) if tool.entity else None
        if tool.kind == "get_profile":
            return [f"- None. Returns the person's details merged with their {self.role} record."]
        if tool.kind in LINE_KINDS:
            return line_effects(self.d, tool)
        if tool.kind == "get":
            lines = lines_of(self.d, item.name)  # type: ignore[union-attr]
            return [f"- None. Returns the {words(item.name)} row"  # type: ignore[union-attr]
                    + (f" with its {words(lines.spec.name)}s under `items` (every line, by id)." if lines else ".")]
        if tool.kind == "search":
            return [f"- None. Returns at most {SEARCH_LIMIT} matching rows, ordered by id."]
        if tool.kind == "list_records":
            return [f"- None. Returns the person's {words(item.name)}s ordered by id."]  # type: ignore[union-attr]
        if tool.kind == "summary":
            return [f"- None. Returns how many {words(item.name)}s the person has (in the given status, if any): "  # type: ignore[union-attr]
                    f"`count`, `total_{tool.amount_field}` (the sum of their `{tool.amount_field}`, rounded to cents) "
                    "and `by_status` (the count per status)."]
        if tool.kind == "browse":
            return [f"- None. Returns at most {SEARCH_LIMIT} matching rows whose `{tool.amount_field}` is at most "
                    f"`{browse_ceiling(tool)}` (when given), lowest `{tool.amount_field}` first, then by id."]
        assert item is not None
        key = id_column(item.name)
        if tool.kind == "create":
            assert isinstance(item, CatalogRecord)
            fixed = dict(tool.defaults)
            fixed.setdefault(item.status_field, item.statuses[0])
            out = [f"- Creates a new {words(item.name)} for the person with the next free id "
                   f"({item.id_prefix}-NNNN, one above the highest in use) and returns it.",
                   "- Sets " + ", ".join(f"`{k}` = {v}" for k, v in fixed.items()) + "."]
            price = charged(self.d, tool)
            if price is not None:
                out.append(f"- `{price.amount}` is {formula(price, words(item.target))}.")
            elif tool.amount_field and tool.amount_field not in tool.fields and tool.amount_field not in fixed:
                column, fallback = amount_source(self.d, item, tool.amount_field)
                source = (f"the {words(item.target)}'s `{column}`" if column else f"a fixed {fallback:.2f}")
                out.append(f"- `{tool.amount_field}` is {source}.")
            return out
        if tool.kind == "set_status":
            sf = item.status_field if isinstance(item, CatalogRecord) else "status"
            alone = "" if holding(self.d, tool) else "; nothing else changes"  # else its target is taken or freed
            return [f"- Sets the {words(item.name)}'s `{sf}` to {tool.to}{alone}. Returns the updated row."]
        if tool.kind == "update":
            fields = ", ".join(f"`{f}`" for f in tool.fields)
            price = charged(self.d, tool)
            if price is not None and isinstance(item, CatalogRecord):
                return [f"- Changes {fields} of the {words(item.name)} (`{key}`) to the given values and recomputes "
                        f"`{price.amount}` as {formula(price, words(item.target))}; nothing else changes. "
                        "Returns the updated row."]
            return [f"- Changes {fields} of the {words(item.name)} (`{key}`) to the given values; nothing else "
                    "changes. Returns the updated row."]
        amount = f" of `{tool.amount_field}`" if tool.amount_field else ""
        return [f"- Records the payment{amount}: sets `{pay_field(tool)}` to {tool.to}. Returns the updated row with "
                "`amount_paid` and `payment_method`."]


def policy_markdown(domain: CatalogDomain) -> str:
    """The policy document for `domain` in the reference markdown format."""
    w = _Writer(domain)
    lines = w.header()
    for tool in domain.tools:
        lines += w.tool(tool)
    lines += ["", "<!-- POLICY_END -->", ""]
    return "\n".join(lines)
