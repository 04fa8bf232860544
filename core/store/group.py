"""Group commit: concurrent callers' small writes share one transaction, one lock wait and one commit.

A webhook is acknowledged only once its inbox row is committed. Alone, each webhook waits for the
store's write lock on its own (SQLite has one for the whole file, and the workers hold it in turn)
and pays its own commit (``synchronous=FULL``: an fsync, with the lock held). Here the first caller
leads: it takes the write lock, then writes *every* item queued by then — the webhooks that
arrived while it waited — in one transaction, and commits once. The others block (without polling)
until the leader is done; one whose item was written returns its result, one that arrived too late
leads the next round. Nobody's ``submit`` returns before the transaction holding its item commits,
so nothing is acknowledged that could still be rolled back.

``write(conn, items)`` returns one result per item, in order; an exception instance as a result is
that item's own failure (raised to its caller only). An exception from the transaction itself
(the lock never freed, the commit failing) is raised to every caller whose item was in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    def __init__(self, begin: Callable[[], Any], write: Callable[[Any, Sequence[T]], Sequence[R | Exception]]) -> None:
        self._begin = begin  # a transaction: ``with begin() as conn`` commits on success
        self._write = write
        self._queue: list[_Slot[T]] = []
        self._queued = threading.Lock()  # guards the queue, held for a moment
        self._leading = threading.Lock()  # held by the leader for its whole round
        self.rounds = 0  # transactions committed or tried (tests, benches)

    def submit(self, item: T) -> R:
        slot: _Slot[T] = _Slot(item)
        with self._queued:
            self._queue.append(slot)
        while not slot.done:
            with self._leading:
                if not slot.done:  # nobody wrote it while we waited to lead: lead this round
                    self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[no-any-return]

    def _lead(self, own: _Slot[T]) -> None:
        batch: list[_Slot[T]] = []
        self.rounds += 1
        try:
            with self._begin() as conn:
                with self._queued:  # the write lock is ours: take everything that queued meanwhile
                    batch, self._queue = self._queue, []
                results = list(self._write(conn, [s.item for s in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"group commit: {len(results)} results for {len(batch)} items")
        except BaseException as exc:
            if not batch:  # failed before taking the queue (the lock never came): only the leader's own
                with self._queued:
                    self._queue.remove(own)
                batch = [own]
            for s in batch:
                s.error = exc
                s.done = True
            return
        for s, result in zip(batch, results, strict=True):  # committed: now, and only now, hand out
            if isinstance(result, Exception):
                s.error = result
            else:
                s.result = result
            s.done = True
