"""s01: expand the seed into diverse service domains, re-asking until the set is diverse."""
from __future__ import annotations

import re

from pydantic import Field

from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step


class DomainTopic(Frozen):
    name: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{1,63}$")  # PascalCase: '_' joins fused names
    sector: str
    description: str


class DomainTopics(Frozen):
    domains: list[DomainTopic]


class S01Input(Frozen):
    pass


class S01Output(StepOutput):
    domains: DomainTopics


PROMPT = """Propose {count} distinct customer-facing service domains (each will become one MCP
server that serves a person: a patient, a tenant, a policyholder...). Spread them over at least
{min_sectors} sectors. Give each a PascalCase name without underscores, its sector and a
one-sentence description of what the service lets a person do.{variants}{feedback}"""

VARIANTS = """
After those, give {count} variant(s) of each, in the same order: the same kind of service run by
another provider, named by a PascalCase qualifier before its name (HarborHospital), differing in its
offers, limits and prices."""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}


def diversity_problems(topics: DomainTopics, count: int, min_sectors: int, max_similarity: float,
                       required: list[str] = ()) -> list[str]:
    """Why a set of domains is not diverse enough or misses a required one (empty when it is fine).

    Required domains are the user's choice: they may share a sector or a wording, so the checks only ask
    the rest of the set to be diverse around them."""
    problems = []
    names = [d.name for d in topics.domains]
    if len(names) != count:
        problems.append(f"expected {count} domains, got {len(names)}")
    missing = [n for n in required if n not in names]
    if missing:
        problems.append(f"missing required domains: {', '.join(missing)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"duplicate names: {', '.join(dupes)}")
    sectors = {d.sector.lower() for d in topics.domains}
    chosen = {d.sector.lower() for d in topics.domains if d.name in required}
    need = min(min_sectors, count, len(chosen) + count - len(set(required) & set(names)))
    if len(sectors) < need:
        problems.append(f"only {len(sectors)} sectors, need {need}")
    for i, a in enumerate(topics.domains):
        for b in topics.domains[i + 1:]:
            if a.name in required and b.name in required:
                continue
            wa, wb = _words(a.description), _words(b.description)
            if wa and wb and len(wa & wb) / len(wa | wb) > max_similarity:
                problems.append(f"{a.name} and {b.name} are described too similarly")
    return problems


def variant_problems(topics: DomainTopics, count: int, variants: int) -> list[str]:
    """Variants follow the `count` distinct domains; they resemble their base by design, so the
    diversity check covers the distinct domains only."""
    if not variants:
        return []
    names = [d.name for d in topics.domains]
    problems = []
    if len(names) != count * (1 + variants):
        problems.append(f"expected {count} domains and {count * variants} variants, got {len(names)} in all")
    dupes = sorted({n for n in names[count:] if names.count(n) > 1})
    if dupes:
        problems.append(f"duplicate names: {', '.join(dupes)}")
    return problems


@step("s01", machine="world", source="seeded", triggers={"expand_domains": "domains_expanded"})
async def run(inputs: S01Input, ctx: StepContext) -> S01Output:
    cfg = ctx.config.steps.s01
    required = list(dict.fromkeys(cfg.domains))  # canonical names (the CLI resolves them before any work)
    count = max(cfg.num_domains, len(required))
    include = f"\nInclude these domains, named exactly so: {', '.join(required)}." if required else ""
    feedback = ""
    problems: list[str] = []
    variants = VARIANTS.format(count=cfg.variants_per_domain) if cfg.variants_per_domain else ""
    for attempt in range(cfg.max_attempts):
        context = {"count": count, "min_sectors": cfg.min_sectors,
                   "seed": ctx.config.seed, "attempt": attempt, "problems": problems}
        if required:
            context["required"] = required
        if cfg.variants_per_domain:  # only then: the request (and its cache key) stays as it was without
            context["variants"] = cfg.variants_per_domain
        request = LLMRequest(
            purpose="s01.domains", role="text",
            messages=(Message(role="user", content=PROMPT.format(
                count=count, min_sectors=cfg.min_sectors, variants=variants, feedback=include + feedback)),),
            response_model=DomainTopics, context=context,
        )
        topics: DomainTopics = await ctx.llm.ask(request)
        distinct = DomainTopics(domains=topics.domains[:count]) if cfg.variants_per_domain else topics
        problems = variant_problems(topics, count, cfg.variants_per_domain) + diversity_problems(
            distinct, count, cfg.min_sectors, cfg.max_similarity, required)
        if not problems:
            # required domains first: s04's per-entity cap keeps the first blueprints in this order
            ordered = sorted(topics.domains, key=lambda d: d.name not in required)
            return S01Output(domains=DomainTopics(domains=ordered), payload={"attempts": attempt + 1})
        feedback = "\nThe previous answer was rejected: " + "; ".join(problems) + "."
    raise StepError("validation", f"s01: domains not diverse after {cfg.max_attempts} attempts: {problems[0]}")
