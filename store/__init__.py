"""SQLite store of the workspace: event log, content-addressed artifacts, LLM response cache."""
from store.store import Artifact, Store, canonical_model_json, event_from_row

__all__ = ["Artifact", "Store", "canonical_model_json", "event_from_row"]
