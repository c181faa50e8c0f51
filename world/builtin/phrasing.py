"""Builtin phrasing data: reasons for contacting a service, personas, and first queries in a persona's voice."""
from __future__ import annotations

import random
import re
from typing import Any

from skiller.contract.dialogue import as_said, human_date, label_phrase
from skiller.contract.wording import article, plural

__all__ = ["NAMES", "REASONS", "REFUSAL_REASONS", "STYLES", "article", "intent", "persona", "plural", "query",
           "situation"]

# Reasons for call per template group; {service}, {what} (and {target} for create) are filled in.
REASONS: dict[str, list[str]] = {
    "profile": ["You are filling in a form and need your {what} as {service} has it.",
                "You want to make sure {service} has your details right, starting with your {what}.",
                "A letter asked you to quote your {what} and you cannot find it."],
    "entity": ["You are comparing options at {service} and want one detail about {a_what} before deciding.",
               "A friend mentioned {a_what} at {service} and you want to check it yourself.",
               "You are planning ahead and need a fact about a particular {what}."],
    "search": ["You are exploring what {service} offers and want to see what kind of {what} is available.",
               "You need {a_what} that fits your requirements and do not know where to start.",
               "You heard {service} has several options and want the first one that fits."],
    "record": ["You lost track of your {what} with {service} and want to check on it.",
               "Your paperwork with {service} is incomplete and you need a detail of your {what}.",
               "You want to double-check your {what} before making plans."],
    "create": ["You have decided on the {target} you want and need a new {what} with {service}.",
               "Your plans are set and you want to arrange {a_what} with {service} today.",
               "You were advised to get {a_what} soon and already chose the {target}."],
    "set_status": ["Your plans changed and your {what} has to change with them.",
                   "You want your {what} with {service} moved on to its next step.",
                   "Something came up and you need {service} to act on your {what}."],
    "update": ["Your circumstances changed, so one detail of your {what} must be updated.",
               "You noticed a detail of your {what} no longer works for you.",
               "You want your {what} with {service} adjusted before it goes ahead."],
    "pay": ["You received a bill from {service} for your {what} and want to settle it.",
            "You like to pay what you owe right away, and your {what} is still open.",
            "A reminder said your {what} with {service} still has an amount due."],
    "refusal": ["You want something done about your {what} with {service}, and you are not sure it is possible.",
                "You are in a hurry and want your {what} sorted the way you planned it."],
}

# Reasons for a refused request, per kind of the rule it breaks: the story fits what stops it.
REFUSAL_REASONS: dict[str, list[str]] = {
    "date_window": ["Your calendar is fixed and only that day works for you.",
                    "You plan far ahead and want the day you picked, whatever it is."],
    "lead_time": ["Something came up at the last minute and you need {service} to act on your {what} now.",
                  "You only just realised you need to change your {what}, even though it is short notice."],
    "value_range": ["You know exactly how much you need and want your {what} set that way.",
                    "You worked out the figure yourself and want your {what} to match it."],
    "tier_limit": ["You know exactly how much you need and want your {what} set that way.",
                   "You assume your account allows what you ask for your {what}."],
    "target_flag": ["You have set your heart on one particular {target} for your {what}.",
                    "A friend recommended {a_target} and you want no other."],
    "requires_status": ["You want your {what} dealt with now, whatever state it is in.",
                        "You assume your {what} with {service} is ready for the next step."],
    "max_active": ["You like to have several {whats} lined up with {service} at once.",
                   "You want another {what}, on top of the ones you already have."],
    "no_outstanding": ["You want a new {what}, even though one of your {counteds} is {state}.",
                       "You want to move ahead with a new {what} while one of your {counteds} is {state}."],
    "member_attr": ["You assume your account with {service} lets you do this.",
                    "You expect {service} to treat your {what} like anyone else's."],
    "ownership": ["A relative asked you to take care of their {what} with {service} for them.",
                  "You are helping a family member sort out their {what} and have their details at hand."],
    "computed_fee": ["You have a figure in mind for your {what} and want it as it is.",
                     "You want your {what} at the amount you chose, whatever fee it brings."],
    "balance_covers": ["You assume there is still enough left on your account with {service} for this {what}.",
                       "You have not kept track of what you used this year and want your {what} anyway."],
    "refund_schedule": ["Your plans changed at the last minute and you want to call off your {what} with {service} now.",
                        "You assume {a_what} can still be called off, even this close to its day."],
}

# (name, pronoun-free) from many cultures; every persona draws one.
NAMES = [
    "Amara Okafor", "Kenji Watanabe", "Sofia Marquez", "Liam O'Connell", "Priya Raghunathan", "Mateus Oliveira",
    "Fatima Zahra Benali", "Henrik Lindqvist", "Mei-Ling Chen", "Tomasz Kowalczyk", "Aisha Mwangi", "Diego Fernandez",
    "Ingrid Solberg", "Rahul Mehta", "Yuki Tanaka", "Chiara Bellini", "Oluwaseun Adeyemi", "Nadia Haddad",
    "Pavel Novak", "Leilani Kahale", "Santiago Rojas", "Elif Yilmaz", "Dmitri Volkov", "Anh Nguyen",
    "Grace Mensah", "Jonas Becker", "Camila Duarte", "Hamid Karimi", "Siobhan Byrne", "Kwame Boateng",
    "Isabel Moreau", "Arjun Pillai", "Noor Al-Sayed", "Mikael Virtanen", "Lucia Romero", "Tenzin Dorje",
    "Zanele Dlamini", "Bogdan Ionescu", "Hana Kim", "Emeka Nwosu", "Astrid Jensen", "Rafael Costa",
    "Layla Farouk", "Wiremu Ngata", "Ayelet Cohen", "Marta Sokolova", "Joao Pereira", "Ines Carvalho",
]

# style -> (patience choices, verbosity choices, register choices, openers, closers)
STYLES: dict[str, dict[str, list[str]]] = {
    "curt": {"patience": ["low", "medium"], "verbosity": ["terse"], "register": ["casual", "neutral"],
             "open": [""], "close": ["", "Thanks."]},
    "chatty": {"patience": ["high", "medium"], "verbosity": ["detailed", "normal"], "register": ["casual"],
               "open": ["It's been quite the week!", "Hope your day is going well!",
                        "I was just telling my neighbour about this, funny enough."],
               "close": ["Thanks a million, you're a star!", "Cheers, really appreciate it!"]},
    "anxious": {"patience": ["medium", "low"], "verbosity": ["normal", "detailed"], "register": ["neutral", "casual"],
                "open": ["I'm a little nervous about getting this wrong.", "Sorry, I worry about these things.",
                         "I hope this isn't a problem."],
                "close": ["Please let me know it worked, I'd hate for anything to go wrong.",
                          "Thank you, it would really put my mind at ease."]},
    "meticulous": {"patience": ["high"], "verbosity": ["detailed"], "register": ["formal", "neutral"],
                   "open": ["I'd like to be precise, so here are the details.", "To avoid any confusion:"],
                   "close": ["Please confirm every detail once it is done.", "Kindly read the result back to me."]},
    "skeptical": {"patience": ["low", "medium"], "verbosity": ["normal"], "register": ["neutral", "formal"],
                  "open": ["Last time this didn't go smoothly, so bear with me.", "I'll believe it when I see it."],
                  "close": ["Please double-check before you tell me it's done.", "And tell me exactly what you changed."]},
    "cheerful": {"patience": ["high", "medium"], "verbosity": ["normal", "detailed"], "register": ["casual", "neutral"],
                 "open": ["What a lovely day to sort this out!", "Good news day for me, hopefully!"],
                 "close": ["Thanks so much!", "You're wonderful, thank you!"]},
    "hurried": {"patience": ["low"], "verbosity": ["terse", "normal"], "register": ["casual", "neutral"],
                "open": ["Quick one, I'm between meetings.", "In a rush, sorry."],
                "close": ["Thanks, need to run.", ""]},
    "confused": {"patience": ["medium", "high"], "verbosity": ["normal", "detailed"], "register": ["casual", "neutral"],
                 "open": ["I'm not sure I'm asking the right place, but here goes.", "I'm a bit lost with this, honestly."],
                 "close": ["Does that make sense?", "Sorry if that was muddled."]},
    "courteous": {"patience": ["high"], "verbosity": ["normal"], "register": ["formal"],
                  "open": ["I hope you are well.", "Thank you for taking my request."],
                  "close": ["With many thanks for your help.", "I appreciate your assistance."]},
}

_GREETING = {"casual": ["Hey", "Hi there", "Hiya", "Hey there", "Hi"],
             "neutral": ["Hello", "Hi", "Good day", "Hello there"],
             "formal": ["Good morning", "Good afternoon", "Good day to you", "Good evening"]}
_WANT = {"casual": ["I wanna", "I need to", "Can you help me", "I'm trying to", "Could you help me"],
         "neutral": ["I'd like to", "I need to", "Could you help me", "I would like to", "Please help me"],
         "formal": ["I would like to", "I wish to", "Could you kindly help me", "I am writing to"]}
_KNOW = {"casual": ["Can you tell me", "I wanna know", "Could you check", "I'm trying to find out"],
         "neutral": ["Could you tell me", "I'd like to know", "I need to find out", "Can you check"],
         "formal": ["Could you kindly tell me", "I would like to know", "I wish to find out", "May I ask"]}
_NAME = ["my name is {v}", "this is {v}", "{v} here"]


_THIRD = {"needs": "need", "wants": "want", "thinks": "think", "has": "have", "is": "are", "asks": "ask",
          "orders": "order", "does": "do", "goes": "go"}
_PAST = {"had", "lost", "fell", "got", "was", "took", "left", "came", "broke", "just"}


def situation(hint: str) -> str | None:
    """A catalog hint about why people call ('moving and needs to store furniture', 'thinks the last bill is
    too high') as the person's own sentence start ('You are moving and need to store furniture'); None when the
    hint is not a verb phrase ('water bill seems wrong')."""
    head = hint.split(" ", 1)[0]
    base = re.sub(rf"(^|\band |\bjust )({'|'.join(_THIRD)})\b", lambda m: m.group(1) + _THIRD[m.group(2)], hint)
    if head.endswith("ing"):
        return f"You are {base}"
    if head in _THIRD or head in _PAST or head.endswith("ed"):
        return f"You {base}"
    return None


def persona(rng: random.Random) -> dict[str, Any]:
    style = rng.choice(sorted(STYLES))
    spec = STYLES[style]
    return {"name": rng.choice(NAMES), "style": style, "patience": rng.choice(spec["patience"]),
            "verbosity": rng.choice(spec["verbosity"]), "language_register": rng.choice(spec["register"]),
            "language": "en"}


_VERBS = ("want|need|have|had|like|owe|noticed|received|heard|lost|decided|do|can|cannot|worry|planned|chose|picked|"
          "booked|own|will|would|get|got|paid|ask|asked|expect|know|think|used|assume")


def _first_person(text: str, want: str, register: str) -> str:
    """The goal as the user says it: 'You want to X. It is your Y.' -> 'I'd like to X. It is my Y.'"""
    am = "I am" if register == "formal" else "I'm"
    then = "After that I'd like to" if register != "casual" else "Then I wanna"
    text = re.sub(r"\bThen you want to\b", "\x01", re.sub(r"^You want to\b", "\x00", text))
    subs = [(r"\bYou want\b", "I want"), (r"\b[Yy]ou are\b", am), (r"\b[Yy]ou were\b", "I was"),
            (r"\bYou do not\b", "I do not" if register == "formal" else "I don't"), (r"\bfor you\b", "for me"),
            (r"\b(lets|let|helps|help|allows|allow|makes|tells|asks) you\b", r"\1 me"),  # 'lets me do', not 'lets I do'
            (rf"\byou(?= (?:already |still |also |just |now |never )?(?:{_VERBS})\b)", "I"),  # "the ones I already have"
            (r"\byourself\b", "myself"), (r"\byours\b", "mine"), (r"\bYour\b", "My"), (r"\byour\b", "my"),
            (r"\bYou\b", "I"), (r"\byou\b", "me")]
    for pattern, repl in subs:
        text = re.sub(pattern, repl, text)
    text = text.replace("\x00", want).replace("\x01", then)
    if text.startswith(("Could", "Can", "May I")) and text.endswith("."):
        text = text[:-1] + "?"
    return text[:1].upper() + text[1:]


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?", ":")) else ".")


_SEGMENT = re.compile(r"\s*Then, with ([A-Z][A-Za-z0-9]*): ")
_REF = r"[A-Z][A-Z0-9]*-\d+"
_ASKING = ("You want to know", "You are looking for", "You want the")


def _strip_values(sentence: str, facts: dict[str, str]) -> str:
    """A goal sentence without the concrete references, dates and amounts a customer gives only when asked."""
    text = re.sub(r"\s*\([^)]*\)", "", sentence)  # '(day of the slot 2026-02-28)', '(Lakemont)'
    text = text.replace("the first match the system lists", "the first one that comes up")
    # 'of care provider PRV-1' -> 'of a care provider' (the noun only: not 'of provider of care provider')
    text = re.sub(rf"\b(of|for) (?!(?:your|the|an?|my|of|for) )([a-z]+(?: (?!of |for )[a-z]+)*?) {_REF}\b",
                  lambda m: f"{m.group(1)} {article(m.group(2))}", text)
    text = re.sub(rf"\s+{_REF}\b", "", text)
    for value in facts.values():
        for form in {value, value.replace("_", " ")}:
            if re.fullmatch(r"[\d.,:-]+", form) or "_" in value:  # dates, amounts, codes like credit_card
                # 'with an item price of at most 40' -> 'below the item price I have in mind'
                text = re.sub(rf"\bwith an? ([a-z][a-z ]*?) of at most {re.escape(form)}(?=[\s.,;]|$)",
                              r"below the \1 I have in mind", text)
                # 'changing the rooms to move to 3' says nothing once the value goes: the change goes with it
                text = re.sub(rf",? (?:changing [^,.;]*? to|so that [^,.;]*? is) {re.escape(form)}(?=[\s.,;]|$)", "", text)
                # (a status stays: 'your only stay in status checked in' needs it)
                text = re.sub(rf"(?<!status),?\s+(?:(?:paying )?by|to|on|for)?\s*{re.escape(form)}(?=[\s.,;]|$)", "", text)
    return text


def intent(instruction: str, facts: dict[str, str]) -> list[tuple[str | None, str]]:
    """The goal as (service or None, sentences) without values: what a customer says first."""
    lead = re.match(r"^([A-Z][A-Za-z0-9]*): ", instruction)
    body = instruction[lead.end():] if lead else instruction
    parts = _SEGMENT.split(body)  # [text, service, text, service, text...]
    segments = [(lead.group(1) if lead else None, parts[0])] + list(zip(parts[1::2], parts[2::2]))
    out = []
    for service, text in segments:
        kept = []
        for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
            if not sentence:
                continue
            if not sentence.startswith(_ASKING) and ":" in sentence:
                sentence = sentence.split(":", 1)[0] + "."
            sentence = re.sub(r",\s*paying by [^.]*", "", sentence)
            kept.append(_strip_values(sentence, facts).strip())
        out.append((service, " ".join(k if k.endswith((".", "?", "!")) else k + "." for k in kept if k)))
    return out


# A request that changes nothing closes without asking what was changed or whether it worked.
_READ_CLOSE = {"Please let me know it worked, I'd hate for anything to go wrong.":
               "Please tell me if anything looks off, I'd hate to get it wrong.",
               "Please confirm every detail once it is done.": "Please give me every detail exactly as you have it.",
               "Please double-check before you tell me it's done.": "Please double-check before you tell me.",
               "And tell me exactly what you changed.": "And tell me exactly what your records say."}


def _closes(style: dict[str, list[str]], kind: str) -> list[str]:
    if kind != "read":
        return style["close"]
    return [_READ_CLOSE.get(c, c) for c in style["close"]]


_DETAIL = ["In case it helps, {k} is {v}.", "For what it's worth, {k} is {v}.", "Oh, and {k} is {v}."]


def query(rng: random.Random, ctx: dict[str, Any]) -> dict[str, str]:
    """The first message (the intent, in the persona's voice, without ids or values the customer gives
    only when asked) and the user scenario of one task, with seeded variants."""
    p = ctx.get("persona") or {}
    register, verbosity = p.get("language_register", "neutral"), p.get("verbosity", "normal")
    style = STYLES.get(p.get("style", ""), STYLES["courteous"])
    facts: dict[str, str] = {str(k): str(v) for k, v in (ctx.get("facts") or {}).items()}
    instruction, reason = str(ctx.get("instruction") or "").strip(), str(ctx.get("reason") or "").strip()
    goals = []
    for service, text in intent(instruction, facts) if instruction else []:
        want = rng.choice(_WANT[register])
        if text.startswith("You want to know"):
            want, text = rng.choice(_KNOW[register]), "You want to" + text[len("You want to know"):]
        said = " ".join(_first_person(s, want, register) for s in re.split(r"(?<=[.!?])\s+", text) if s)
        if service and goals:
            said = f"And with {service}, " + (said if said.startswith("I ") or said.startswith("I'") else _lower(said))
        elif service:
            said = f"For {service}, " + (said if said.startswith("I ") or said.startswith("I'") else _lower(said))
        goals.append(_sentence(said))
    if not goals:
        goals = ["I need some help."]
    parts: list[str] = []
    greet = rng.choice(_GREETING[register]) if p.get("style") != "curt" or rng.random() < 0.3 else ""
    opener = rng.choice(style["open"]) if verbosity != "terse" else ""
    if greet:
        parts.append(greet if greet.endswith(",") else greet + ("!" if register == "casual" else "."))
    if opener and rng.random() < 0.8:
        parts.append(opener)
    if reason and (verbosity == "detailed" or verbosity == "normal" and rng.random() < 0.5):
        parts.append(_first_person(reason, "I want to", register))
    parts.extend(goals)
    name = next((v for k, v in facts.items() if k.lower() == "full name"), None)
    if name and rng.random() < 0.5:  # a name is how people introduce themselves; ids come when asked
        parts.append(_sentence(rng.choice(_NAME).format(v=name)))
    # A talkative customer may volunteer one detail up front (a date, an amount), never a reference.
    spoken = " ".join(parts).lower()
    details = [(k, v) for k, v in facts.items() if not k.lower().endswith(("full name", "person id"))
               and k != ctx.get("mistake") and v.lower() not in spoken and not re.fullmatch(_REF, v)]
    if details and verbosity == "detailed" and rng.random() < 0.5:
        k, v = rng.choice(details)
        shown = human_date(v) if register != "neutral" else v
        parts.append(rng.choice(_DETAIL).format(k=label_phrase(k, "user"), v=shown.replace("_", " ")))
    closer = rng.choice(_closes(style, ctx.get("kind", "read"))) if verbosity != "terse" or rng.random() < 0.3 else ""
    if closer:
        parts.append(closer)
    # People say "ready for pickup", not the stored code `ready_for_pickup`.
    first = re.sub(r"\b[a-z]+(?:_[a-z0-9]+)+\b", lambda m: m.group(0).replace("_", " "), " ".join(x for x in parts if x))
    first = as_said(first, "user")  # "record that I collected a ready fill", not "... the customer collected ..."
    known = "; ".join(f"{k}: {v}" for k, v in facts.items())
    kind = ctx.get("kind", "read")
    who = name or p.get("name", "a customer")  # the person on record, so the profile check can succeed
    play = [f"You are {who}, {article(p.get('style', 'courteous'))} person with {p.get('patience', 'medium')} "
            f"patience who writes {verbosity} messages in {article(register)} register.",
            f"Your goal: {instruction}",
            "Beyond what your first message says, share the facts you know only when the assistant asks for them, "
            "one or two at a time; never invent ids, dates, amounts or other details you were not given, and say "
            "you do not know when asked for anything else.",
            "Confirm with a clear yes when the assistant lists an action that matches your goal, and say no otherwise."]
    if kind == "refusal":
        play.append("If the assistant explains that a rule forbids your request, ask once whether there is any way "
                    "around it, then accept the answer.")
    elif kind == "read":
        play.append("Make sure the assistant tells you what you want to know before you finish.")
    play.append("When your goal is met, or the assistant has refused it, end the conversation by writing ###STOP###.")
    return {"first_query": first, "reason_for_call": reason or "You need help from the service.",
            "known_info": ("You know the following: " + known + ".") if known else "You know nothing specific.",
            "unknown_info": str(ctx.get("unknown") or "Nothing else."),
            "task_instructions": " ".join(play),
            "description": f"{kind.capitalize()} task for {who} ({p.get('style', 'courteous')}): "
                           f"{instruction}"}


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]



