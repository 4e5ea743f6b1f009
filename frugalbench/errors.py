"""The one exception hierarchy of frugalbench.

    FrugalbenchError                 base class: one clear line for the user
    ├── UsageError                   bad command-line arguments or options (exit 2)
    ├── SubmissionError              a submission folder is invalid (manifest, paths, files)
    ├── BenchmarkError               unknown benchmark, or its data is missing or malformed
    ├── ModelError                   the model could not be read, built, loaded or run
    │   └── ChildProcessError_       the child process died, timed out or hit a limit
    ├── OutputError                  the model's predictions are unusable (shape, NaN, ...)
    └── StoreError                   the results database cannot be opened or written
        ├── StoreLockedError         another process held it for longer than the wait
        └── NotRecordedError         a finished result could be neither stored nor spooled (exit 4)

Every message names the problem and, where there is one, the fix.
"""
from __future__ import annotations


class FrugalbenchError(Exception):
    """Base class of every error frugalbench raises on purpose."""


class UsageError(FrugalbenchError):
    """The command line asks for something impossible."""


class SubmissionError(FrugalbenchError):
    """A submission folder is invalid."""


class BenchmarkError(FrugalbenchError):
    """A benchmark is unknown, or its data is missing or malformed."""


class ModelError(FrugalbenchError):
    """The submitted model could not be read, built, loaded or run."""


class ChildProcessError_(ModelError):
    """The isolated child process died, timed out or exceeded a limit."""


class OutputError(FrugalbenchError):
    """The model ran but its predictions are unusable."""


class StoreError(FrugalbenchError):
    """The results database cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another process held the database file for longer than this command waits."""


class NotRecordedError(StoreError):
    """A finished result could be written neither to the database nor to its spool: it is lost."""
