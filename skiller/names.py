"""Names users type (`hospital`, `health-insurance`, `B+A`) matched to canonical ones, with close matches on a miss."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from skiller.config import ConfigError
from skiller.world.catalog import load_catalog

__all__ = ["DOMAIN_NAME", "UnknownName", "canonical_domains", "catalog_names", "find", "fold", "resolve",
           "resolve_fusion"]

DOMAIN_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{1,63}$")  # PascalCase: '_' joins fused names


class UnknownName(ConfigError):
    """A name that matches nothing; the message lists close matches."""


def fold(name: str) -> str:
    """Case and separators do not matter: `health_insurance`, `Health Insurance` and `HealthInsurance` agree."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def close_matches(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    by_fold: dict[str, str] = {}
    for k in sorted(known):
        by_fold.setdefault(fold(k), k)
    return [by_fold[f] for f in difflib.get_close_matches(fold(name), list(by_fold), n=n, cutoff=0.6)]


def _miss(what: str, name: str, known: Iterable[str], hint: str = "") -> UnknownName:
    known = sorted(set(known))
    near = close_matches(name, known)
    if near:
        tail = f"; did you mean {', '.join(near)}?"
    elif known:
        tail = f"; known: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}"
    else:
        tail = ""
    return UnknownName(f"unknown {what} '{name}'{tail}{hint}")


def find(name: str, known: Iterable[str]) -> str | None:
    """The canonical spelling of `name` among `known` (exact first, then folded), or None."""
    known = list(known)
    if name in known:
        return name
    matches = sorted({k for k in known if fold(k) == fold(name)})
    return matches[0] if len(matches) == 1 else None


def resolve(name: str, known: Iterable[str], what: str = "domain", hint: str = "") -> str:
    """The canonical spelling of `name` among `known`, or UnknownName naming close matches."""
    known = list(known)
    found = find(name, known)
    if found is None:
        raise _miss(what, name, known, hint)
    return found


def resolve_fusion(spec: str, fusions: dict[str, list[str]], domains: Iterable[str]) -> str:
    """The fusion (key of `fusions`, value: its members) whose members are `spec`'s, in any order."""
    domains = list(domains)
    parts = spec.split("+") if "+" in spec else spec.split("_")  # `A+B`, or the fused name `A_B`
    members = sorted(resolve(part.strip(), domains) for part in parts if part.strip())
    for key, have in sorted(fusions.items()):
        if sorted(have) == members:
            return key
    shown = sorted("+".join(v) for v in fusions.values())
    listed = ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "") if shown else "none"
    raise UnknownName(f"no fusion of {' + '.join(members)} in this workspace (fusions: {listed})")


def catalog_names() -> list[str]:
    return [d.name for d in load_catalog()]


def canonical_domains(names: list[str], provider: str, where: str = " in steps.s01.domains") -> list[str]:
    """`steps.s01.domains` in canonical spelling: catalog names on the builtin provider; a model may also
    invent a domain, so there any PascalCase name is accepted too. UnknownName (close matches) otherwise."""
    catalog = catalog_names()
    out = []
    for name in names:
        found = find(name, catalog)
        if found is None and provider != "builtin" and DOMAIN_NAME.match(name):
            found = name
        if found is None:
            hint = "" if provider == "builtin" else " (or give a PascalCase name such as SolarInstallers)"
            raise _miss("domain", name, catalog, hint + where)
        out.append(found)
    return list(dict.fromkeys(out))
