"""s12: database fusion: one SQLite file, each member's tables under its namespace, `person` unified."""
from __future__ import annotations

from skiller.servers.database import DatabaseSummary
from skiller.servers.fusion import FusionError, fuse_databases, namespace_of
from skiller.steps.base import Frozen, StepContext, StepError, StepOutput, step
from skiller.steps.s06_database import check_database
from skiller.steps.s10_combinations import Combination


class S12Input(Frozen):
    combination: Combination
    members_database: dict[str, bytes]


class S12Output(StepOutput):
    database: bytes
    database_summary: DatabaseSummary


@step("s12", machine="fusion", source="trajectories_fused", triggers={"fuse_databases": "databases_fused"})
async def run(inputs: S12Input, ctx: StepContext) -> S12Output:
    members = inputs.combination.members
    try:
        fused = fuse_databases([(namespace_of(m), inputs.members_database[m]) for m in members])
    except FusionError as exc:
        raise StepError("validation", f"s12: {inputs.combination.name}: {exc}") from None
    problems, summary = check_database(fused)
    if problems:
        raise StepError("validation", f"s12: fused database of {inputs.combination.name}: {problems[0]}")
    return S12Output(database=fused, database_summary=summary, payload={"tables": len(summary.tables)})
