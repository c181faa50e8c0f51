"""Event models of the log and the pure fold that replays them into projections."""
from skiller.events.fold import EventRow, MachineView, ModelUsage, Projection, apply, fold
from skiller.events.types import (
    EVENT_ADAPTER, EVENT_TYPES, NOT_THE_MODELS_FAULT, RETRYABLE, Event, FailureKind, LLMCalled, MachineCreated,
    Repaired, RunStarted, StepFailed, TestsRan, Transitioned,
)

__all__ = [
    "EVENT_ADAPTER", "EVENT_TYPES", "Event", "EventRow", "FailureKind", "LLMCalled", "MachineCreated", "MachineView",
    "ModelUsage", "NOT_THE_MODELS_FAULT", "Projection", "RETRYABLE", "Repaired", "RunStarted", "StepFailed", "TestsRan", "Transitioned",
    "apply", "fold",
]
