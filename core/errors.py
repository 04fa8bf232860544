"""synchub's error tree, grouped by what the caller should do about each error.

::

    SynchubError                      root: catch this to catch anything of ours
    ├── ConfigError                   stop and tell the operator (bad config or mapping file)
    ├── TransientError                retry later; ``retry_after`` when the system said when
    │   └── RateLimited               the system throttled us (429, THROTTLED, REQUEST_LIMIT_EXCEEDED)
    └── PermanentError                do not retry: dead-letter the record with the reason, go on
        ├── RecordRejected            the system refused this record (validation, duplicate, ...)
        └── MappingError              a record could not be translated (see ``mappings.errors``)

Why by disposition and not by source: a worker only has to decide *retry, dead-letter or stop*;
every connector keeps one table mapping its vendor's codes onto these classes.
"""

from __future__ import annotations


class SynchubError(Exception):
    """Root of every error synchub raises on purpose."""


class ConfigError(SynchubError):
    """The deployment is misconfigured; retrying will not help, a person must fix a file."""


class TransientError(SynchubError):
    """Worth retrying. ``retry_after`` (seconds) is the system's own hint, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The system throttled us; wait at least ``retry_after`` before the next call."""


class PermanentError(SynchubError):
    """Retrying the same input gives the same failure: dead-letter it and carry on."""


class RecordRejected(PermanentError):
    """A system refused one record; ``code`` is the vendor's error code, kept verbatim."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class MappingError(PermanentError):
    """A record could not be translated between a native and the canonical shape."""
