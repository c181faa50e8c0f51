"""SQLite store of the workspace: event log (hash-chained), content-addressed artifacts, LLM cache, writer lock."""
from skiller.store.chain import GENESIS, chain_drift, link, row_link
from skiller.store.lock import LockHeld, WriterLock
from skiller.store.store import Artifact, Store, StoreError, canonical_model_json, event_from_row

__all__ = ["GENESIS", "Artifact", "LockHeld", "Store", "StoreError", "WriterLock", "canonical_model_json",
           "chain_drift", "event_from_row", "link", "row_link"]
