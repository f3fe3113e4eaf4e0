"""Durable state (SQLite by default): detections, blocked URLs, the notification outbox, the
allow-list of reviewed false positives, verified addresses and the audit trail of operator actions.

Usage::

    store = open_store(config)
    engine = Engine(config, is_allowed=store.is_allowed)
    store.record(detection)   # durable before it returns; raises StoreError when it cannot be
"""

from safemedia.store.db import StoreError
from safemedia.store.outbox import Claim, Outbox, OutboxStatus
from safemedia.store.records import AuditEntry, BlockedUrl, StoredDetection, UnblockResult
from safemedia.store.schema import SCHEMA_VERSION
from safemedia.store.store import Store, open_store, store_path

__all__ = [
    "SCHEMA_VERSION",
    "AuditEntry",
    "BlockedUrl",
    "Claim",
    "Outbox",
    "OutboxStatus",
    "Store",
    "StoreError",
    "StoredDetection",
    "UnblockResult",
    "open_store",
    "store_path",
]
