"""Seeded value generation for the catalog's generator specs and the shared `person` rows, and the
fitting of generated record rows to the world's rules (status vs date, price x quantity, category).

Pure and deterministic: only `random.Random` methods whose output is stable across Python
versions (random, randint/randrange, choice) on a generator seeded with an int, so the same seed
gives the same values on any machine. The word lists are our own curated, invented data.
"""
from __future__ import annotations

import datetime
import hashlib
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_RECORD_COUNT",
    "GEN_KINDS",
    "PICKS",
    "RefLookup",
    "fit_amount",
    "fit_match",
    "fit_pairs",
    "fit_timing",
    "generate",
    "generate_distinct",
    "pair_key",
    "person_rows",
    "ref_id",
    "sub_rng",
]

#: Rows assumed for a referenced record when neither `catalog_lookup` nor the catalog gives a
#: count. Matches the default `steps.s06.rows_per_table`; pass `catalog_lookup` when it differs.
DEFAULT_RECORD_COUNT = 300

GEN_KINDS = ("choice", "int", "money", "bool", "date", "code", "pick", "ref", "compose")

#: "Domain.Record" -> row count, or (id_prefix, row count).
RefLookup = Callable[[str], "int | tuple[str, int]"] | Mapping[str, "int | tuple[str, int]"]

# ---------------------------------------------------------------- curated lists (our own)
FIRST_NAMES = (
    "Amara", "Mateo", "Sofia", "Kenji", "Priya", "Liam", "Fatima", "Noah", "Chiara", "Oluwaseun",
    "Ingrid", "Rafael", "Mei", "Aarav", "Zanele", "Tomas", "Leila", "Finn", "Yuki", "Carmen",
    "Dmitri", "Aisha", "Jonas", "Lucia", "Kwame", "Elif", "Hugo", "Nadia", "Santiago", "Hana",
    "Declan", "Farah", "Mikael", "Rosa", "Tariq", "Anouk", "Emeka", "Beatriz", "Arjun", "Freya",
    "Omar", "Camille", "Jun", "Valentina", "Kofi", "Signe", "Diego", "Layla", "Pavel", "Ines",
    "Ravi", "Astrid", "Malik", "Greta", "Thanh", "Isabela", "Idris", "Maren", "Kai", "Nour",
    "Bruno", "Esme", "Haruto", "Zofia", "Samuel", "Adaeze", "Luca", "Ayla", "Wei", "Marisol",
)
LAST_NAMES = (
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Castillo", "Nakamura", "Haddad", "Kowalski", "Patel",
    "Fernandes", "Adeyemi", "Bergstrom", "Chowdhury", "Delgado", "Eriksen", "Fitzgerald", "Gallagher",
    "Hashemi", "Ibarra", "Jovanovic", "Kaur", "Laurent", "Mensah", "Novak", "Ortega", "Petrov",
    "Quispe", "Rahman", "Sato", "Schneider", "Takahashi", "Umarov", "Varga", "Whitfield", "Xu",
    "Yilmaz", "Zielinski", "Abernathy", "Bianchi", "Cardoso", "Dubois", "Esposito", "Fonseca",
    "Grünberg", "Holmberg", "Iwasaki", "Jensen", "Kariuki", "Lombardi", "Mahlangu", "Nguyen",
    "Oyelaran", "Pereira", "Rossi", "Suzuki", "Tremblay", "Vasquez", "Wojcik", "Andersen", "Banerjee",
    "Coleman", "Demir", "Halvorsen", "Mwangi", "Sorensen", "Achterberg", "Park", "Romero", "Singh",
    "O'Connell",
)
CITIES = (
    "Alder Creek", "Ashbourne", "Bayhaven", "Brightwater", "Cedar Ridge", "Clearmont", "Coral Point",
    "Dunmore Falls", "Eastbrook", "Elmstead", "Fairhollow", "Glenmere", "Granite Bay", "Harrowgate",
    "Holloway Springs", "Ironvale", "Juniper Hill", "Kestrel Bay", "Lakemont", "Larkfield",
    "Maple Crossing", "Marlow Heights", "Northpoint", "Oakhaven", "Pinecrest", "Port Alma",
    "Quarry Glen", "Redstone", "Riverside Vale", "Saltmarsh", "Silverton Bay", "Stonebridge",
    "Sunhaven", "Thornbury", "Westmere", "Willowdale",
)
STREET_NAMES = (
    "Acacia", "Birch", "Chestnut", "Dockside", "Elm", "Foundry", "Garden", "Harbor", "Juniper",
    "Kingfisher", "Lantern", "Meadow", "Mill", "Orchard", "Quarry", "Rosewood", "Sparrow", "Tannery",
    "Union", "Vine", "Wharf", "Yarrow", "Beacon", "Copper", "Ferry", "Heron", "Linden", "Pebble",
)
STREET_SUFFIXES = ("Street", "Avenue", "Road", "Lane", "Way", "Terrace", "Court", "Boulevard", "Row", "Place")
COMPANY_WORDS = (
    "Amber", "Beacon", "Bluefield", "Cobalt", "Copperline", "Crescent", "Driftwood", "Evergreen",
    "Fernway", "Foxglove", "Granite", "Harborlight", "Highgate", "Ironbark", "Keystone", "Lakeshore",
    "Lumen", "Meridian", "Northstar", "Oakridge", "Orchid", "Pinnacle", "Quill", "Redwood", "Riverbend",
    "Sable", "Sagebrush", "Silverline", "Stonegate", "Summit", "Tidewater", "Timberline", "Trillium",
    "Vantage", "Verdant", "Westwind", "Willowmere", "Zephyr", "Alderpoint", "Brightpath", "Canopy",
    "Halcyon",
)
COMPANY_SUFFIXES = (
    "Group", "Partners", "Services", "Associates", "& Co", "Holdings", "Works", "Collective",
    "Solutions", "Cooperative",
)
WORDS = (
    "anchor", "atlas", "bramble", "canyon", "cedar", "comet", "delta", "ember", "fable", "falcon",
    "garnet", "harbor", "horizon", "indigo", "jasper", "kelp", "lagoon", "lantern", "maple", "meadow",
    "nectar", "nimbus", "onyx", "orbit", "pebble", "prairie", "quartz", "raven", "ridge", "saffron",
    "sequoia", "sierra", "sparrow", "summit", "tundra", "umber", "valley", "willow", "zenith", "cobalt",
    "lumen", "marble", "otter", "pilot", "quill", "rowan", "sable", "thistle", "vista", "wren",
)
# Reserved example domains (RFC 2606 `.example`), so generated addresses never reach anyone.
EMAIL_DOMAINS = ("mail.example", "inbox.example", "postbox.example", "webmail.example")

PICKS = ("person_name", "first_name", "last_name", "company", "city", "street", "word", "email", "phone")


# ---------------------------------------------------------------- helpers
def sub_rng(*parts: object) -> random.Random:
    """A generator seeded from `parts` through SHA-256, so derived streams are independent and stable."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def ref_id(prefix: str, n: int) -> str:
    """The id of row n of a table with this id prefix (APT, 7 -> APT-0007)."""
    return f"{prefix}-{n:04d}"


def _as_date(clock: datetime.date | datetime.datetime | str) -> datetime.date:
    if isinstance(clock, datetime.datetime):
        return clock.date()
    if isinstance(clock, datetime.date):
        return clock
    return datetime.date.fromisoformat(str(clock)[:10])


def _ascii_letters(text: str) -> str:
    folded = text.lower().replace("ü", "u").replace("ö", "o").replace("ä", "a").replace("é", "e")
    return re.sub(r"[^a-z]", "", folded)


def _phone(rng: random.Random) -> str:
    return f"+1-555-{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"


def _pick(kind: str, rng: random.Random) -> str:
    if kind == "person_name":
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    if kind == "first_name":
        return rng.choice(FIRST_NAMES)
    if kind == "last_name":
        return rng.choice(LAST_NAMES)
    if kind == "company":
        first = rng.choice(COMPANY_WORDS)
        return f"{first} {rng.choice(COMPANY_SUFFIXES)}"
    if kind == "city":
        return rng.choice(CITIES)
    if kind == "street":
        return f"{rng.randint(1, 999)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}"
    if kind == "word":
        return rng.choice(WORDS)
    if kind == "email":
        first, last = _ascii_letters(rng.choice(FIRST_NAMES)), _ascii_letters(rng.choice(LAST_NAMES))
        return f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}"
    if kind == "phone":
        return _phone(rng)
    raise ValueError(f"unknown pick {kind!r}; expected one of: {', '.join(PICKS)}")


def _code(pattern: str, rng: random.Random) -> str:
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(rng.randint(0, 9)))
        elif ch == "@":
            out.append(chr(ord("A") + rng.randint(0, 25)))
        else:
            out.append(ch)
    return "".join(out)


def _resolve_ref(ref: str, catalog_lookup: RefLookup | None) -> tuple[str, int]:
    domain_name, sep, record_name = ref.partition(".")
    if not sep or not domain_name or not record_name:
        raise ValueError(f"ref {ref!r} must look like 'Domain.Record'")
    found: Any = None
    if catalog_lookup is not None:
        found = catalog_lookup.get(ref) if isinstance(catalog_lookup, Mapping) else catalog_lookup(ref)
    if isinstance(found, tuple):
        prefix, count = found
        return str(prefix), int(count)
    # deferred: this file also runs alone, embedded verbatim in generated database scripts that always
    # pass a lookup; only an in-process caller without one reaches the catalog here.
    from skiller.world.catalog import get_domain

    record = next((r for r in get_domain(domain_name).records if r.name == record_name), None)
    if record is None:
        raise ValueError(f"ref {ref!r}: domain {domain_name} has no record {record_name}")
    count = int(found) if found is not None else (record.count or DEFAULT_RECORD_COUNT)
    return record.id_prefix, count


# ---------------------------------------------------------------- public API
def generate(gen: dict[str, Any], rng: random.Random, clock: datetime.date | str,
             catalog_lookup: RefLookup | None = None) -> Any:
    """One value for a generator spec (see skiller.catalog.model for the kinds).

    `clock` is the simulation date that `date` offsets count from. `catalog_lookup` resolves a
    `{"ref": "Domain.Record"}` to that record's row count (or `(id_prefix, count)`); without it the
    builtin catalog's record (its `count`, else DEFAULT_RECORD_COUNT) is used.
    """
    if not isinstance(gen, dict) or len(gen) != 1:
        raise ValueError(f"a generator is a one-key mapping, got {gen!r}")
    (kind, arg), = gen.items()
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise ValueError(f"choice needs a non-empty list, got {arg!r}")
        return rng.choice(arg)
    if kind == "int":
        lo, hi = arg
        return rng.randint(int(lo), int(hi))
    if kind == "money":
        lo, hi = arg
        cents = rng.randint(int(round(float(lo) * 100)), int(round(float(hi) * 100)))
        return round(cents / 100, 2)
    if kind == "bool":
        return rng.random() < float(arg)
    if kind == "date":
        lo, hi = arg
        return (_as_date(clock) + datetime.timedelta(days=rng.randint(int(lo), int(hi)))).isoformat()
    if kind == "code":
        return _code(str(arg), rng)
    if kind == "pick":
        return _pick(str(arg), rng)
    if kind == "compose":
        if not isinstance(arg, list) or not arg or not all(isinstance(p, list) and p for p in arg):
            raise ValueError(f"compose needs a list of non-empty word lists, got {arg!r}")
        return " ".join(str(rng.choice(part)) for part in arg)
    if kind == "ref":
        prefix, count = _resolve_ref(str(arg), catalog_lookup)
        if count < 1:
            raise ValueError(f"ref {arg!r} points to a table with no rows")
        return ref_id(prefix, rng.randint(1, count))
    raise ValueError(f"unknown generator kind {kind!r}; expected one of: {', '.join(GEN_KINDS)}")


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year - years, day=28)


def person_rows(n: int, seed: int, clock: datetime.date | str) -> list[dict[str, Any]]:
    """The shared `person` table: P-0001 … P-n, identical in every domain for the same seed.

    Row i depends only on (seed, i) and rows before it (for email uniqueness), so a longer table
    extends a shorter one. Ages are 18–85 on the clock date.
    """
    today = _as_date(clock)
    oldest = _years_before(today, 86) + datetime.timedelta(days=1)
    youngest = _years_before(today, 18)
    span = (youngest - oldest).days
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for i in range(1, n + 1):
        rng = sub_rng("person", seed, i)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(EMAIL_DOMAINS)
        local = f"{_ascii_letters(first)}.{_ascii_letters(last)}"
        email, k = f"{local}@{domain}", 1
        while email in used:
            k += 1
            email = f"{local}{k}@{domain}"
        used.add(email)
        rows.append({
            "person_id": ref_id("P", i),
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": _phone(rng),
            "date_of_birth": (oldest + datetime.timedelta(days=rng.randint(0, span))).isoformat(),
            "city": rng.choice(CITIES),
        })
    return rows


# ---------------------------------------------------------------- fitting rows to the world
def generate_distinct(gen: dict[str, Any], rng: random.Random, clock: datetime.date | str, seen: set[Any],
                      lookup: RefLookup | None = None, tries: int = 25) -> Any:
    """A value of `gen` not in `seen` when a few draws find one (then added to `seen`): names of a
    catalogue's entries should rarely repeat, but a small pool still yields a value."""
    value = generate(gen, rng, clock, lookup)
    for _ in range(tries):
        if value not in seen:
            break
        value = generate(gen, rng, clock, lookup)
    seen.add(value)
    return value


def _timely(status: Any, day: str, past: list[str], future: list[str], today: str) -> bool:
    return not ((status in past and day > today) or (status in future and day < today))


def fit_timing(row: dict[str, Any], timing: dict[str, Any], fixed: set[str], rng: random.Random,
               clock: datetime.date | str) -> None:
    """Make the row's status agree with its date: a `past` status needs the date <= today, a
    `future` one >= today. Moves the date within its generator's range (`range`, day offsets)
    unless `fixed` holds it, else draws another status from `pool`; a row fixed in both stays."""
    sf, df, past, future = timing["status"], timing["date"], timing["past"], timing["future"]
    today = _as_date(clock)
    status, day = row.get(sf), row.get(df)
    if day is None or _timely(status, str(day)[:10], past, future, today.isoformat()):
        return
    if df not in fixed and timing.get("range"):
        lo, hi = timing["range"]
        lo, hi = (lo, min(hi, 0)) if status in past else (max(lo, 0), hi)
        if lo <= hi:
            row[df] = (today + datetime.timedelta(days=rng.randint(lo, hi))).isoformat()
            return
    if sf not in fixed:
        options = [s for s in timing["pool"] if _timely(s, str(day)[:10], past, future, today.isoformat())]
        if options:
            row[sf] = rng.choice(options)


def fit_match(row: dict[str, Any], match: dict[str, Any], target_key: str, targets: list[dict[str, Any]],
              by_id: dict[Any, dict[str, Any]], fixed: set[str], rng: random.Random) -> None:
    """Point the row at a target of an allowed category (`allowed[row[field]]`, or `allowed["*"]`):
    another target when the row's target is free and one fits, else a value of `field` that fits
    the target."""
    field, tf, allowed = match.get("field"), match["target_field"], match["allowed"]
    wanted = allowed.get("*" if field is None else str(row.get(field)))
    target = by_id.get(row.get(target_key))
    if wanted is None or target is None or target.get(tf) in wanted:
        return
    if target_key not in fixed:
        fits = [t for t in targets if t.get(tf) in wanted]
        if fits:
            row[target_key] = rng.choice(fits)[target_key]
            return
    if field is not None and field not in fixed:
        # a value the map admits this target for, or one it leaves free (`values`: the field's choices)
        options = [v for v in match.get("values") or list(allowed)
                   if v != "*" and (str(v) not in allowed or target.get(tf) in allowed[str(v)])]
        if options:
            row[field] = rng.choice(options)


def fit_amount(row: dict[str, Any], pricing: dict[str, Any], target: dict[str, Any] | None, fixed: set[str]) -> None:
    """Set the row's amount to the target's price x the row's quantity (+ the target's fixed charge)."""
    amount, price, qty, extra = pricing["amount"], pricing["price"], pricing.get("quantity"), pricing.get("fixed")
    if amount in fixed or target is None or target.get(price) is None:
        return
    quantity = row.get(qty) if qty else 1
    if quantity is None:
        return
    charge = float(target.get(extra) or 0) if extra else 0.0
    row[amount] = round(float(target[price]) * float(quantity) + charge, 2)


def pair_key(value: Any, allowed: Mapping[str, Any]) -> str | None:
    """The key of `allowed` that `value` names: the longest one it is or holds as whole words, else "*"."""
    text = f" {value} "
    named = [k for k in allowed if k != "*" and f" {k} " in text]
    return max(named, key=len) if named else ("*" if "*" in allowed else None)


def fit_pairs(rows: list[dict[str, Any]], pairs: list[dict[str, Any]], forced: list[dict[str, Any]],
              rng: random.Random) -> None:
    """Make each row's paired attributes go together (catalog `pairs`: a medication's forms): a `then` value that
    `allowed` lists for the row's `field` value, drawn from `values` (the attribute's pool); when row i's
    `forced[i]` holds `then`, a `field` value from `keys` (a choice attribute's pool) that admits it."""
    for i, row in enumerate(rows):
        fixed = set(forced[i]) if i < len(forced) else set()
        for pair in pairs:
            field, then, allowed = pair["field"], pair["then"], pair["allowed"]
            key = pair_key(row.get(field), allowed)
            if key is None or row.get(then) in allowed[key]:
                continue
            if then not in fixed:
                options = [v for v in pair["values"] if v in allowed[key]]
            elif field not in fixed:
                options = [v for v in pair.get("keys") or [] if row[then] in allowed.get(pair_key(v, allowed) or "", [])]
            else:
                options = []
            if options:
                row[then if then not in fixed else field] = rng.choice(options)
