"""One poll of a (system, entity) at a time: the lease a poll holds while it reads and ingests.

Why: polls are asked for on a timer (the scheduler) and before every write batch (a flush reads
the target's own recent changes first), and a poll of a backlog outlasts both. Polls side by side
each read from the one saved cursor, so every page was read and ingested as many times as polls
overlapped: a 6,000-customer backlog polled each second by two workers and four CRM flushes
read the shop 405 times instead of 24, at three times the CPU per change. A poll that finds the
lease taken either waits for it (a flush, which must read before it writes) or gives up (the
scheduler's: the poll under way reads to the end of what is there).

``LocalPollLease`` serves one process; the workers install ``workers.broker.SharedPollLease``,
held in the rate limiter backend (Redis), for every process at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class PollLease(Protocol):
    def hold(self, system: str, entity: str, wait: float | None) -> AbstractContextManager[bool]:
        """Yields whether the lease is held; ``wait``: seconds to wait for it (None: not at all)."""
        ...


class LocalPollLease:
    """Leases among the threads of one process."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, system: str, entity: str, wait: float | None) -> Iterator[bool]:
        """Yields whether the lease is held; ``wait``: seconds to wait for it (None: not at all)."""
        with self._guard:
            lock = self._locks.setdefault((system, entity), threading.Lock())
        got = lock.acquire(timeout=wait) if wait is not None else lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()
