"""s06: the domain's SQLite database, written by generator code that runs in the sandbox and is repaired until sound."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from skiller.events import Repaired, TestsRan
from skiller.servers.coherence import DataInvariants, coherence_report
from skiller.servers.database import DatabaseSummary, integrity_report, summarize
from skiller.llm.interface import LLMRequest, Message
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.s04_blueprints import Blueprint

PROMPT = (Path(__file__).with_name("s06_database.txt")).read_text()


class DatabaseProgram(Frozen):
    code: str  # a self-contained Python script (stdlib only)
    # What the rows obey beyond their keys (status vs date, price x quantity, target categories);
    # the integrity check counts the rows breaking it. None: only the structural check runs.
    invariants: DataInvariants | None = None


class S06Input(Frozen):
    domain: str
    blueprint: Blueprint


class S06Output(StepOutput):
    database: bytes
    database_summary: DatabaseSummary
    database_program: DatabaseProgram


def check_database(content: bytes, invariants: DataInvariants | None = None,
                   today: dt.date | None = None) -> tuple[list[str], DatabaseSummary | None]:
    """Referential integrity and non-empty tables, read from the bytes the sandbox produced; with
    `invariants`, also at most 1% of rows contradicting them (statuses vs `today`, amounts, categories)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite"
        path.write_bytes(content)
        try:
            report = integrity_report(path)
        except Exception as exc:  # not even a SQLite file
            return [f"unreadable database: {exc}"], None
        if not report.ok:
            return report.problems(), None
        if invariants is not None and today is not None:
            coherence = coherence_report(path, invariants, today)
            if not coherence.ok:
                return coherence.problems(), None
        return [], summarize(path)


@step("s06", machine="domain", source="tools_listed", triggers={"generate_database": "database_generated"})
async def run(inputs: S06Input, ctx: StepContext) -> S06Output:
    cfg = ctx.config.steps.s06
    args = ["--seed", str(ctx.config.seed), "--rows", str(cfg.rows_per_table), "--people", str(cfg.people),
            "--clock", ctx.clock.isoformat(), "--out", "db.sqlite"]
    context = {"domain": inputs.domain, "rows": cfg.rows_per_table, "people": cfg.people}
    prompt = PROMPT.format(blueprint=inputs.blueprint.model_dump_json(indent=1), args=" ".join(args))
    request = LLMRequest(purpose="s06.database_code", role="code", response_model=DatabaseProgram,
                         messages=(Message(role="user", content=prompt),), context=context)
    program: DatabaseProgram = await ctx.llm.ask(request)
    invariants = program.invariants  # declared with the first program: a repair cannot drop them
    for attempt in range(cfg.max_repairs + 1):
        result = ctx.sandbox.run_python({"gen_db.py": program.code}, "gen_db.py", args, collect=["db.sqlite"])
        content = result.outputs.get("db.sqlite")
        if not result.ok or content is None:
            problems = [f"generator exited {result.exit_code}" + (f" ({result.killed})" if result.killed else ""),
                        (result.stderr or result.stdout)[-2000:]]
        else:
            problems, summary = check_database(content, invariants, ctx.clock)
        ctx.record.append(TestsRan(stream=ctx.stream, step="s06", attempt=attempt, passed=int(not problems),
                                   failed=int(bool(problems)), ok=not problems, output="\n".join(problems)[-2000:]))
        if not problems:
            return S06Output(database=content, database_summary=summary, database_program=program,
                             payload={"attempts": attempt + 1, "tables": len(summary.tables)})
        if attempt == cfg.max_repairs:
            break
        repair = LLMRequest(purpose="s06.database_repair", role="code", response_model=DatabaseProgram,
                            messages=(Message(role="user", content=prompt),
                                      Message(role="assistant", content=program.code),
                                      Message(role="user", content="The script failed:\n" + "\n".join(problems)
                                              + "\nReturn the whole corrected script.")),
                            context=context | {"attempt": attempt + 1})
        program = await ctx.llm.ask(repair)
        ctx.record.append(Repaired(stream=ctx.stream, step="s06", attempt=attempt + 1))
    raise StepError("sandbox", f"s06: database for {inputs.domain} still fails after {cfg.max_repairs} repairs: {problems[0]}")
