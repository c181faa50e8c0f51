"""What a refusal shows: the value a read returned that breaks the rule, the records a limit counts, the
status a record is in, and what the customer can do instead. A refusal that cites its evidence teaches a
model to explain itself, not only to say no."""
from __future__ import annotations

from skiller.contract.wording import plural
from skiller.rollout.conversation import Conversation
from skiller.rollout.speech import Vocabulary, record_ids
from skiller.servers.task import RuleStatement

__all__ = ["COUNTED", "OFFER", "ON_REQUEST", "SEEN_TOO", "on_request", "seen"]


COUNTED = {"max_active", "no_outstanding"}  # rules on the records a customer holds: the refusal lists them

# Rule kinds judging a value the request itself carries (a date, an amount): the agent asks for that value
# before refusing. Under any other kind a read shows the rule broken, and the refusal follows that read.
ON_REQUEST = {"date_window", "value_range", "tier_limit", "computed_fee", "balance_covers", "not_above", "date_after"}

# Rules judging the request's value against a value a read returned (the customer's tier or balance left, the
# start of the lease a move is tied to): the refusal says the value asked for, then that read value.
SEEN_TOO = {"tier_limit", "balance_covers", "date_after", "not_above"}


def seen(rule: RuleStatement | None, talk: Conversation, words: Vocabulary) -> str:
    """' I can see that for pet plan PPL-0012, open to new pets is no.': the read value that breaks the rule;
    under a rule on how many records the customer holds, the records that count."""
    if rule is not None and rule.kind in COUNTED:
        return _holding(talk, rule.statuses, words)
    if rule is not None and rule.kind in ("requires_status", "source_status"):
        return _standing(talk, rule.statuses, words)
    if rule is not None and rule.kind == "ownership":
        return _elsewhere(talk, words)
    field = None if rule is None else rule.attribute if rule.kind in SEEN_TOO else rule.field
    for _, _, ok, out in reversed(talk.calls):
        rows = out if isinstance(out, list) else [out]
        row = next((r for r in rows if ok and isinstance(r, dict) and r.get(field) is not None), None)
        if field and row is not None:
            ids = record_ids(row)
            head = words.thing(ids[0], row[ids[0]]) if ids else "your account"
            said = words.clause(field, row[field])  # 'it is not in stock': said of the record itself
            return f" I can see that {head} {said[3:]}." if said.startswith("it ") else \
                f" I can see that for {head}, {said}."
    return ""


def _holding(talk: Conversation, statuses: list[str], words: Vocabulary) -> str:
    """' I can see you already have 3 appointments that are scheduled: APT-0061, APT-0299 and APT-0301.': the
    customer's records in the counted statuses, from the latest list read."""
    for _, _, ok, out in reversed(talk.calls):
        if not ok or not isinstance(out, list):
            continue
        rows = [r for r in out if isinstance(r, dict) and record_ids(r)
                and any(k.endswith("status") and v in statuses for k, v in r.items())]
        if not rows:
            return ""
        key = record_ids(rows[0])[0]
        ids = [str(r[key]) for r in rows]
        listed = ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"
        state = " or ".join(s.replace("_", " ") for s in statuses)
        noun = words.noun(key)
        if len(ids) == 1:
            state = next(v for k, v in rows[0].items() if k.endswith("status") and v in statuses).replace("_", " ")
            return f" I can see your {noun} {listed} is {state}."
        return f" I can see you already have {len(ids)} {plural(noun)} that are {state}: {listed}."
    return ""


def _standing(talk: Conversation, allowed: list[str], words: Vocabulary) -> str:
    """' I can see your vet visit VVS-0173 is cancelled.': the status, outside the allowed ones, of the record
    the latest read returned alone."""
    for _, _, ok, out in reversed(talk.calls):
        row = out[0] if isinstance(out, list) and len(out) == 1 else out
        field = "status" if "status" in row else next((k for k in row if k.endswith("status")), None) \
            if ok and isinstance(row, dict) and record_ids(row) else None
        if field is None:
            continue  # a read of something else (the doctor of the appointment)
        status = row[field]
        if not isinstance(status, str) or status in allowed:
            return ""
        key = record_ids(row)[0]
        return f" I can see your {words.noun(key)} {row[key]} is {status.replace('_', ' ')}."
    return ""


def _elsewhere(talk: Conversation, words: Vocabulary) -> str:
    """' I can see that appointment APT-0292 is not on your account: it is someone else's.': the latest record
    read that a person other than the one the profile read found holds."""
    rows = [out for _, _, ok, out in talk.calls if ok and isinstance(out, dict)]
    mine = next((r["person_id"] for r in rows if "person_id" in r), None)  # the profile: read first
    for row in reversed(rows):
        ids = record_ids(row)
        if ids and row.get("person_id") not in (None, mine):
            return f" I can see that {words.thing(ids[0], row[ids[0]])} is not on your account: it is someone else's."
    return ""


def on_request(rule: RuleStatement) -> bool:
    """Whether the rule judges a value the request carries; a balance each record uses one of (a plan visit)
    does not: the profile read shows it spent."""
    return rule.kind in ON_REQUEST and not (rule.kind == "balance_covers" and not rule.field)


OFFER = {
    "date_window": "If you'd like, I can do it for a date within that window instead",
    "value_range": "If you'd like, I can do it with a value within that range instead",
    "target_flag": "If you'd like, I can help you find one that qualifies instead",
    "max_active": "Once one of your current ones is closed, I can do this for you",
    "lead_time": "I can still help you with anything else about it that the rules allow",
    "requires_status": "Once it is in a status that allows this, I can do it for you",
}
