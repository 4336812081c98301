"""Sandbox worker process: a clean interpreter, started by the parent, that forks one child per program.

The worker prepares everything once (numpy imported and warmed up, restricted modules, the seccomp filter)
and never runs untrusted code itself. For each ``run`` request it forks a child, which locks itself down
(:mod:`.lockdown`) and runs the program (:mod:`.runner`); the worker enforces the wall timeout (paused while
the parent serves a tool call), relays tool calls to the parent, and kills and reaps the child. So every
program starts from the same pristine state and nothing it does outlives it.

Messages to the parent: ``ready``, then per request any number of ``tool`` (relayed) and one ``result``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import secrets
import select
import signal
import socket
import sys
import time
import warnings
from typing import Any

from .lockdown import CHANNEL_FD, Lockdown, address_space_bytes, seccomp_available
from .namespace import restricted_modules
from .protocol import FrameBuffer, ProtocolError, read_frame, write_frame
from .runner import run_program

_CRASH_EXIT = 70
_DEATH_CAUSES = {
    signal.SIGXCPU: ("timeout", "the program exceeded its CPU time limit"),
    signal.SIGSYS: ("forbidden", "the program made a blocked system call"),
    signal.SIGXFSZ: ("forbidden", "the program tried to write a file"),
    signal.SIGKILL: ("memory", "the program was killed, most likely for using too much memory"),
}


class _ParentGone(Exception):
    """The parent closed its end: stop serving."""


def _warm_up() -> None:
    """Import and exercise what programs commonly touch, so no child has to load anything from disk."""
    import numpy
    import numpy.ma

    sample = numpy.array([[1.0, 2.0], [3.0, 4.0]])
    numpy.percentile(sample, 50)
    numpy.average(sample, weights=sample)
    numpy.linalg.norm(sample)
    numpy.linalg.inv(sample)
    numpy.unique(sample)
    numpy.polyfit([0.0, 1.0], [0.0, 1.0], 1)
    numpy.random.default_rng(0).normal(size=2)
    for value in (sample, sample[0], numpy.float64(1.5), numpy.int64(2), numpy.bool_(True), numpy.str_("a")):
        repr(value), str(value), f"{value}", value.tolist()
    f"{numpy.float32(2.5):.2f}"
    numpy.random.seed(0)  # every program starts from the same random state
    compile("x = [i * 2 for i in range(3)]\nprint(f'{x!r:>10}')", "<warm-up>", "exec")


def _child(
    request: dict[str, Any], channel_fd: int, worker_pid: int, context: dict[str, Any], nonce: str
) -> None:
    """Body of the forked program process: lock down, run, report (with the run's nonce), exit. Never returns.

    The nonce lives only in this frame and the worker's: a program that wrote a forged result to the channel
    would not know it."""
    exit_code = _CRASH_EXIT
    out = channel_fd
    try:
        context["lockdown"].isolate_descriptors(channel_fd)
        out = CHANNEL_FD
        limits = request["limits"]
        space = context["address_space"]
        context["lockdown"].restrict(
            None if space is None else space + limits["memory_mb"] * 2**20,
            math.ceil(request["timeout_s"]) + 1,
            worker_pid,
        )
        result = run_program(
            request["code"],
            context["modules"],
            tuple(request["image_size"]),
            request["tools"],
            limits,
            CHANNEL_FD,
        )
        write_frame(out, {"op": "result", "nonce": nonce, **result})
        exit_code = 0
    except MemoryError:
        write_frame(out, {"op": "result", "nonce": nonce, "error_type": "memory", "error": "out of memory"})
        exit_code = 0
    except BaseException as exc:
        message = f"sandbox failure: {type(exc).__name__}: {str(exc)[:500]}"
        write_frame(out, {"op": "result", "nonce": nonce, "error_type": "runtime", "error": message})
        exit_code = 0
    finally:
        os._exit(exit_code)


def _reap(pid: int, deadline: float) -> int | None:
    """Exit status of a child that closed its channel, or None if it is still alive at ``deadline``."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.001)


def _death_result(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in _DEATH_CAUSES:
            error_type, error = _DEATH_CAUSES[signal.Signals(sig)]
            return {"error_type": error_type, "error": error}
        return {"error_type": "runtime", "error": f"the program process crashed ({signal.Signals(sig).name})"}
    code = os.WEXITSTATUS(status)
    return {"error_type": "runtime", "error": f"the program process exited (code {code}) without a result"}


def _supervise(
    pid: int, child_fd: int, parent_fd: int, request: dict[str, Any], nonce: str
) -> tuple[dict[str, Any], int | None]:
    """Relay until the child reports, dies or runs out of time; returns (result, exit status if reaped)."""
    timeout = float(request["timeout_s"])
    deadline = time.monotonic() + timeout
    timed_out = {"error_type": "timeout", "error": f"the program ran longer than {timeout:g} s"}
    buffer = FrameBuffer()
    poller = select.poll()
    poller.register(child_fd, select.POLLIN)
    poller.register(parent_fd, select.POLLIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return timed_out, None
        for fd, _ in poller.poll(math.ceil(remaining * 1000)):
            if fd == parent_fd:
                raise _ParentGone
            try:
                data = os.read(child_fd, 1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                status = _reap(pid, deadline)
                return (timed_out, None) if status is None else (_death_result(status), status)
            try:
                frames = buffer.feed(data)
            except ProtocolError as exc:
                return {
                    "error_type": "forbidden",
                    "error": f"malformed message from the program: {exc}",
                }, None
            for frame in frames:
                op = frame.pop("op", None)
                if op == "result" and frame.pop("nonce", None) == nonce:
                    return frame, None
                if op != "tool" or request["tools"] is None:
                    return {"error_type": "forbidden", "error": "unexpected message from the program"}, None
                paused = time.monotonic()
                write_frame(parent_fd, {"op": "tool", **frame})
                reply = read_frame(parent_fd)
                if reply is None:
                    raise _ParentGone
                with contextlib.suppress(OSError):  # the child died meanwhile: its channel shows that next
                    write_frame(child_fd, reply)
                deadline += time.monotonic() - paused


def _run(request: dict[str, Any], parent_fd: int, context: dict[str, Any]) -> dict[str, Any]:
    """Run one program in a fresh locked-down child and return its result fields."""
    ours, theirs = socket.socketpair()
    worker_pid = os.getpid()
    nonce = secrets.token_hex(16)
    context["address_space"] = address_space_bytes()
    pid = os.fork()
    if pid == 0:
        ours.close()
        _child(request, theirs.fileno(), worker_pid, context, nonce)
    theirs.close()
    status: int | None = None
    try:
        with contextlib.suppress(OSError):  # the child already did it (or already exited)
            os.setpgid(pid, pid)
        result, status = _supervise(pid, ours.fileno(), parent_fd, request, nonce)
        return result
    finally:
        ours.close()
        if status is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def main(parent_fd: int) -> None:
    """Serve ``run`` requests from the parent on ``parent_fd`` until it closes the channel."""
    warnings.simplefilter("ignore")
    _warm_up()
    context: dict[str, Any] = {"modules": restricted_modules(), "lockdown": Lockdown.prepare()}
    gc.collect()
    gc.freeze()
    try:
        write_frame(parent_fd, {"op": "ready", "pid": os.getpid(), "seccomp": seccomp_available()})
        while (request := read_frame(parent_fd)) is not None and request.get("op") == "run":
            try:
                result = _run(request, parent_fd, context)
            except _ParentGone:
                break
            except OSError as exc:
                result = {"error_type": "runtime", "error": f"sandbox worker error: {exc}"}
            write_frame(parent_fd, {"op": "result", **result})
    except (OSError, ProtocolError):
        pass  # the parent went away mid-message
    sys.exit(0)
