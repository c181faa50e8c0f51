"""Pipeline steps: one module per step, each registering itself with the `step` decorator."""
import importlib
import pkgutil

from skiller.steps.base import MEMBERS_PREFIX, REGISTRY, Frozen, MachineIndex, MachineSummary, Spawn, StepContext, StepError, StepOutput, StepSpec, seeded_rng, step


def load_all() -> dict:
    """Import every `sNN_*` module so its decorator records it; no hand-kept list."""
    for info in pkgutil.iter_modules(__path__):
        if info.name[0] == "s" and info.name[1:3].isdigit():
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


__all__ = ["MEMBERS_PREFIX", "REGISTRY", "Frozen", "MachineIndex", "MachineSummary", "Spawn", "StepContext", "StepError", "StepOutput", "StepSpec",
           "load_all", "seeded_rng", "step"]
