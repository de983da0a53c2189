"""The corridor between collector and analyzer/web: the sample record, its batch, and the stores.

Imports nothing of ours (DESIGN.md). Everyone may import it.
"""
from cpaudit.store.base import Store, StoreError
from cpaudit.store.sample import Batch, Quality, Reason, Sample, SAMPLE_COLUMNS
from cpaudit.store.sqlite import SQLiteStore

__all__ = [
    "Batch", "Quality", "Reason", "Sample", "SAMPLE_COLUMNS", "Store", "StoreError", "SQLiteStore",
]
