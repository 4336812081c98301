"""What a generated program may name, import and touch: the static (AST) layer of the sandbox.

The same attribute rule is applied again at run time by the sandbox's ``getattr``/``hasattr``, and the
restricted numpy namespace is built from it, so one table decides what is reachable.
"""

from __future__ import annotations

import ast
import string

# Modules a program may import (``import numpy as np``, ``from math import sqrt``, ``import numpy.linalg``).
ALLOWED_MODULES = frozenset({"math", "numpy", "numpy.linalg", "numpy.random", "numpy.fft"})

# Names that only serve to escape or to reach the interpreter. A program may still use one as its own
# variable (``type = "chair"``); it is reported only when read without being assigned anywhere.
BLOCKED_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "globals", "locals", "vars", "dir", "setattr", "delattr",
        "breakpoint", "input", "help", "exit", "quit", "memoryview", "type", "object", "super",
        "SystemExit", "KeyboardInterrupt", "GeneratorExit", "BaseException",
        "os", "sys", "subprocess", "socket", "builtins", "importlib", "ctypes", "pickle", "marshal",
        "signal", "resource", "gc", "inspect", "threading", "multiprocessing", "shutil", "pathlib", "io",
    }
)  # fmt: skip

# Attribute names never reachable: file and process access that numpy objects expose (``np.save``,
# ``arr.tofile``, ``arr.ctypes``), interpreter handles, and ``str.format`` (whose fields can walk attributes).
BLOCKED_ATTRIBUTES = frozenset(
    {
        "load", "loads", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt",
        "fromfile", "fromregex", "memmap", "tofile", "dump", "dumps", "DataSource", "open",
        "ctypes", "cffi", "ctypeslib", "lib", "f2py", "testing", "distutils", "typing", "core",
        "show_config", "show_runtime", "get_include", "info", "test",
        "add_newdoc", "add_docstring", "add_newdoc_ufunc",
        "mro", "format", "format_map", "system", "popen", "environ", "modules", "builtins",
        "os", "sys", "subprocess",
    }
)  # fmt: skip

# Private and dunder names, and the frame, generator, coroutine, traceback and code object attributes.
BLOCKED_ATTRIBUTE_PREFIXES = ("_", "gi_", "cr_", "ag_", "f_", "tb_", "co_")

# numpy attributes that may be read but never assigned (they would reinterpret raw memory).
READ_ONLY_ATTRIBUTES = frozenset({"strides", "data", "dtype", "flags"})


def attribute_problem(name: str) -> str | None:
    """Why a program may not read attribute ``name``; None when it may."""
    if name.startswith(BLOCKED_ATTRIBUTE_PREFIXES):
        return f"access to attribute {name!r} is not allowed (private or interpreter internals)"
    if name in BLOCKED_ATTRIBUTES:
        return f"access to attribute {name!r} is not allowed"
    return None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _format_fields_problem(template: str) -> str | None:
    """A ``str.format`` template is safe when none of its fields (nested ones too) looks up attributes."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None  # malformed: format() raises at run time
    for _, field, spec, _ in parsed:
        if field and "." in field:
            return f"format field {{{field}}} looks up an attribute"
        if spec and "{" in spec and (problem := _format_fields_problem(spec)):
            return problem
    return None


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the program binds anywhere (assignments, loops, defs, parameters, imports, ...)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


class _Checker(ast.NodeVisitor):
    """Collects ``line N: reason`` for every forbidden construct."""

    def __init__(self, bound: set[str]):
        self.bound = bound
        self.problems: list[str] = []

    def report(self, node: ast.AST, reason: str) -> None:
        self.problems.append(f"line {getattr(node, 'lineno', '?')}: {reason}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                self.report(node, f"import of {alias.name!r} is not allowed (only math and numpy)")
            self._check_binding(node, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module not in ALLOWED_MODULES:
            self.report(node, f"import from {node.module!r} is not allowed (only math and numpy)")
        for alias in node.names:
            if alias.name == "*":
                self.report(node, "star imports are not allowed")
            elif problem := attribute_problem(alias.name):
                self.report(node, problem)
            self._check_binding(node, alias.asname or alias.name)

    def _check_binding(self, node: ast.AST, name: str | None) -> None:
        if name and _is_dunder(name):
            self.report(node, f"the name {name!r} is reserved")

    def visit_Name(self, node: ast.Name) -> None:
        if _is_dunder(node.id):
            self.report(node, f"the name {node.id!r} is reserved")
        elif node.id in BLOCKED_NAMES and node.id not in self.bound:
            self.report(node, f"{node.id!r} is not available to programs")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        literal = isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        if node.attr == "format" and literal:
            if problem := _format_fields_problem(node.value.value):
                self.report(node, problem)
        elif problem := attribute_problem(node.attr):
            hint = " (use an f-string)" if node.attr in ("format", "format_map") else ""
            self.report(node, problem + hint)
        if not isinstance(node.ctx, ast.Load) and node.attr in READ_ONLY_ATTRIBUTES:
            self.report(node, f"assigning attribute {node.attr!r} is not allowed")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and len(node.args) >= 2:
            name = node.args[1]
            literal = isinstance(name, ast.Constant) and isinstance(name.value, str)
            if literal and (problem := attribute_problem(name.value)):
                self.report(node, problem)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for name in node.kwd_attrs:
            if problem := attribute_problem(name):
                self.report(node, problem)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            self._check_binding(node, name)

    visit_Nonlocal = visit_Global


def check_program(tree: ast.Module) -> list[str]:
    """Forbidden constructs in a parsed program, as ``line N: reason`` strings (empty when it may run)."""
    checker = _Checker(_bound_names(tree))
    checker.visit(tree)
    return checker.problems


def top_level_yield(tree: ast.Module) -> ast.AST | None:
    """A ``yield``/``await`` directly in the program body (which runs as a plain function), if any."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Yield | ast.YieldFrom | ast.Await):
            return node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            pending.extend(ast.iter_child_nodes(node))
    return None
