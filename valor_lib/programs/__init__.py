"""Policy responses to programs: parse ``<plan>``/``<answer>`` and run the program in a sandbox (contract).

>>> p = parse_response(text)            # .plan, .code, .format_ok, .problems
>>> r = execute(p.code)                 # dummy tools: the syntax reward; .ok, .answer, .error_type, ...
>>> rs = execute_many(codes, tools={"gd_detect": ..., "depth": ..., "vqa": ...}, images=images)

Security design (defence in depth; every layer alone stops the usual escapes):

1. Static check (:mod:`.policy`): only ``math``/``numpy`` imports; no dunder names, no private, frame,
   generator or code attributes, no numpy file/memory interfaces (``np.save``, ``arr.tofile``, ``ctypes``),
   no ``open``/``exec``/``eval``/``compile``/``globals``/``type``/... and no ``str.format`` field walks.
2. Restricted namespace (:mod:`.namespace`): a small builtins table, a checked ``getattr``, an
   ``__import__`` that only hands out copies of ``math`` and of numpy without I/O or submodules other
   than ``linalg``/``random``/``fft``; the image is an opaque handle; tools are closures or proxies.
3. Audit hook: while the program runs, any interpreter audit event (open, import, exec, sockets,
   subprocesses, frame access, ...) is a ``forbidden`` violation; violations and output limits are sticky.
4. Process isolation (:mod:`.worker`, :mod:`.lockdown`): each program runs in a child forked from a warm,
   clean worker (never from the caller) and is killed afterwards; the child gets rlimits (memory, CPU, file
   size 0, 4 descriptors, no processes), drops root to ``nobody``, closes every inherited descriptor, and
   installs a seccomp filter (x86-64 Linux) that kills on fork/exec/sockets and refuses file access.
5. Data-only IPC (:mod:`.protocol`): JSON frames with size limits; nothing from a worker is unpickled.
   Workers get a scrubbed environment (no API keys) and their own session.

The wall timeout is enforced by the worker (SIGKILL) and, as a safety net, by the caller's loop, so a
result always comes back.
"""

from .executor import SandboxLimits, close, execute, execute_many, image_size_of
from .parsing import ParsedResponse, parse_response
from .result import ERROR_TYPES, ExecResult

__all__ = [
    "ERROR_TYPES",
    "ExecResult",
    "ParsedResponse",
    "SandboxLimits",
    "close",
    "execute",
    "execute_many",
    "image_size_of",
    "parse_response",
]
