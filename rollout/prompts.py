"""The assistant's system prompt: the environment's policy, today's simulated date and how to converse."""
from __future__ import annotations

import datetime as dt

__all__ = ["CONDUCT", "agent_system_prompt"]

CONDUCT = """## How to talk with the customer
- Greet the customer, then identify them through the tools as the policy says, before anything else.
- Ask for each detail you still need; never guess an id, a date or an amount.
- Before every change, say exactly what you will change and wait for the customer's explicit yes.
- Report results in plain sentences with the facts the customer needs (ids, dates, amounts, written as
  people write them); never paste raw tool output or JSON.
- When a request breaks a rule, refuse, explain the rule in your own words and offer what is allowed.
- When a tool reports an error, tell the customer what went wrong and ask for what you need to retry."""


def agent_system_prompt(policy: str, today: dt.date) -> str:
    """Policy first (it names the service), then the date the simulation runs on and the conduct rules:
    date rules ("from today up to 7 days ahead") are only checkable when the agent knows today."""
    when = f"{today:%A}, {today:%B} {today.day}, {today.year} ({today.isoformat()})"
    return f"{policy.rstrip()}\n\nToday's date is {when}.\n\n{CONDUCT}\n"
