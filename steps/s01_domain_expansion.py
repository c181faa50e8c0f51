"""s01: expand the seed into diverse service domains, re-asking until the set is diverse."""
from __future__ import annotations

import re

from pydantic import Field

from skiller.llm.interface import LLMRequest, Message
from steps.base import Frozen, StepContext, StepError, StepOutput, step


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
one-sentence description of what the service lets a person do.{feedback}"""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}


def diversity_problems(topics: DomainTopics, count: int, min_sectors: int, max_similarity: float) -> list[str]:
    """Why a set of domains is not diverse enough (empty when it is)."""
    problems = []
    names = [d.name for d in topics.domains]
    if len(names) != count:
        problems.append(f"expected {count} domains, got {len(names)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"duplicate names: {', '.join(dupes)}")
    sectors = {d.sector.lower() for d in topics.domains}
    if len(sectors) < min(min_sectors, count):
        problems.append(f"only {len(sectors)} sectors, need {min(min_sectors, count)}")
    for i, a in enumerate(topics.domains):
        for b in topics.domains[i + 1:]:
            wa, wb = _words(a.description), _words(b.description)
            if wa and wb and len(wa & wb) / len(wa | wb) > max_similarity:
                problems.append(f"{a.name} and {b.name} are described too similarly")
    return problems


@step("s01", machine="world", source="seeded", triggers={"expand_domains": "domains_expanded"})
async def run(inputs: S01Input, ctx: StepContext) -> S01Output:
    cfg = ctx.config.steps.s01
    feedback = ""
    problems: list[str] = []
    for attempt in range(cfg.max_attempts):
        request = LLMRequest(
            purpose="s01.domains", role="text",
            messages=(Message(role="user", content=PROMPT.format(
                count=cfg.num_domains, min_sectors=cfg.min_sectors, feedback=feedback)),),
            response_model=DomainTopics,
            context={"count": cfg.num_domains, "min_sectors": cfg.min_sectors,
                     "seed": ctx.config.seed, "attempt": attempt, "problems": problems},
        )
        topics: DomainTopics = await ctx.llm.ask(request)
        problems = diversity_problems(topics, cfg.num_domains, cfg.min_sectors, cfg.max_similarity)
        if not problems:
            return S01Output(domains=topics, payload={"attempts": attempt + 1})
        feedback = "\nThe previous answer was rejected: " + "; ".join(problems) + "."
    raise StepError("validation", f"s01: domains not diverse after {cfg.max_attempts} attempts: {problems[0]}")
