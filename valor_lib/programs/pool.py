"""Parent side of the sandbox: the process-wide pool of warm workers and the loop that feeds them programs.

Workers are started lazily from a clean interpreter (``python -s -B -P``, scrubbed environment, own session),
never forked from the parent, which may hold torch, CUDA and threads. One selector loop per
``execute_many`` call sends programs to idle workers, serves their tool calls, and enforces a safety deadline
on each (the worker enforces the program's own timeout; the parent kills a worker that overruns it by
:data:`GRACE_S`). Real tool calls run in the parent on short-lived threads, serialized process-wide through
:data:`TOOL_LOCK` because the models behind them (one GPU) are shared; a hung tool costs its program a
``timeout`` after ``tool_timeout_s`` and the worker is replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plain_data import DataLimits, PlainDataError, call_repr, to_plain
from .protocol import FrameBuffer, ProtocolError, encode_frame
from .result import ERROR_TYPES, ExecResult
from .sandbox_tools import ARGUMENT_LIMITS

TOOL_LOCK = threading.Lock()
GRACE_S = 2.0
STARTUP_TIMEOUT_S = 120.0
SEND_TIMEOUT_S = 30.0
MAX_START_FAILURES = 3
PROGRAMS_PER_WORKER = 10_000  # a worker never runs program code itself; recycling only bounds slow growth
TOOL_RESULT_LIMITS = DataLimits(max_depth=16, max_items=100_000, max_chars=1_000_000)
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_IMAGE = object()  # stands for the image in tool-call logs
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=2)


def _worker_environment() -> dict[str, str]:
    """A minimal environment: no API keys or other secrets reach the sandbox; single-threaded numpy."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
    env.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    return env


class _Worker:
    """One sandbox worker process and the parent's end of its channel."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        boot = (
            f"import sys; sys.path.insert(0, {package_root!r}); "
            f"from valor_lib.programs.worker import main; main({theirs.fileno()})"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-B", "-P", "-c", boot],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=_worker_environment(),
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.buffer = FrameBuffer()
        self.ready = False
        self.started = time.monotonic()
        self.served = 0

    def alive(self) -> bool:
        return self.process.poll() is None and self.sock.fileno() != -1

    def send(self, message: dict[str, Any]) -> None:
        """Send one frame; raises OSError if the worker does not take it within :data:`SEND_TIMEOUT_S`."""
        view = memoryview(encode_frame(message))
        deadline = time.monotonic() + SEND_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_WRITE)
            while view:
                if not selector.select(deadline - time.monotonic()):
                    raise TimeoutError("sandbox worker does not accept messages")
                try:
                    view = view[self.sock.send(view) :]
                except BlockingIOError:
                    continue

    def receive(self) -> list[dict[str, Any]] | None:
        """Complete frames received so far; None once the worker has closed its end (or died)."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            return None
        return self.buffer.feed(data) if data else None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.sock.close()

    def close(self) -> None:
        """Ask the worker to exit (by closing its channel); kill it if it does not."""
        self.sock.close()
        try:
            self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()


class WorkerPool:
    """Idle warm workers shared by every caller in this process."""

    def __init__(self, max_idle: int):
        self.max_idle = max_idle
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, count: int) -> list[_Worker]:
        """``count`` workers for one caller: idle ones first, then newly started (not yet ready) ones."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox pool is closed")
            taken = []
            while self._idle and len(taken) < count:
                worker = self._idle.pop()
                if worker.alive():
                    taken.append(worker)
                else:
                    worker.kill()
        return taken + [_Worker() for _ in range(count - len(taken))]

    def release(self, workers: list[_Worker]) -> None:
        with self._lock:
            for worker in workers:
                keep = not self._closed and len(self._idle) < self.max_idle
                if keep and worker.alive() and worker.served < PROGRAMS_PER_WORKER:  # starting ones too
                    self._idle.append(worker)
                else:
                    worker.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_POOL: WorkerPool | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()


def shared_pool() -> WorkerPool:
    """The process-wide pool (a new one after ``close`` or in a forked child of this process)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or os.getpid() != _POOL_PID or _POOL._closed:
            _POOL = WorkerPool(max_idle=2 * (os.cpu_count() or 1))
            _POOL_PID = os.getpid()
        return _POOL


def close_pool() -> None:
    """Stop the idle workers of this process's pool (workers busy in a call stop when it returns)."""
    with _POOL_LOCK:
        pool = _POOL if os.getpid() == _POOL_PID else None
    if pool is not None:
        pool.close()


atexit.register(close_pool)


@dataclass
class Job:
    """One program to run: its code, the caller's image object, and the handle size and limits."""

    code: str
    image: Any
    image_size: tuple[int, int]
    timeout_s: float
    limits: dict[str, Any]


@dataclass
class _Running:
    """Parent-side state of a job on a worker."""

    index: int
    job: Job
    sent_at: float
    budget_s: float  # seconds of non-tool time left before the parent gives up on the worker
    clock: float  # when the budget last started running
    tool_started: float | None = None
    tool_name: str = ""
    tool_token: int = -1
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _error_reply(exc: BaseException) -> dict[str, Any]:
    base = next(cls.__name__ for cls in type(exc).__mro__ if cls.__module__ == "builtins")
    error = {"type": type(exc).__name__, "base": base, "message": str(exc)[:2000]}
    return {"op": "tool_result", "ok": False, "error": error}


def _serve_tool(
    fn: Callable[..., Any], name: str, image: Any, args: list, kwargs: dict, report: Callable[..., None]
) -> None:
    """Thread body: run one real tool under the tool lock and report (reply, seconds)."""
    started = time.perf_counter()
    try:
        with TOOL_LOCK:
            value = fn(image, *args, **kwargs)
        reply = {
            "op": "tool_result",
            "ok": True,
            "value": to_plain(value, TOOL_RESULT_LIMITS, f"{name}() result"),
        }
    except PlainDataError as exc:
        reply = _error_reply(TypeError(f"tool returned unsupported data: {exc}"))
    except BaseException as exc:
        reply = _error_reply(exc)
    report(reply, time.perf_counter() - started)


def _valid_log(calls: Any) -> list[dict[str, Any]]:
    """The worker-side tool-call log, kept only if it has the expected shape."""
    if type(calls) is not list:
        return []
    keys = {"name": str, "args": str, "duration_s": float, "ok": bool}
    return [
        call
        for call in calls[:10_000]
        if type(call) is dict and all(isinstance(call.get(key), kind) for key, kind in keys.items())
    ]


def _result(
    message: dict[str, Any], duration_s: float, tool_calls: list[dict[str, Any]] | None
) -> ExecResult:
    """Validate a worker's result message into an :class:`ExecResult`."""
    error_type = message.get("error_type")
    error = message.get("error") if type(message.get("error")) is str else ""
    if error_type is not None and error_type not in ERROR_TYPES:
        error_type, error = "runtime", "malformed result from the sandbox"
    answer = message.get("answer") if error_type is None else None
    if error_type is None and answer is None:
        error_type, error = "no_answer", "final_answer was not set"
    return ExecResult(
        ok=error_type is None,
        answer=answer,
        error_type=error_type,
        error=error,
        stdout=message.get("stdout") if type(message.get("stdout")) is str else "",
        duration_s=duration_s,
        tool_calls=_valid_log(message.get("tool_calls")) if tool_calls is None else tool_calls,
    )


class Dispatcher:
    """Runs a batch of jobs on a set of workers with one selector loop (see module docstring)."""

    def __init__(self, pool: WorkerPool, tools: Mapping[str, Callable[..., Any]] | None, workers: int):
        self.pool = pool
        self.tools = tools
        self.want = workers
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        self.wake_write.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ, None)
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.tokens = itertools.count()
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []
        self.running: dict[_Worker, _Running] = {}
        self.start_failures = 0
        self.results: list[ExecResult | None] = []
        self.pending: deque[int] = deque()
        self.bar: Any = None

    # --- workers -------------------------------------------------------------------------------------
    def _add(self, workers: list[_Worker]) -> None:
        for worker in workers:
            self.workers.append(worker)
            self.selector.register(worker.sock, selectors.EVENT_READ, worker)
            if worker.ready:
                self.idle.append(worker)

    def _drop(self, worker: _Worker, needed: bool) -> None:
        """Kill and forget a worker; start a replacement when work remains."""
        self.selector.unregister(worker.sock)
        worker.kill()
        self.workers.remove(worker)
        if worker in self.idle:
            self.idle.remove(worker)
        if not worker.ready:
            self.start_failures += 1
            if self.start_failures > MAX_START_FAILURES:
                raise RuntimeError(
                    "sandbox workers keep failing to start (their error output is on this process's stderr)"
                )
        if needed and len(self.workers) < self.want:
            self._add(self.pool.acquire(1))

    # --- jobs ----------------------------------------------------------------------------------------
    def _start(self, worker: _Worker, index: int, job: Job) -> None:
        request = {
            "op": "run",
            "code": job.code,
            "image_size": list(job.image_size),
            "tools": None if self.tools is None else sorted(self.tools),
            "timeout_s": job.timeout_s,
            "limits": job.limits,
        }
        now = time.monotonic()
        self.running[worker] = _Running(index, job, now, job.timeout_s + GRACE_S, now)
        worker.send(request)

    def _finish(self, worker: _Worker, result: ExecResult) -> None:
        state = self.running.pop(worker)
        result.duration_s = round(time.monotonic() - state.sent_at, 6)
        self.results[state.index] = result
        if self.bar is not None:
            self.bar.update(1)

    def _fail(self, worker: _Worker, error_type: str, error: str) -> None:
        """The job on ``worker`` ends with a failure and the worker is replaced."""
        state = self.running[worker]
        self._finish(worker, ExecResult.failure(error_type, error, tool_calls=state.tool_calls))
        self._drop(worker, needed=bool(self.pending or self.running))

    # --- tool calls ----------------------------------------------------------------------------------
    def _tool_call(self, worker: _Worker, message: dict[str, Any]) -> None:
        state = self.running[worker]
        name, args, kwargs = message.get("name"), message.get("args"), message.get("kwargs")
        if self.tools is None or name not in self.tools or type(args) is not list or type(kwargs) is not dict:
            worker.send(_error_reply(ValueError(f"malformed call of tool {name!r}")))
            return
        try:
            to_plain({"args": args, "kwargs": kwargs}, ARGUMENT_LIMITS, f"arguments of {name}()")
        except PlainDataError as exc:
            worker.send(_error_reply(ValueError(str(exc))))
            return
        if len(state.tool_calls) >= state.job.limits["max_tool_calls"]:
            worker.send(_error_reply(RuntimeError("too many tool calls")))
            return
        now = time.monotonic()
        state.budget_s -= now - state.clock
        state.tool_started, state.tool_name, state.tool_token = now, name, next(self.tokens)
        state.tool_calls.append(
            {
                "name": name,
                "args": call_repr((_IMAGE, *args), kwargs, image=_IMAGE),
                "duration_s": 0.0,
                "ok": False,
            }
        )
        token = state.tool_token

        def report(reply: dict[str, Any], seconds: float) -> None:
            self.done.put((worker, token, reply, seconds))
            with contextlib.suppress(OSError):  # the call already returned: this late reply is dropped
                self.wake_write.send(b"\0")

        thread = threading.Thread(
            target=_serve_tool,
            args=(self.tools[name], name, state.job.image, args, kwargs, report),
            name=f"sandbox-tool-{name}",
            daemon=True,
        )
        thread.start()

    def _tool_done(self, worker: _Worker, token: int, reply: dict[str, Any], seconds: float) -> None:
        state = self.running.get(worker)
        if state is None or state.tool_token != token:
            return  # the program was already ended (timeout): drop the late reply
        log = state.tool_calls[-1]
        log.update(duration_s=round(seconds, 6), ok=bool(reply["ok"]))
        if not reply["ok"]:
            log["error"] = f"{reply['error']['type']}: {reply['error']['message'][:200]}"
        state.tool_started, state.clock = None, time.monotonic()
        worker.send(reply)

    # --- main loop -----------------------------------------------------------------------------------
    def _on_message(self, worker: _Worker, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready" and not worker.ready:
            worker.ready = True
            if not message.get("seccomp"):
                _warn_once("sandbox: no seccomp filter on this platform; the other layers remain")
            self.idle.append(worker)
        elif op == "tool" and worker in self.running and self.running[worker].tool_started is None:
            self._tool_call(worker, message)
        elif op == "result" and worker in self.running:
            state = self.running[worker]
            self._finish(worker, _result(message, 0.0, None if self.tools is None else state.tool_calls))
            worker.served += 1
            if worker.served >= PROGRAMS_PER_WORKER:
                self._drop(worker, needed=bool(self.pending))
            else:
                self.idle.append(worker)
        else:
            raise ProtocolError(f"unexpected {op!r} message from a sandbox worker")

    def _on_readable(self, worker: _Worker) -> None:
        try:
            messages = worker.receive()
        except ProtocolError as exc:
            messages, problem = None, f"sandbox worker sent a malformed message ({exc})"
        else:
            problem = "sandbox worker died unexpectedly"
        if messages is None:
            if worker in self.running:
                self._fail(worker, "runtime", problem)
            else:
                self._drop(worker, needed=bool(self.pending))
            return
        for message in messages:
            if worker not in self.workers:
                return
            try:
                self._on_message(worker, message)
            except (ProtocolError, OSError) as exc:
                if worker in self.running:
                    self._fail(worker, "runtime", f"sandbox worker failed: {exc}")
                else:
                    self._drop(worker, needed=bool(self.pending))
                return

    def _check_deadlines(self) -> float:
        """End overdue jobs and stuck starts; return seconds until the next deadline."""
        now = time.monotonic()
        nearest = 1.0
        for worker, state in list(self.running.items()):
            if state.tool_started is not None:
                limit = state.tool_started + state.job.limits["tool_timeout_s"]
                reason = (
                    f"tool {state.tool_name} did not return within {state.job.limits['tool_timeout_s']:g} s"
                )
            else:
                limit = state.clock + state.budget_s
                reason = f"the program ran longer than {state.job.timeout_s:g} s (worker unresponsive)"
            if now >= limit:
                self._fail(worker, "timeout", reason)
            else:
                nearest = min(nearest, limit - now)
        for worker in [w for w in self.workers if not w.ready]:
            if now - worker.started > STARTUP_TIMEOUT_S:
                self._drop(worker, needed=bool(self.pending or self.running))
        return max(nearest, 0.0)

    def run(self, jobs: list[Job], progress: bool) -> list[ExecResult]:
        self.results = [None] * len(jobs)
        self.pending = deque(range(len(jobs)))
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(jobs), desc="programs")
        try:
            self._add(self.pool.acquire(min(self.want, len(jobs))))
            while self.pending or self.running:
                while self.pending and self.idle:
                    worker = self.idle.pop()
                    index = self.pending.popleft()
                    try:
                        self._start(worker, index, jobs[index])
                    except OSError:
                        self.running.pop(worker, None)
                        self.pending.appendleft(index)
                        self._drop(worker, needed=True)
                timeout = self._check_deadlines()
                for key, _ in self.selector.select(timeout):
                    if key.data is None:
                        self._drain_tools()
                    elif key.data in self.workers:
                        self._on_readable(key.data)
        finally:
            for worker in list(self.running):
                self._drop(worker, needed=False)  # interrupted mid-program
            for worker in self.workers:
                self.selector.unregister(worker.sock)
            self.pool.release(self.workers)
            self.selector.close()
            self.wake_read.close()
            self.wake_write.close()
            if self.bar is not None:
                self.bar.close()
        return self.results  # type: ignore[return-value]

    def _drain_tools(self) -> None:
        try:
            while self.wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                worker, token, reply, seconds = self.done.get_nowait()
            except queue.Empty:
                return
            if worker in self.running:
                try:
                    self._tool_done(worker, token, reply, seconds)
                except OSError as exc:
                    self._fail(worker, "runtime", f"sandbox worker failed: {exc}")
