"""How the demonstrator puts tool calls and results into plain sentences: labels, values, changes, outcomes."""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from skiller.contract.dialogue import ISO_DATE, as_said, human_date, label_phrase, said_value, value_text

__all__ = ["Vocabulary", "latest_per_record", "record_ids", "say_value"]

_MONEY = re.compile(r"amount|fee|price|cost|due|paid|total|balance|premium|charge|fare|rent|salary|budget")
_STATUS = re.compile(r"(^|_)status$")
_CALLED_OFF = re.compile(r"cancel|withdrawn")
_ARTICLE = re.compile(r"\b(a|an) ([a-z]+)\b")
_NAMED = re.compile(r"^(?:name of the (?:[a-z]+ )*?([a-z]+)|([a-z]+) name)$")  # 'name of the insured pet', 'pet name'
_NOISE = re.compile(r"\s*(\(optional filter\)|\(YYYY-MM-DD\)|, e\.g\. .*)$")


def _say_item(item: Mapping[str, Any]) -> str:
    """One line of an order: '2 x MED-0063' (and its amount or status once it exists: '(293.24, cancelled)')."""
    ids = [k for k in item if k.endswith("_id")]
    what = value_text(item[ids[-1]]) if ids else ", ".join(value_text(v) for k, v in item.items() if k != "quantity")
    head = f"{item['quantity']} x {what}" if "quantity" in item else what
    extra = [say_value(k, v) for k, v in item.items() if "amount" in k] + \
            [value_text(v) for k, v in item.items() if _STATUS.search(k) and v != "active"]
    return head + (f" ({', '.join(extra)})" if extra else "")


def say_value(key: str, value: Any) -> str:
    """A value as people write it: 'Friday, March 6, 2026', '1,250.00', 'credit card', 'yes'; an order's lines
    as '2 x MED-0063, 3 x MED-0104'."""
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return ", ".join(_say_item(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and _MONEY.search(key):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, int):
        return str(value)
    text = value_text(value)
    if ISO_DATE.match(text):
        return human_date(text, weekday=True)
    return text.replace("_", " ") if re.fullmatch(r"[a-z]+(_[a-z]+)+", text) else text


# A payment status with the amount due, said together: '494.45 is due and not yet paid'.
_PAID = {"paid": ("was due and has been paid", "it has been paid"),
         "unpaid": ("is due and not yet paid", "it is not yet paid"),
         "refunded": ("was paid and has been refunded", "it has been refunded")}


def _count(n: int) -> str:
    return "one match" if n == 1 else f"{n} matches"


def _listing(parts: list[str]) -> str:
    """'a, b and c' ('a, b, and c' when a part holds a comma of its own, as a date does)."""
    if len(parts) == 1:
        return parts[0]
    last = ", and " if any("," in p for p in parts[:-1]) else " and "
    return ", ".join(parts[:-1]) + last + parts[-1]


def _payment(told: dict[str, Any]) -> list[str]:
    """A record's payment told in words, its fields taken out of `told`: '494.45 is due and not yet paid', 'you
    paid the 1,929.20 due by credit card' (a rent, premium or payment status; one this does not know is left to
    the field list)."""
    state = next((k for k in told if _STATUS.search(k) and k != "status" and "payout" not in k  # paid to them
                  and isinstance(told[k], str) and told[k] in _PAID), None)
    if state is None:
        return []
    with_due, alone = _PAID[told.pop(state)]
    due = next((k for k in told if k.endswith("_due") and isinstance(told[k], (int, float))), None)
    owed = say_value(due, told.pop(due)) if due else None
    if "amount_paid" not in told:
        return [f"{owed} {with_due}" if owed else alone]
    method = told.pop("payment_method", None)
    by = f" by {say_value('payment_method', method)}" if method is not None else ""
    paid = say_value("amount_paid", told.pop("amount_paid"))
    if paid == owed:
        return [f"you paid the {paid} due{by}"]
    return [f"{owed} {with_due}" if owed else alone, f"you paid {paid}{by}"]


def _words(name: str) -> str:
    return name.replace("_", " ").strip()


def record_ids(row: Mapping[str, Any]) -> list[str]:
    """A row's id fields other than the person's, its own first ('boarding_stay_id', then what it points at)."""
    return [k for k in row if k.endswith("_id") and k != "person_id"]


class Vocabulary:
    """Labels of tools and fields, read from the OpenAI tool list the assistant is given."""

    def __init__(self, tools: Sequence[Mapping[str, Any]]) -> None:
        self.actions: dict[str, str] = {}
        self.params: dict[str, list[str]] = {}  # each tool's argument names
        seen: dict[str, set[str]] = {}
        self.described: dict[tuple[str, str], str] = {}  # (tool, argument): its label in that tool
        for tool in tools:
            fn = tool.get("function", tool)
            self.actions[fn.get("name", "")] = str(fn.get("description") or "").rstrip(".")
            self.params[fn.get("name", "")] = list(((fn.get("parameters") or {}).get("properties") or {}))
            for name, spec in ((fn.get("parameters") or {}).get("properties") or {}).items():
                text = _NOISE.sub("", str(spec.get("description") or "")).strip()
                text = re.sub(r"^(The|the) [\w' ]+?'s (?=person id)", "", text)  # "The member's person id"
                # a question is no label, nor an example ('e.g. LN-0001')
                if text and not re.match(r"(How|Whether|Which|What|When|Why|Where|Who|e\.g\.|For example) ", text):
                    text = text[:1].lower() + text[1:] if not text[1:2].isupper() else text
                    seen.setdefault(name, set()).add(text)
                    self.described[fn.get("name", ""), name] = text
        # A name two tools describe differently (a fusion's `status`) is labelled by its own words.
        self.fields = {name: next(iter(texts)) for name, texts in seen.items() if len(texts) == 1}

    def label(self, key: str, tool: str | None = None) -> str:
        """A field's label; given the tool, as that tool describes it (a name tools describe differently)."""
        return (self.described.get((tool, key)) if tool else None) or self.fields.get(key) or _words(key)

    def said(self, key: str, tool: str | None = None) -> str:
        """The label as the agent says it to the customer: 'day you collect the fill'."""
        return as_said(self.label(key, tool), "agent")

    def action(self, tool: str) -> str:
        text = as_said(self.actions.get(tool) or _words(tool), "agent")
        return text[:1].lower() + text[1:]

    def deed(self, tool: str, arguments: Mapping[str, Any] | None = None,
             discussed: Collection[str] | None = None) -> str:
        """The action as a person says it about this request: 'insure Olive under that plan' rather than the
        tool's 'insure a pet under a plan' (a thing the arguments name goes by its name; the others, already
        talked about, are 'that' one; the first, what the call makes, keeps its article). Given the things
        `discussed` so far ('storage unit'), only those are 'that' one."""
        names = {}
        for key, value in (arguments or {}).items():
            named = _NAMED.match(self.label(key))
            if named and isinstance(value, str) and value:
                names[named.group(1) or named.group(2)] = value
        seen = []

        def definite(m: re.Match[str]) -> str:
            seen.append(m.group(2))
            if m.group(2) in names:
                return names.pop(m.group(2))
            known = discussed is None or any(d.endswith(m.group(2)) or m.group(2).endswith(d) for d in discussed)
            return m.group(0) if len(seen) == 1 or not known else f"that {m.group(2)}"

        return _ARTICLE.sub(definite, self.action(tool))

    def noun(self, key: str) -> str:
        """What an id field names: 'charging station' for `charging_station_id`."""
        return re.sub(r" id$", "", self.said(key))

    def thing(self, key: str, value: Any) -> str:
        """'charging station CST-0220' for an id field, else 'slot length in minutes 40'."""
        label = self.said(key)
        if isinstance(value, list):  # an order's lines: "the medication lines to order: 2 x MED-0063, ..."
            return f"{re.sub(r' *[,(].*$', '', label)}: {say_value(key, value)}"
        if key.endswith("_id"):
            return f"{self.noun(key)} {value_text(value)}"
        return f"{label} {say_value(key, value)}"

    def change(self, tool: str, arguments: Mapping[str, Any]) -> str:
        """What a write is about to do, in a sentence: 'move the start date of that policy (pet policy PPO-0005):
        the first day of coverage will be Saturday, April 4, 2026'. The records it names go in brackets, the
        values it sets are told as they will be; the person's own id is implied, a name said in the deed is not
        repeated."""
        deed = self.deed(tool, arguments)
        shown = {k: v for k, v in arguments.items() if k != "person_id"
                 and not (isinstance(v, str) and v and re.search(rf"\b{re.escape(v)}\b", deed))}
        records = [self.thing(k, v) for k, v in shown.items() if k.endswith("_id")]
        values = [self.clause(k, v, future=True) for k, v in shown.items() if not k.endswith("_id")]
        return deed + (f" ({', '.join(records)})" if records else "") + (f": {_listing(values)}" if values else "")

    def outcome(self, output: Any, arguments: Mapping[str, Any]) -> str:
        """What a call returned, as a person tells it: 'Your boarding stay BST-0054 is checked in: the arrival
        day is Monday, February 16, 2026, and 1,929.20 is due and not yet paid.' Told: the row's id, its
        status, the fields the call set, dates and amounts. Lists are told row by row (at most three)."""
        if isinstance(output, list):
            if not output:
                return "I found nothing that matches."
            rows = [self._row(row, arguments, alone=False) for row in output[:3]]
            extra = len(output) - 3
            more = f" There {'is' if extra == 1 else 'are'} {extra} more." if extra > 0 else ""
            return f"I found {_count(len(output))}. " + " ".join(rows) + more
        return self._row(output, arguments, alone=True)

    def _row(self, output: Any, arguments: Mapping[str, Any], alone: bool) -> str:
        if not isinstance(output, Mapping):
            return f"The result is {say_value('', output)}."
        ids = record_ids(output)
        owned = "person_id" in output
        head = (("your " if owned else "") + self.thing(ids[0], output[ids[0]]) if ids
                else "your account" if owned else "the record")
        told = {k: v for k, v in output.items() if k not in ids[:1] and k != "person_id" and v is not None
                and v != "" and (_STATUS.search(k) or k in arguments or _MONEY.search(k)
                                 or (isinstance(v, str) and ISO_DATE.match(v)))}
        money = _payment(told)  # takes the payment's fields out of `told`: they are told last, together
        state = next((k for k in told if _STATUS.search(k)), None)
        if state and _CALLED_OFF.search(str(told[state])):  # nothing is owed on what was called off
            money = [m for m in money if not m.endswith(_PAID["unpaid"])]
        clauses = [self.clause(k, v) for k, v in told.items() if k != state] + money
        text = head[:1].upper() + head[1:] + (f" is {say_value(state, told[state])}" if state else "")
        if not clauses:  # nothing to tell but the record itself: 'I found care provider PRV-0282.'
            return text + "." if state or not alone else f"I found {head}."
        return f"{text}: {_listing(clauses)}."

    def clause(self, key: str, value: Any, future: bool = False) -> str:
        """'the arrival day is Monday, February 16, 2026', 'the boarding suite is SUI-0259'; in the `future`, what a
        change will make it: 'the arrival day will be ...', 'it will not be refundable'."""
        label = self.said(key)
        if isinstance(value, list):
            label = re.sub(r" *[,(].*$", "", label)
        elif key.endswith("_id"):
            label = self.noun(key)
        be, not_be, has, lacks = (("will be", "will not be", "will have", "will not have") if future
                                  else ("is", "is not", "has", "does not have"))
        if isinstance(value, bool):  # a flag is told by its name: 'it is in stock', 'it does not have pets'
            flag = _words(key).removeprefix("is ")
            if flag.startswith("has "):
                return f"it {has if value else lacks} {flag[4:]}"
            return f"it {be if value else not_be} {flag}"
        if isinstance(value, list) and not future:  # 'the medication lines to order are 2 x MED-0063, ...'
            be = "are"
        return f"{label_phrase(label)} {be} {say_value(key, value)}"

    def fact_about(self, outputs: Sequence[Any], wanted: str) -> str | None:
        """'the slot length in minutes is 40' when an output field holds `wanted` (first match), said of its record
        when the label does not name it: 'the full name of doctor DOC-0194 is Yuki Ortega', 'the status of your
        prescription fill RXF-0100 is requested'."""
        for output in outputs:
            rows = output if isinstance(output, list) else [output]
            for row in rows:
                if not isinstance(row, Mapping):
                    continue
                for key, value in row.items():
                    if value is not None and _same(value_text(value), wanted):
                        if key.endswith("_left") and isinstance(value, (int, float)) and "person_id" in row:
                            # a customer's balance, though a write returned it: 'you have 3 plan visits left'
                            what = label_phrase(self.said(key)).removeprefix("the ")
                            return f"you have {value} {what}" if isinstance(value, int) else \
                                f"the {what} on your account is {say_value(key, value)}"
                        return f"{self._of_record(key, row)} is {say_value(key, value)}"
        return None

    def _of_record(self, key: str, row: Mapping[str, Any]) -> str:
        label = label_phrase(self.said(key))
        ids = record_ids(row)
        if key.endswith("_id") or not ids or len(label.split()) > 4:  # 'the day the care was received' stays
            return label
        noun = self.noun(ids[0])
        if re.search(rf"\b{re.escape(noun.split()[-1])}\b", label):  # 'the generic name of the medication'
            return label
        return f"{label} of {'your ' if 'person_id' in row else ''}{self.thing(ids[0], row[ids[0]])}"


def _same(text: str, wanted: str) -> bool:
    """The same value as written two ways ('544.6' and '544.60', '2026-03-20' and 'March 20, 2026')."""
    return text.casefold() == wanted.casefold() or (said_value(text, wanted) and said_value(wanted, text))


def latest_per_record(outcomes: list[str]) -> list[str]:
    """Outcome sentences with one per record ("Your vet visit VVS-0280 is ..."): a record changed twice is told
    as it ended, in the place of its last change."""
    heads = [m.group(0) if (m := _RECORD.match(o)) else None for o in outcomes]
    return [o for i, o in enumerate(outcomes) if heads[i] is None or heads[i] not in heads[i + 1:]]


_RECORD = re.compile(r"^[^.:]*?\b[A-Z][A-Z0-9]*-\d+\b")  # a sentence's head up to the record's id
