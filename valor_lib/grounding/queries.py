"""Grounding queries of a generated program: the noun phrases it asks ``gd_detect`` for, found with ``ast``.

The program is parsed, never run. A prompt argument resolves when it is built from string constants only:
a literal, ``+`` concatenations, f-strings without format specs, ``", ".join([...])`` of constants, and names
that every assignment in the program binds to the same constant value. Anything else (a loop variable, a
function parameter, a call) is reported in ``unresolved`` with its source text, so one can see what was missed.

    q = extract_grounding_queries('chairs = gd_detect(image, "red chairs, table")')
    q.prompts   # ["red chairs, table"]        what the program sends to the detector
    q.phrases   # ["red chair", "table"]       normalised labels (pseudo-label categories)
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field

from valor_lib.detection.captions import normalize_phrase

DETECT_TOOL = "gd_detect"
PROMPT_KEYWORDS = ("prompt", "text", "query", "nouns")
_ARTICLES = ("the ", "a ", "an ")
# Plural nouns that the suffix rules below would get wrong (kept small; extend as real data shows the need).
_IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
              "feet": "foot", "teeth": "tooth", "geese": "goose", "knives": "knife", "leaves": "leaf",
              "shelves": "shelf", "wolves": "wolf", "halves": "half", "loaves": "loaf", "scarves": "scarf",
              "buses": "bus", "glasses": "glasses", "pants": "pants", "jeans": "jeans", "scissors": "scissors",
              "shorts": "shorts", "series": "series", "species": "species", "dice": "die"}
_KEEP_S = ("ss", "us", "is", "os")


class _Unresolved(Exception):
    """An expression that is not built from constants only."""


@dataclass(frozen=True)
class GroundingQueries:
    """What a program asks the detector for.

    ``prompts``: the resolved prompt strings in call order (distinct); ``phrases``: their comma-separated
    nouns, normalised (:func:`normalize_label`), distinct, in order; ``unresolved``: source text of prompt
    arguments that are not constant; ``calls``: number of ``gd_detect`` calls found; ``error``: why the
    program could not be parsed (then everything else is empty).
    """

    prompts: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    calls: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"prompts": self.prompts, "phrases": self.phrases, "unresolved": self.unresolved,
                "calls": self.calls, "error": self.error}


def singular(word: str) -> str:
    """English singular of a lower-case noun by suffix rules (``boxes`` -> ``box``, ``vases`` -> ``vase``)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("xes", "ches", "shes", "zzes", "sses")):
        return word[:-2]
    return word[:-1]


def normalize_label(phrase: str) -> str:
    """A detector phrase as a pseudo-label category: lower case, no leading article, last word singular.

    ``"The Red Chairs"`` -> ``"red chair"``. Returns ``""`` for a phrase with no words."""
    text = normalize_phrase(phrase)
    while text.startswith(_ARTICLES):
        text = text.split(" ", 1)[1]
    words = text.split()
    if not words:
        return ""
    return " ".join([*words[:-1], singular(words[-1])])


def split_nouns(prompt: str) -> list[str]:
    """The distinct normalised labels of a comma-separated detector prompt, in order."""
    labels = (normalize_label(part) for part in prompt.split(","))
    return list(dict.fromkeys(label for label in labels if label))


class _Constants:
    """Resolves expressions built from string constants, including names bound to one constant value."""

    def __init__(self, tree: ast.AST):
        self._bindings: dict[str, list[ast.expr | None]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
                value = node.value if not isinstance(node, ast.AugAssign) else None  # x += ... is not constant
                self._bind(node.target, value)
            elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                self._bind(node.target, None)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                self._bind(node.optional_vars, None)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self._bindings.setdefault(node.name, []).append(None)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                for arg in ast.walk(node.args):
                    if isinstance(arg, ast.arg):
                        self._bindings.setdefault(arg.arg, []).append(None)
        self._resolving: set[str] = set()

    def _bind(self, target: ast.AST, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self._bindings.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple | ast.List | ast.Starred):
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    self._bindings.setdefault(name.id, []).append(None)

    def value(self, node: ast.AST) -> str | list[str]:
        """The constant value of ``node`` (a string, or a list of strings for list/tuple literals)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left), self.value(node.right)
            if type(left) is not type(right):
                raise _Unresolved
            return left + right  # type: ignore[operator]
        if isinstance(node, ast.JoinedStr):
            return "".join(self._fstring_part(part) for part in node.values)
        if isinstance(node, ast.List | ast.Tuple):
            return [self._string(element) for element in node.elts]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
                and len(node.args) == 1 and not node.keywords):
            separator, parts = self.value(node.func.value), self.value(node.args[0])
            if isinstance(separator, str) and isinstance(parts, list):
                return separator.join(parts)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        raise _Unresolved

    def _string(self, node: ast.AST) -> str:
        value = self.value(node)
        if not isinstance(value, str):
            raise _Unresolved
        return value

    def _fstring_part(self, part: ast.AST) -> str:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            return part.value
        if isinstance(part, ast.FormattedValue) and part.format_spec is None and part.conversion in (-1, 115):
            return self._string(part.value)
        raise _Unresolved

    def _name(self, name: str) -> str | list[str]:
        bound = self._bindings.get(name)
        if not bound or any(v is None for v in bound) or name in self._resolving:
            raise _Unresolved
        self._resolving.add(name)
        try:
            values = [self.value(v) for v in bound]  # type: ignore[arg-type]
        finally:
            self._resolving.discard(name)
        if any(v != values[0] for v in values[1:]):
            raise _Unresolved
        return values[0]


def _prompt_argument(call: ast.Call) -> ast.expr | None:
    if len(call.args) >= 2:
        return call.args[1]
    for keyword in call.keywords:
        if keyword.arg in PROMPT_KEYWORDS:
            return keyword.value
    return None


def _is_detect_call(node: ast.AST, tool: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == tool) or (isinstance(func, ast.Attribute) and func.attr == tool)


def extract_grounding_queries(code: str, tool: str = DETECT_TOOL) -> GroundingQueries:
    """Every ``tool(image, prompt)`` call of ``code`` with its prompt resolved where it is constant."""
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as err:
        return GroundingQueries(error=f"{type(err).__name__}: {err}")
    constants = _Constants(tree)
    calls = sorted((n for n in ast.walk(tree) if _is_detect_call(n, tool)), key=lambda n: (n.lineno, n.col_offset))
    prompts: list[str] = []
    unresolved: list[str] = []
    for call in calls:
        argument = _prompt_argument(call)
        if argument is None:
            unresolved.append(ast.unparse(call))
            continue
        try:
            value = constants.value(argument)
        except (_Unresolved, RecursionError):
            unresolved.append(ast.unparse(argument))
            continue
        if not isinstance(value, str):
            unresolved.append(ast.unparse(argument))
            continue
        prompts.append(value)
    prompts = list(dict.fromkeys(p for p in prompts if p.strip()))
    return GroundingQueries(prompts, _phrases(prompts), list(dict.fromkeys(unresolved)), len(calls))


def _phrases(prompts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(label for prompt in prompts for label in split_nouns(prompt)))
