"""Per-person balances in the compiled world: which write uses an allowance up (a create of the record) or
gives it back (a move to a released status), the lines the tool runs and its generated test checks, the
policy's words, and what the customer is told."""
from __future__ import annotations

from skiller.world.builtin.toolmodel import label, lit, snake, words
from skiller.world.catalog.model import CatalogBalance, CatalogDomain, CatalogTool

__all__ = ["balance_code", "balance_effects", "balance_test_lines", "balance_told", "consumed", "restored"]


def consumed(domain: CatalogDomain, tool: CatalogTool) -> CatalogBalance | None:
    """The balance a create uses up: the one its record draws on."""
    if tool.kind != "create":
        return None
    return next((b for b in domain.balances if b.record == tool.entity), None)


def restored(domain: CatalogDomain, tool: CatalogTool) -> CatalogBalance | None:
    """The balance a status change gives back to: it moves a record holding its amount to a released status."""
    if tool.kind != "set_status":
        return None
    return next((b for b in domain.balances if b.record == tool.entity and tool.to in b.released), None)


def _change(domain: CatalogDomain, balance: CatalogBalance, held: str, source: str, sign: str) -> str:
    """The new balance: `held` minus (or plus) the amount of `source` (1 per record without one), to cents."""
    amount = f"({source}[{lit(balance.amount)}] or 0)" if balance.amount else "1"
    money = any(a.name == balance.attribute and a.type == "float" for a in domain.role_attributes)
    return f"round({held} {sign} {amount}, 2)" if money else f"{held} {sign} {amount}"


def balance_code(domain: CatalogDomain, tool: CatalogTool, body: list[str]) -> list[str]:
    """A write tool's lines (ending in its return) with the balance it uses up or gives back written to the
    person's profile row, and the new balance returned beside the row (the customer is told what is left)."""
    spent, back = consumed(domain, tool), restored(domain, tool)
    balance = spent or back
    if balance is None:
        return body
    assert body[-1].startswith("return "), tool.name
    role, attr = snake(domain.role), lit(balance.attribute)
    person = 'a["person_id"]' if spent else 'row["person_id"]'
    amount = f"its {words(balance.amount)}" if balance.amount else "one"
    note = (f"# the new {words(balance.record)} uses up {amount} of the {words(domain.role)}'s {words(balance.attribute)}"
            if spent else f"# the {words(balance.record)} no longer holds {amount}: it goes back to "
            f"the {words(domain.role)}'s {words(balance.attribute)}")
    left = _change(domain, balance, f"holder[{attr}]", "a" if spent else "row", "-" if spent else "+")
    return [*body[:-1],
            note,
            f'holder = _require(db, {lit(role)}, "person_id", {person}, {lit(label(domain.role))})',
            f"left = {left}",
            f'_update(db, {lit(role)}, "person_id", {person}, {{{attr}: left}})',
            f"return {{**{body[-1][len('return '):]}, {attr}: left}}"]


def balance_test_lines(domain: CatalogDomain, tool: CatalogTool, person: str, source: str) -> tuple[list[str], list[str]]:
    """A permitted call's test lines: the balance read before the call; after it, the returned balance popped and
    checked against the amount of `source` (the call's args, or the row before the call) and the stored one."""
    spent, back = consumed(domain, tool), restored(domain, tool)
    balance = spent or back
    if balance is None:
        return [], []
    role, attr = lit(snake(domain.role)), lit(balance.attribute)
    expected = _change(domain, balance, "held", source, "-" if spent else "+")
    return ([f'    held = fetch(db, {role}, "person_id", {person})[{attr}]'],
            [f"    left = out.pop({attr})",
             f"    assert left == {expected}",
             f'    assert fetch(db, {role}, "person_id", {person})[{attr}] == left'])


def balance_effects(domain: CatalogDomain, tool: CatalogTool) -> list[str]:
    """The policy's words for what a write does to a balance."""
    spent, back = consumed(domain, tool), restored(domain, tool)
    balance = spent or back
    if balance is None:
        return []
    role, attr = words(domain.role), f"`{balance.attribute}`"
    if spent:
        amount = f"the given `{balance.amount}`" if balance.amount else "one"
        return [f"- Uses up {amount} of the {role}'s {attr} (what is left of their `{balance.limit}`) and returns "
                f"the new {attr} with the row; tell the user what is left."]
    amount = f"the {words(balance.record)}'s `{balance.amount}`" if balance.amount else "one"
    return [f"- Gives {amount} back to the {role}'s {attr} and returns the new {attr} with the row; tell the user."]


def balance_told(domain: CatalogDomain, tool: CatalogTool) -> tuple[str, str] | None:
    """(the returned key, the customer's wish in words) of the balance a write uses up or gives back."""
    balance = consumed(domain, tool) or restored(domain, tool)
    if balance is None:
        return None
    desc = next(a.description for a in domain.role_attributes if a.name == balance.attribute)
    return balance.attribute, f" You also want to know your {desc[:1].lower() + desc[1:]} afterwards."
