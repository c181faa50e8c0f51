"""What `skiller advance --domain NAME` means in this workspace, decided before any work is done."""
from __future__ import annotations

import json

from skiller.names import canonical_domains, catalog_names, find, resolve
from skiller.workspace import Workspace, WorkspaceError

__all__ = ["advance_target"]

_BEFORE_BLUEPRINTS = ("seeded", "domains_expanded", "entities_extracted", "graph_built")


def advance_target(ws: Workspace, name: str) -> tuple[str, list[str]]:
    """The domain's canonical name, and the `--set` overrides the run needs to bring it in.

    A fresh workspace (s01 not run yet) takes any catalog domain: it is added to `steps.s01.domains`
    for this run (and recorded in its RunStarted event). Once s01 has chosen the domains, only those exist.
    """
    proj = ws.store.projection()
    existing = find(name, [m.inputs["domain"] for m in proj.of_kind("domain")])
    if existing is not None:
        return existing, []
    world = proj.machines.get("world")
    if world is None or "domains" not in world.artifacts:
        provider = ws.config.provider.name
        canonical = canonical_domains([name], provider, where="")[0]
        named = canonical_domains(ws.config.steps.s01.domains, provider)
        if canonical in named:
            return canonical, []
        return canonical, [f"steps.s01.domains={json.dumps([*named, canonical])}"]
    topics = [d["name"] for d in ws.store.artifact_json(world.artifacts["domains"])["domains"]]
    chosen = find(name, topics)
    if chosen is None:
        elsewhere = find(name, catalog_names())
        if elsewhere is None:
            resolve(name, topics)  # raises, naming close matches
        raise WorkspaceError(f"domain {elsewhere} is not in this workspace: s01 chose {', '.join(sorted(topics))}; "
                             f"name it in steps.s01.domains of a new workspace")
    if world.state in _BEFORE_BLUEPRINTS:
        return chosen, []  # its machine appears when the world reaches `blueprinted`
    raise WorkspaceError(f"domain {chosen} was chosen at s01 but dropped at s04 (at most "
                         f"steps.s04.target_blueprints_per_entity services share one core entity)")
