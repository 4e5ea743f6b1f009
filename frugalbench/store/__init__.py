"""The store stage: results in one DuckDB file, schema by versioned migrations.

Writers and readers open the file only for the time of one operation (DuckDB's file lock is
exclusive between processes) and retry briefly when another process holds it.
"""
from frugalbench.store.db import connect
from frugalbench.store.runs import (
    find_reusable_run,
    list_run_documents,
    save_run,
)

__all__ = ['connect', 'find_reusable_run', 'list_run_documents', 'save_run']
