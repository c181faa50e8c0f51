"""s14 for fusions: cross-domain templates from s11, judged like single-domain ones, become Task machines."""
from __future__ import annotations

from skiller.steps.base import Frozen, StepContext, step
from skiller.steps.s11_trajectory_fusion import FusedTemplates
from skiller.steps.s14_task_templates import S14Output, TaskTemplates, keep_scored, spawn_tasks


class FusionTemplatesInput(Frozen):
    name: str
    fused_templates: FusedTemplates


@step("s14.fusion", machine="fusion", source="policies_merged", triggers={"write_templates": "templated"})
async def run_fusion(inputs: FusionTemplatesInput, ctx: StepContext) -> S14Output:
    """Cross-domain templates come from s11; they are judged like any other and become Task machines."""
    kept, low = await keep_scored(inputs.name, inputs.fused_templates.templates, ctx)
    stats = {"proposed": len(inputs.fused_templates.templates), "kept": len(kept), "low_score": low,
             "kinds": {k: sum(s.template.kind == k for s in kept) for k in ("read", "write", "refusal")}}
    return S14Output(task_templates=TaskTemplates(server=inputs.name, templates=kept, stats=stats),
                     spawn=spawn_tasks(f"fusion:{'+'.join(inputs.fused_templates.members)}", inputs.name, kept),
                     payload=stats)
