"""The machinery under the client: one background event loop per process, and the micro-batcher that
turns concurrent single requests into batches for local models.

All async work of every client runs on the loop thread, so SDK connection pools, semaphores and the
batcher live in one loop, whether the caller is plain Python, a Jupyter kernel (whose own loop is already
running) or another event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from valor_lib.clients.backends.base import Backend, Reply
from valor_lib.clients.errors import CallError

T = TypeVar("T")


class LoopThread:
    """A daemon thread running an asyncio event loop forever; one per process (re-created after fork)."""

    _instance: LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="valor-clients-loop", daemon=True)
        self.thread.start()
        self._ready.wait()
        atexit.register(self.shutdown)

    def shutdown(self) -> None:
        """Cancel what still runs on the loop and stop it (at interpreter exit)."""
        if self.pid != os.getpid() or not self.thread.is_alive():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.submit(cancel_all()).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> LoopThread:
        with cls._lock:
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = LoopThread()
            return cls._instance

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


class Batcher:
    """Collects requests arriving together and runs them as one ``backend.generate_batch`` call in a
    dedicated worker thread (one batch at a time, so a model is never used by two threads)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.max_batch = max(1, backend.batch_size)
        self._queue: list[tuple[Any, asyncio.Future[Reply]]] = []
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="valor-batch")
        self.batch_sizes: list[int] = []

    async def submit(self, request: Any) -> Reply:
        """Queue one request and wait for its reply (raises the item's :class:`CallError`)."""
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work())
        future: asyncio.Future[Reply] = loop.create_future()
        self._queue.append((request, future))
        self._wakeup.set()
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # let requests submitted in the same tick join the batch
            while self._queue:
                taken = [(r, f) for r, f in self._queue[: self.max_batch] if not f.done()]
                del self._queue[: self.max_batch]
                if not taken:
                    continue
                self.batch_sizes.append(len(taken))
                try:
                    replies = await loop.run_in_executor(
                        self._executor, self.backend.generate_batch, [r for r, _ in taken])
                    if len(replies) != len(taken):
                        raise RuntimeError(f"generate_batch returned {len(replies)} replies for {len(taken)}")
                except Exception as err:
                    failure = CallError("local", f"{type(err).__name__}: {err}")
                    replies = [failure] * len(taken)
                for (_, future), reply in zip(taken, replies, strict=True):
                    if future.done():
                        continue
                    if isinstance(reply, CallError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
