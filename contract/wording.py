"""How a generated sentence reads: the article a word takes, and the slips a customer's first message must not
have (generators use the one, tests and bench/first_messages.py the other)."""
from __future__ import annotations

import re

__all__ = ["CHANGE_CLOSE", "FLAWS", "LABEL_PARTS", "article", "first_message_flaws", "plural", "vowel_sound"]

# Words spelled with a vowel but said with a consonant ('a unit', 'a euro', 'a one-off') and the reverse
# ('an hour'); acronyms are said letter by letter ('an MRI', 'a PIN' is a word but rare here).
_YOU = re.compile(r"^(?:uni(?!n[a-z]|mp|ntended)|us[eu]|ut[ei]|ur[aeio]|uku|ubiq|eu|ewe|one\b|one-|once)", re.I)
_SILENT_H = re.compile(r"^(?:hour|honest|honou?r|heir)", re.I)
_LETTER_VOWEL = set("AEFHILMNORSX")


def vowel_sound(word: str) -> bool:
    """Whether `word` is said starting with a vowel sound (what 'an' goes before)."""
    word = word.strip("\"'(")
    if not word:
        return False
    if word[:1].isdigit():
        return bool(re.match(r"^(?:8|11(?!\d{2})|18(?!\d{2}))", word))
    if len(word) > 1 and word.isupper() and word.isalpha() and len(word) <= 4:
        return word[0] in _LETTER_VOWEL
    if _SILENT_H.match(word):
        return True
    return word[:1].lower() in "aeiou" and not _YOU.match(word)


def article(noun: str) -> str:
    """'a unit', 'an appointment', 'an hour': the noun phrase with the indefinite article it takes."""
    return ("an " if vowel_sound(noun) else "a ") + noun


def plural(noun: str) -> str:
    """'appointment' -> 'appointments', 'pet policy' -> 'pet policies', 'class pass' -> 'class passes'."""
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + ("es" if re.search(r"(s|x|z|ch|sh)$", noun) else "s")


# Words that name a part of the thing a label starts with ("plan name", "unit size"): said once, after it.
LABEL_PARTS = "name|title|code|status|type|category|number|size|level|tier"
_ARTICLE = re.compile(r"\b([Aa]n?) ([A-Za-z0-9][\w'-]*)")
_DOUBLED = re.compile(r"\b([A-Za-z]+) \1\b", re.I)
_WHO_ING = re.compile(r"\bwho ([a-z]+ing)\b")
_ME_SUBJECT = re.compile(r"\b(?:what|that|which|when|where|if|because|whether|before|after|until|so) me "
                         r"(?!know\b|too\b|first\b|either\b)"
                         r"|\b(?:lets|let|helps|help|allows|makes|tells|to|for|with) I\b")  # and 'lets I do'
_FIRST_SECOND = re.compile(r"\b(?:for|with|of) an? (?:first|second|third) \w+")
_BROKEN_OF = re.compile(r"\bof (?:an?|the) (\w+) of (?:\w+ ){0,2}?\1s?\b"  # 'the kind of a provider of care provider'
                        rf"|\b(\w+) (?:{LABEL_PARTS}) of (?:the|an?|my) (?:only )?(?:[\w-]+ )?\2\b"  # 'plan name of the pet plan'
                        r"|\bof (?:the|an?|my) [\w ]{1,30}? of (?:the|an?|my) [\w ]{1,30}? of (?:the|an?|my) ")  # three 'of's
_DANGLING = re.compile(r"\b(?:in status|at most|at least)(?= ?[.,;?!]|$)")  # a value dropped with the ids
_QUESTION = re.compile(r"(?:^|[.!?] )((?:Could|Can|May I|Would) [^.!?]*)\.")
# A closing line asking what was changed or whether it worked: nothing changes in a request to read.
CHANGE_CLOSE = re.compile(r"\bwhat you changed\b|\b(?:it's|it is) done\b|\bit worked\b|\bonce it is done\b", re.I)

FLAWS = ("article", "doubled word", "who + -ing", "pronoun case", "first/second X", "broken noun phrase",
         "dangling value", "question without '?'", "change close on a read")


def _article_slips(text: str) -> list[str]:
    out = []
    for m in _ARTICLE.finditer(text):
        art, word = m.group(1), m.group(2)
        if art[0] == "A" and m.start() > 0 and not re.search(r"[.!?:]\s*$", text[:m.start()]):
            continue  # 'plan A', 'Urban Flat A as the plan name': a letter, not the article
        if (art.lower() == "an") != vowel_sound(word):
            out.append(m.group(0))
    return out


def first_message_flaws(text: str, writes: bool = True) -> dict[str, list[str]]:
    """The slips in a customer's first message, by kind (the flaw names in FLAWS): the words that show each.
    `writes` is whether the request asks to change anything (a read's close must not ask what was changed)."""
    found = {
        "article": _article_slips(text),
        "doubled word": [m.group(0) for m in _DOUBLED.finditer(text)],
        "who + -ing": [m.group(0) for m in _WHO_ING.finditer(text)],
        "pronoun case": [m.group(0).strip() for m in _ME_SUBJECT.finditer(text)],
        "first/second X": [m.group(0) for m in _FIRST_SECOND.finditer(text)],
        "broken noun phrase": [m.group(0) for m in _BROKEN_OF.finditer(text)],
        "dangling value": [m.group(0) for m in _DANGLING.finditer(text)],
        "question without '?'": [m.group(1)[:40] for m in _QUESTION.finditer(text)],
        "change close on a read": [] if writes else [m.group(0) for m in CHANGE_CLOSE.finditer(text)],
    }
    return {k: v for k, v in found.items() if v}
