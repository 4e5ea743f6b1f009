"""The store stage: results in one DuckDB file, schema by versioned migrations.

Writers and readers open the file only for the time of one operation (DuckDB's file lock is
exclusive between processes) and retry briefly when another process holds it; a finished run or
training waits longer, then goes to a spool that the next writer stores (``spool``).
"""
from frugalbench.store.db import connect
from frugalbench.store.runs import (
    find_reusable_run,
    list_run_documents,
    save_run,
)
from frugalbench.store.spool import is_spooled, store_run_or_spool, store_training_or_spool

__all__ = ['connect', 'find_reusable_run', 'is_spooled', 'list_run_documents', 'save_run', 'store_run_or_spool',
           'store_training_or_spool']
