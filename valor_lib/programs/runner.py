"""Parse, check, compile and run one program inside its (already locked-down) sandbox process.

A program runs as the body of a function, so a bare ``return`` ends it early; ``final_answer`` starts as None
and its value when the body ends (normally, by ``return`` or by an exception) is the answer.
"""

from __future__ import annotations

import ast
import traceback
import types
from typing import Any

from .namespace import (
    AuditGate,
    ImageHandle,
    RunState,
    SandboxViolation,
    install_audit_hook,
    make_builtins,
)
from .plain_data import DataLimits, PlainDataError, to_plain
from .policy import check_program, top_level_yield
from .sandbox_tools import make_dummy_tools, make_proxy_tools

PROGRAM_FILENAME = "<program>"
MAX_ERROR_CHARS = 2000
_WRAPPER = "__program__"
_SINK = "__answer_sink__"


def _failure(error_type: str, error: str) -> dict[str, Any]:
    return {"error_type": error_type, "error": error[:MAX_ERROR_CHARS]}


def _syntax_message(exc: SyntaxError) -> str:
    where = f" (line {exc.lineno})" if exc.lineno else ""
    return f"{type(exc).__name__}: {exc.msg}{where}"


def wrap_as_function(tree: ast.Module) -> ast.Module:
    """``def __program__(sink): final_answer = None; try: <body> finally: sink.append(final_answer)``."""
    template = ast.parse(
        f"def {_WRAPPER}({_SINK}):\n"
        "    final_answer = None\n"
        "    try:\n"
        "        pass\n"
        "    finally:\n"
        f"        {_SINK}.append(final_answer)\n"
    )
    function = template.body[0]
    assert isinstance(function, ast.FunctionDef) and isinstance(function.body[1], ast.Try)
    function.body[1].body = tree.body or [ast.Pass()]
    return ast.fix_missing_locations(template)


def check_and_parse(code: str, max_code_chars: int) -> ast.Module | dict[str, Any]:
    """The parsed program, or a syntax/forbidden/memory failure."""
    if len(code) > max_code_chars:
        return _failure("syntax", f"program is longer than {max_code_chars} characters")
    try:
        tree = ast.parse(code, filename=PROGRAM_FILENAME)
        if (node := top_level_yield(tree)) is not None:
            return _failure("syntax", f"'yield'/'await' in the program body (line {node.lineno})")
        problems = check_program(tree)
    except SyntaxError as exc:
        return _failure("syntax", _syntax_message(exc))
    except (ValueError, RecursionError) as exc:
        return _failure("syntax", f"{type(exc).__name__}: {exc}")
    except MemoryError:
        return _failure("memory", "out of memory while parsing the program")
    if problems:
        return _failure("forbidden", "; ".join(problems))
    return tree


def _locate_and_release(exc: BaseException, gate: AuditGate) -> str:
    """`` (line N)`` of the innermost program frame in the traceback; then free the frames' locals (after a
    memory error they may hold everything the program allocated)."""
    line = None
    gate.inspecting = True
    try:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == PROGRAM_FILENAME:
                line = tb.tb_lineno
            tb = tb.tb_next
        traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
    finally:
        gate.inspecting = False
    return f" (line {line})" if line else ""


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # a program-defined __str__ may fail in any way
        text = "<unprintable>"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _classify(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, SandboxViolation | PermissionError):
        return "forbidden"
    if isinstance(exc, Exception):
        return "runtime"
    return "forbidden"  # SystemExit, KeyboardInterrupt, ...: a program may not control the interpreter


def run_tree(
    tree: ast.Module,
    modules: dict[str, types.ModuleType],
    image_size: tuple[int, int],
    tool_names: list[str] | None,
    limits: dict[str, int],
    channel_fd: int | None = None,
) -> dict[str, Any]:
    """Compile and run a checked program; returns the result fields (``error_type`` None means success).

    ``tool_names`` None gives the dummy tools; otherwise proxies for those names over ``channel_fd``.
    """
    state = RunState(limits["max_output_chars"], limits["max_tool_calls"])
    try:
        code = compile(wrap_as_function(tree), PROGRAM_FILENAME, "exec")
    except SyntaxError as exc:
        return _failure("syntax", _syntax_message(exc))
    except (ValueError, RecursionError) as exc:
        return _failure("syntax", f"{type(exc).__name__}: {exc}")
    except MemoryError:
        return _failure("memory", "out of memory while compiling the program")
    handle = ImageHandle(*image_size)
    if tool_names is None:
        tools = make_dummy_tools(handle, state)
    else:
        assert channel_fd is not None, "real tools need a channel to the parent"
        tools = make_proxy_tools(tool_names, handle, state, channel_fd)
    namespace: dict[str, Any] = {
        "__builtins__": make_builtins(state, modules),
        "__name__": "program",
        "math": modules["math"],
        "np": modules["numpy"],
        "numpy": modules["numpy"],
        "image": handle,
        **tools,
    }
    exec(code, namespace)
    function = namespace.pop(_WRAPPER)
    sink: list[Any] = []
    gate = AuditGate()
    install_audit_hook(gate)
    gate.guarded = True
    error: BaseException | None = None
    try:
        function(sink)
    except BaseException as exc:
        error = exc
    result: dict[str, Any] = {}
    if error is not None:
        message = _describe(error) + _locate_and_release(error, gate)
        result.update(_failure(_classify(error), message))
    else:
        answer = sink[0] if sink else None
        try:
            result["answer"] = to_plain(
                answer, DataLimits(max_chars=limits["max_output_chars"]), "final_answer"
            )
            result["error_type"] = None if answer is not None else "no_answer"
            result["error"] = "" if answer is not None else "final_answer was not set"
        except PlainDataError as exc:
            result.update(_failure("output_limit" if exc.too_large else "runtime", str(exc)))
    failure = ("forbidden", gate.violation) if gate.violation else state.failure
    if failure is not None:  # sticky: a caught violation or limit still fails the program
        result.update(_failure(*failure))
        result.pop("answer", None)
    result.update(stdout="".join(state.output), tool_calls=state.tool_calls)
    return result


def run_program(
    code: str,
    modules: dict[str, types.ModuleType],
    image_size: tuple[int, int],
    tool_names: list[str] | None,
    limits: dict[str, int],
    channel_fd: int | None = None,
) -> dict[str, Any]:
    """Check and run one program (see :func:`run_tree`)."""
    tree = check_and_parse(code, limits["max_code_chars"])
    if isinstance(tree, dict):
        return tree
    return run_tree(tree, modules, image_size, tool_names, limits, channel_fd)
