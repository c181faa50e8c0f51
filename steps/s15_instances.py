"""s15: instance selection, plan then execute: run the template's selectors, re-plan while that makes progress."""
from __future__ import annotations

from typing import Any

from skiller.servers.database import DatabaseSummary
from skiller.servers.query import QueryError, select, snapshot
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepOutput, step
from skiller.contract.placeholders import Unresolved, resolve_sql
from skiller.steps.prompt_text import database_text
from skiller.steps.s14_task_templates import ScoredTemplate, Selector


class Instance(Frozen):
    bindings: dict[str, dict[str, Any]]  # slot -> the selected row
    selectors: list[Selector]  # the plan that worked
    attempts: int


class Replan(Frozen):
    selectors: list[Selector]


class S15Input(Frozen):
    domain: str
    template: ScoredTemplate
    database: bytes
    database_summary: DatabaseSummary


class S15Output(StepOutput):
    instance: Instance | None = None


REPLAN = """These selectors choose the database rows of a task ({instruction}):
{selectors}
Slot `{slot}` found nothing: {why}. Give corrected selectors (read-only SQL, one per slot, the same
slots in the same order). Keep what the task needs (its policy conditions and statuses); drop or
loosen preferences, such as parts between /*relax*/ and /*end*/. Placeholders of earlier slots and
<clock+N> become SQL literals with their quotes: write them bare.
Database (tables, columns with types and values or ranges, sample ids):
{tables}{original}"""
ORIGINAL = "\nThe template's original selectors (what it asked for before any re-plan):\n{selectors}"


def execute_plan(path, selectors: list[Selector], ctx: StepContext) -> tuple[dict, str | None, str]:
    """Run selectors in order, each may use earlier slots; when a later slot finds nothing, try other
    rows of earlier slots (bounded), so instances that must agree across selectors (the same person in
    every member of a fusion) are created and validated together. Returns bindings or the failing slot."""
    budget = [ctx.config.steps.s15.max_queries]
    failure: list = [None, ""]

    def search(i: int, bindings: dict[str, dict[str, Any]]) -> dict | None:
        if i == len(selectors):
            return bindings
        sel = selectors[i]
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        try:
            rows = select(path, resolve_sql(sel.sql, bindings, ctx.clock), limit=ctx.config.steps.s15.candidates)
        except (QueryError, Unresolved) as exc:
            failure[:] = [sel.slot, str(exc)]
            return None
        if not rows:
            failure[:] = [sel.slot, "no row matched"]
            return None
        ctx.rng.shuffle(rows)
        for row in rows:
            found = search(i + 1, {**bindings, sel.slot: row})
            if found is not None or budget[0] <= 0:
                return found
        return None

    bindings = search(0, {})
    return (bindings, None, "") if bindings is not None else ({}, failure[0], failure[1])


@step("s15", machine="task", source="templated",
      triggers={"select_instances": "instances_selected", "find_no_instance": "rejected"})
async def run(inputs: S15Input, ctx: StepContext) -> S15Output:
    template = inputs.template.template
    selectors, failures = list(template.selectors), []
    with snapshot(inputs.database) as path:
        for attempt in range(ctx.config.steps.s15.max_attempts):
            bindings, slot, why = execute_plan(path, selectors, ctx)
            if slot is None:
                return S15Output(instance=Instance(bindings=bindings, selectors=selectors, attempts=attempt + 1),
                                 payload={"attempts": attempt + 1})
            failures.append((slot, why))
            if len(failures) > 1 and failures[-1] == failures[-2]:
                break  # the re-plan made no progress: stop paying for more
            request = LLMRequest(
                purpose="s15.replan", role="text", response_model=Replan,
                messages=(Message(role="user", content=REPLAN.format(
                    instruction=template.instruction, slot=slot, why=why,
                    selectors="\n".join(f"{s.slot}: {s.sql}" for s in selectors),
                    tables=database_text(inputs.database_summary),
                    original="" if selectors == template.selectors else ORIGINAL.format(
                        selectors="\n".join(f"{s.slot}: {s.sql}" for s in template.selectors)))),),
                context={"domain": inputs.domain, "template": template.model_dump(mode="json"),
                         "slot": slot, "why": why, "attempt": attempt})
            selectors = (await ctx.llm.ask(request)).selectors
    slot, why = failures[-1]
    return S15Output(trigger="find_no_instance",
                     payload={"reason": "no_instance", "slot": slot, "error": why, "attempts": len(failures)})
