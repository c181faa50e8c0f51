"""Builtin answers for cross-domain fusion (s10 fit, s11 trajectory fusion, s13 policy merge)."""
from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any

from skiller.contract.namespaces import namespace_of, rename_tables
from skiller.world.catalog import get_domain, load_catalog
from skiller.world.catalog.model import CatalogBridge, CatalogDomain
from skiller.world.catalog.variants import family
from skiller.world.builtin.codegen import find, id_column
from skiller.world.builtin.flows import flow_templates  # storylines where records flow between members
from skiller.world.builtin.policygen import policy_markdown
from skiller.world.builtin.registry import answers
from skiller.world.builtin.seeding import rng as _rng
from skiller.contract.placeholders import PLACEHOLDER
from skiller.llm.interface import LLMRequest

_PERSON_OUTPUT_KINDS = {"get_profile", "list_records", "create", "set_status", "update", "pay"}


@answers("s10.fit")
def fit(request: LLMRequest) -> dict:
    return judge_fit(request.context["combination"], request.context["sectors"], [d.name for d in load_catalog()])


def judge_fit(combo: dict, sectors: list[str], bases: list[str]) -> dict:
    """Rule-based fit from what the members share: records handed from one to the next make a journey (5);
    two services of one sector share a plausible storyline (2); only the person in common is unrelated (1).
    `bases`: the names of kinds of service, so that two branches of one (HarborHospital, Hospital) are told."""
    families = [family(m, bases) for m in combo["members"]]
    if len(set(families)) < len(families):  # a clinic and its own variant: two branches of one service
        return {"score": 1, "rationale": f"two branches of the same {families[0]} service"}
    refs = [l for l in combo["links"] if l["kind"] == "reference"]
    if refs and len(refs) == len(combo["links"]):
        chain = "; ".join(f"{l['target']} takes a {l['record']} of {l['source']}" for l in refs)
        return {"score": 5, "rationale": chain}
    if refs:
        return {"score": 4, "rationale": f"{refs[0]['target']} takes a {refs[0]['record']} of {refs[0]['source']}"}
    if len(set(sectors)) == 1:
        return {"score": 2, "rationale": f"both serve a person in {sectors[0]}, but no record passes between them"}
    return {"score": 1, "rationale": "they share only the person: no record or sector connects them"}


def _rename(text: str, slots: dict[str, str], offset: int) -> str:
    """Rename selector slots and shift output indices of one segment's placeholders."""
    def sub(m: re.Match) -> str:
        slot, column, days = m.groups()
        if days is not None:
            return m.group(0)
        if slot.startswith("out") and slot[3:].isdigit():
            return f"<out{int(slot[3:]) + offset}.{column}>"
        return f"<{slots.get(slot, slot)}.{column}>"
    return PLACEHOLDER.sub(sub, text)


def _rename_value(value: Any, slots: dict[str, str], offset: int) -> Any:
    if isinstance(value, (list, dict)):  # a list argument (line items) holds placeholders too
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        out = [(k, _rename_value(v, slots, offset)) for k, v in pairs]
        return dict(out) if isinstance(value, dict) else [v for _, v in out]
    return _rename(value, slots, offset) if isinstance(value, str) else value


def _person_slot(template: dict) -> str | None:
    """The selector slot that fixes the segment's person (its rows carry person_id)."""
    for sel in template["selectors"]:
        if sel["slot"] in ("person", "rec") or "person_id" in sel["sql"].split("FROM", 1)[0]:
            return sel["slot"]
    return None


class _Segment:
    """One member's validated template, renamed into the fused environment."""

    def __init__(self, domain: CatalogDomain, template: dict, index: int, offset: int, tables: list[str]) -> None:
        self.d, self.domain, self.t, self.offset = domain, domain.name, template, offset
        self.prefix = namespace_of(domain.name)
        self.slots = {s["slot"]: f"s{index}_{s['slot']}" for s in template["selectors"]}
        self.calls = [{"tool": self.prefix + c["tool"], "arguments": {k: _rename_value(v, self.slots, offset)
                                                                     for k, v in c["arguments"].items()},
                       "base": c["tool"]} for c in template["trajectory"]]
        self.selectors = [{"slot": self.slots[s["slot"]],
                           "sql": rename_tables(_rename(s["sql"], self.slots, offset), tables, self.prefix)}
                          for s in template["selectors"]]
        self.person = self.slots.get(_person_slot(template) or "", None)

    def call_giving(self, field: str, kinds: set[str]) -> int | None:
        """1-based fused index of this segment's last call whose output carries `field`."""
        found = None
        for i, c in enumerate(self.calls):
            kind = next(t.kind for t in self.d.tools if t.name == c["base"])
            if field == "person_id":
                ok = kind in kinds or (kind == "get" and self._is_record(c["base"]))
            else:
                ok = kind in kinds and self._carries(c["base"], field)
            if ok:
                found = self.offset + i + 1
        return found

    def _is_record(self, tool: str) -> bool:
        t = next(t for t in self.d.tools if t.name == tool)
        return any(r.name == t.entity for r in self.d.records)

    def _carries(self, tool: str, field: str) -> bool:
        t = next(t for t in self.d.tools if t.name == tool)
        return t.entity is not None and id_column(find(self.d, t.entity).name) == field


def _hand_over(prev: _Segment, seg: _Segment, link: dict) -> bool:
    """Bind `seg` to what `prev` produced: the same person (taken from prev's output), and for a reference
    link, the record id prev produced as the argument the target tool takes. False when not possible."""
    person_call = prev.call_giving("person_id", _PERSON_OUTPUT_KINDS)
    if person_call is None or prev.person is None:
        return False
    for sel in seg.selectors:  # creation-validation: the target's rows must belong to the same person
        if "person_id" in sel["sql"]:
            sel["sql"] = f"SELECT * FROM ({sel['sql']}) WHERE person_id = <{prev.person}.person_id>"
    for c in seg.calls:
        for k, v in list(c["arguments"].items()):
            if k == "person_id":
                c["arguments"][k] = f"<out{person_call}.person_id>"
    if link["kind"] == "reference":
        record_id = id_column(link["record"])
        giver = prev.call_giving(record_id, {"create", "get", "set_status", "update", "pay"})
        takers = [c for c in seg.calls if c["base"] == link["tool"]]
        if giver is None or not takers:
            return False
        for c in takers:
            c["arguments"][link["field"]] = f"<out{giver}.{record_id}>"
    return True


def _fuse(chain: list[tuple[str, dict]], links: list[dict], tables: dict[str, list[str]],
          domains: Mapping[str, CatalogDomain]) -> dict | None:
    segments, offset = [], 0
    for i, (domain, template) in enumerate(chain):
        seg = _Segment(domains[domain], template, i, offset, tables[domain])
        if segments and not _hand_over(segments[-1], seg, links[i - 1]):
            return None
        segments.append(seg)
        offset += len(seg.calls)
    first = segments[0]
    known = dict(_renamed_known(first))
    for seg in segments[1:]:
        for label, value in _renamed_known(seg).items():
            if "person" not in label and value not in known.values():
                known[f"{seg.domain} {label}"] = value
    kinds = {s.t["kind"] for s in segments}
    return {
        "kind": "write" if "write" in kinds else "read",
        "trajectory": [{"tool": c["tool"], "arguments": c["arguments"]} for s in segments for c in s.calls],
        "instruction": " Then, with ".join(f"{s.domain}: {_rename(s.t['instruction'], s.slots, s.offset)}"
                                          for s in segments),
        "reason_for_call": " ".join(_rename(s.t["reason_for_call"], s.slots, s.offset) for s in segments),
        "known_info": known,
        "unknown_info": " ".join(s.t["unknown_info"] for s in segments),
        "selectors": [sel for s in segments for sel in s.selectors],
        "communicate": [_rename(c, s.slots, s.offset) for s in segments for c in s.t["communicate"]],
        "domains": [s.domain for s in segments], "is_cross_domain": True,
    }


def _renamed_known(seg: _Segment) -> dict[str, str]:
    return {label: _rename(v, seg.slots, seg.offset) for label, v in seg.t["known_info"].items()}


MAX_FUSED_CALLS = 7  # two four-call segments (each with its confirmations) run past the default max turns


def _short(template: dict) -> bool:
    """A segment short enough to chain with others (no chained template: a fused task stays within max turns)."""
    tools = [c["tool"] for c in template["trajectory"]]
    return len(tools) <= 4 and len(set(tools)) == len(tools)


@answers("s11.fuse")
def fuse(request: LLMRequest) -> dict:
    ctx = request.context
    return fused_templates(ctx, {m: get_domain(m) for m in ctx["combination"]["members"]})


def fused_templates(ctx: Mapping[str, Any], domains: Mapping[str, CatalogDomain]) -> dict:
    """Chain validated segments along the combination's links; try seeded pairings until `count` fuse.
    `domains`: each member's domain (with its bridge rules), from the catalog or as a request states it."""
    combo, segments, tables = ctx["combination"], ctx["segments"], ctx["tables"]
    members, links = combo["members"], combo["links"]
    if links and all(l["kind"] == "reference" for l in links):
        flowing = flow_templates(combo, tables, ctx["seed"], ctx["count"], ctx.get("clock", "2026-03-02"), domains)
        if flowing:
            return {"templates": flowing}
    rng = _rng(ctx["seed"], combo["name"], "s11")
    pools = []
    for i, m in enumerate(members):
        pool = [t for t in segments[m] if _short(t)]
        if i > 0 and links[i - 1]["kind"] == "reference":
            pool = [t for t in pool if any(c["tool"] == links[i - 1]["tool"] for c in t["trajectory"])]
        rng.shuffle(pool)
        pools.append(pool)
    fused, seen = [], set()
    for attempt in range(60):
        chain = [(m, pools[i][(attempt * (i + 1)) % len(pools[i])]) for i, m in enumerate(members) if pools[i]]
        if len(chain) < len(members):
            break
        key = json.dumps([t for _, t in chain], sort_keys=True)
        if key in seen or sum(len(t["trajectory"]) for _, t in chain) > MAX_FUSED_CALLS:
            continue
        seen.add(key)
        template = _fuse(chain, links, tables, domains)
        if template is not None:
            fused.append(template)
        if len(fused) >= ctx["count"]:
            break
    return {"templates": fused}


_SECTION = re.compile(r"<!-- POLICY_START -->(.*?)<!-- GLOBAL_RULES_END -->(.*?)<!-- POLICY_END -->", re.S)


def _prefix_tools(text: str, tools: list[str], prefix: str) -> str:
    for name in sorted(tools, key=len, reverse=True):
        text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", prefix + name, text)
    return text


_NUMBERED = re.compile(r"^(\d+)\. (\*\*[^*]+\*\*)?\s*(.*)$")


def _global_rules(head: str) -> dict[int, tuple[str, str]]:
    """A member's numbered global rules: number -> (bold title, text)."""
    out = {}
    for line in head.splitlines():
        m = _NUMBERED.match(line.strip())
        if m:
            out[int(m.group(1))] = (m.group(2) or "", m.group(3))
    return out


def bridge_rules(links: list[dict], bridges: Mapping[str, list[CatalogBridge]]) -> list[dict]:
    """The hand-over rules of a combination: the target's bridges on each reference, a person rule otherwise."""
    rules = []
    for i, link in enumerate(links, start=1):
        src, dst = link["source"], link["target"]
        found = [b for b in bridges[dst]
                 if link["kind"] == "reference" and b.tool == link["tool"] and b.ref == link["field"]]
        for b in found:
            rules.append({"id": b.id, "source": src, "target": dst, "statement": b.statement, "kind": b.kind,
                          "tool": b.tool, "ref": b.ref, "record": link["record"], "statuses": list(b.statuses),
                          "source_field": b.source_field, "field": b.field, "min": b.min, "max": b.max})
        if not found:
            text = (f"Identify the person once: the person id confirmed in {src} is the one to use in {dst}; "
                    f"never act in {dst} for a different person.")
            rules.append({"id": f"BRIDGE-{i}", "source": src, "target": dst, "statement": text, "kind": "person"})
    return rules


@answers("s13.policy_merge")
def merge_policies(request: LLMRequest) -> dict:
    combo = request.context["combination"]
    domains = {m: get_domain(m) for m in combo["members"]}
    return merged_policy(combo, {m: policy_markdown(d) for m, d in domains.items()},
                         {m: [t.name for t in d.tools] for m, d in domains.items()},
                         {m: d.bridges for m, d in domains.items()})


def merged_policy(combo: dict, policies: Mapping[str, str], tool_names: Mapping[str, list[str]],
                  bridges_of: Mapping[str, list[CatalogBridge]]) -> dict:
    """Members' rules kept verbatim under prefixed tool names; global rules merged once under the members'
    own numbers (so every "(global rule N)" still resolves); bridge rules for each hand-over."""
    merged: dict[int, list[tuple[str, str, str]]] = {}
    sections = []
    for m in combo["members"]:
        found = _SECTION.search(policies[m])
        head, body = found.group(1), found.group(2)
        tools = tool_names[m]
        for n, (title, text) in _global_rules(head).items():
            merged.setdefault(n, []).append((m, title, _prefix_tools(text, tools, namespace_of(m))))
        sections.append(f"## {m} (tools prefixed `{namespace_of(m)}`)\n"
                        + _prefix_tools(body, tools, namespace_of(m)).strip())
    lines = []
    for n in sorted(merged):
        variants = merged[n]
        title = variants[0][1]
        if len({text for _, _, text in variants}) == 1:
            lines.append(f"{n}. {title} {variants[0][2]}".replace("  ", " "))
        else:
            lines.append(f"{n}. {title} " + " ".join(f"In {m}: {text}" for m, _, text in variants))
    hand_over = (max(merged) if merged else 0) + 1
    lines.append(f"{hand_over}. **Hand-overs.** When a request uses a record of one service in another (an id, a "
                 "date or an amount), look the record up first in this conversation, pass its values unchanged, "
                 "and follow the bridge rules below; refuse, citing the rule id, what a bridge rule forbids.")
    bridges = []
    for rule in bridge_rules(combo["links"], bridges_of):
        marker = json.dumps({k: v for k, v in rule.items() if v is not None}, sort_keys=True)
        bridges.append(f"- [{rule['id']}] {rule['statement']} (global rule {hand_over})\n<!-- BRIDGE {marker} -->")
    markdown = "\n".join([
        "<!-- POLICY_START -->",
        f"# Policy for {' + '.join(combo['members'])}",
        "",
        "## Global rules (merged: a rule the members state alike is stated once; where they differ, each "
        "member's version applies to its own tools)",
        "",
        *lines,
        "",
        "## Bridge rules",
        "",
        *bridges,
        "",
        "<!-- GLOBAL_RULES_END -->",
        *sections,
        "<!-- POLICY_END -->",
    ])
    return {"markdown": markdown + "\n"}


# ---------------------------------------------------------------- s01's preference: domains that make journeys
def reference_edges(domains: list) -> list[tuple[str, str]]:
    """(source, target) for every catalog record attribute of `target` naming a record of `source`."""
    names = {d.name for d in domains}
    return sorted({(a.gen["ref"].split(".")[0], d.name) for d in domains for r in d.records for a in r.attributes
                   if "ref" in a.gen and a.gen["ref"].split(".")[0] in names})


def _triples(edges: list[tuple[str, str]], within: set[str]) -> int:
    """How many member triples are joined by two references (a chain, or one record handed to two services)."""
    inside = [e for e in edges if set(e) <= within]
    found = {frozenset({*a, *b}) for a in inside for b in inside if a != b and len({*a, *b}) == 3 and set(a) & set(b)}
    return len(found)


def _reached(start: str, edges: list[tuple[str, str]]) -> list[str]:
    """Breadth-first over references either way, neighbours in name order."""
    ordered, frontier = [], [start]
    while frontier:
        n = frontier.pop(0)
        if n not in ordered:
            ordered.append(n)
            frontier += sorted({t for s, t in edges if s == n} | {s for s, t in edges if t == n})
    return ordered


def _pack(groups: list[list[str]], edges: list[tuple[str, str]], count: int, draw: dict) -> list[str]:
    """Whole journeys (or connected prefixes of a long one) that fit in `count`: most triples, then no journey
    without a triple (a lone pair would sit in far fewer fusions than the rest), then most domains, then the draw."""
    options = [[g[:n] for n in range(len(g), 1, -1) if n == len(g) or _triples(edges, set(g[:n]))] for g in groups]
    best: tuple = ()
    best_key: tuple = ()

    def search(i: int, chosen: tuple) -> None:
        nonlocal best, best_key
        if i == len(groups):
            size = sum(len(c) for c in chosen)
            tri = [_triples(edges, set(c)) for c in chosen]
            lone = sum(t == 0 for t in tri) if sum(tri) else 0  # pairs only matter next to triples
            key = (sum(tri), -lone, size, -sum(draw[tuple(next(g for g in groups if g[0] == c[0]))] for c in chosen))
            if size <= count and key > best_key:
                best, best_key = chosen, key
            return
        search(i + 1, chosen)
        for option in options[i]:
            if sum(len(c) for c in chosen) + len(option) <= count:
                search(i + 1, chosen + (option,))

    search(0, ())
    order = sorted(best, key=lambda c: (-_triples(edges, set(c)), draw[tuple(next(g for g in groups if g[0] == c[0]))]))
    return [n for c in order for n in c]


def journey_domains(domains: list, count: int, min_sectors: int, rng: random.Random) -> list:
    """Domains whose records pass between them (hospital -> insurer, lease -> mover -> storage), whole journeys
    first (richest in triples, ties by the seeded draw), trimmed so the set still spans `min_sectors` sectors."""
    edges = reference_edges(domains)
    by_name = {d.name: d for d in domains}
    groups: list[list[str]] = []
    for name in sorted({n for e in edges for n in e}):
        if not any(name in g for g in groups):
            group = _reached(name, edges)
            roots = sorted(n for n in group if not any(t == n for _, t in edges))
            groups.append(_reached(roots[0] if roots else group[0], edges))  # from a source, so prefixes connect
    draw = {tuple(g): rng.random() for g in groups}
    picked = _pack(groups, edges, count, draw)
    spare = sorted((d for d in domains if d.name not in picked), key=lambda d: (d.sector, d.name))
    rng.shuffle(spare)
    while picked and len({by_name[n].sector for n in picked}) < min(min_sectors, count):
        have = {by_name[n].sector for n in picked}
        new = next((d for d in spare if d.sector not in have), None)
        if new is None:
            break
        if len(picked) >= count:  # the last domain of a sector already present gives way to a new sector
            sectors = [by_name[n].sector for n in picked]
            twice = [n for n in picked if sectors.count(by_name[n].sector) > 1]
            if not twice:
                break
            picked.remove(twice[-1])
        picked.append(new.name)
        spare.remove(new)
    return [by_name[n] for n in picked]
