"""Split a policy response into its ``<plan>`` and ``<answer>`` blocks and judge the format gate.

Format rule (paper A.6.2, the format reward): ``format_ok`` is True only when the response has exactly one
non-empty ``<plan>...</plan>`` block, exactly one non-empty ``<answer>...</answer>`` block, no other
``<plan>``/``<answer>`` tags (nested, unclosed or stray) and nothing but whitespace outside the two blocks.
Tags are matched exactly (lower case, no attributes); any other text, including other tags such as
``<think>``, counts as text outside the blocks.

Best-effort extraction (used when ``format_ok`` is False, so evaluation can still run usable responses):
a block opens at a tag met outside any block and closes at the next closing tag of the same kind; tags of
the other kind inside it stay part of its text (and are reported as nesting). A block that is never closed
ends at the next opening tag or at the end of the text (e.g. a truncated generation). ``plan`` is the first
non-empty plan block and ``code`` the first non-empty answer block, each stripped; in the code, the first
Markdown code fence (```python ... ```) is unwrapped and the block is dedented. Only the first 64 blocks
and stray tags are examined (a response with more fails the gate anyway).

Every search only moves forward through the text, so parsing takes linear time on any input.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

_TAG = re.compile(r"<(/?)(plan|answer)>")
_OPEN = re.compile(r"<(plan|answer)>")
_KINDS = ("plan", "answer")
# The format gate fails beyond two blocks anyway; stop scanning pathological responses early.
_MAX_TAGS = 64


@dataclass(frozen=True)
class ParsedResponse:
    """Plan text, program text and whether the response passes the format gate (``problems`` say why not)."""

    plan: str
    code: str
    format_ok: bool
    problems: list[str] = field(default_factory=list)


def _snippet(text: str, limit: int = 40) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


class _CloseFinder:
    """Next ``</kind>`` at or after a position; queries only move forward, so searching is linear in total."""

    def __init__(self, text: str):
        self._text = text
        self._found: dict[str, int] = {}

    def __call__(self, kind: str, start: int) -> int:
        found = self._found.get(kind)
        if found is None or (found != -1 and found < start):
            found = self._text.find(f"</{kind}>", start)
            self._found[kind] = found
        return found


def _split_blocks(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Blocks as (kind, raw content) in order of appearance, and the structural problems found."""
    find_close = _CloseFinder(text)
    blocks: list[tuple[str, str]] = []
    problems: list[str] = []
    outside: str | None = None
    pos = 0
    steps = 0
    while (tag := _TAG.search(text, pos)) is not None:
        steps += 1
        if steps > _MAX_TAGS:
            problems.append(f"more than {_MAX_TAGS} blocks or stray tags; the rest was not examined")
            return blocks, problems
        if outside is None and text[pos : tag.start()].strip():
            outside = text[pos : tag.start()]
        kind = tag.group(2)
        if tag.group(1):
            problems.append(f"stray </{kind}> outside any block")
            pos = tag.end()
            continue
        close = find_close(kind, tag.end())
        if close == -1:
            following = _OPEN.search(text, tag.end())
            end = pos = following.start() if following else len(text)
            problems.append(f"<{kind}> is never closed")
        else:
            end, pos = close, close + len(kind) + 3
        inner = {m.group(0) for m in _TAG.finditer(text, tag.end(), end)}
        if inner:
            problems.append(f"tags nested inside <{kind}>: {', '.join(sorted(inner))}")
        blocks.append((kind, text[tag.end() : end]))
    if outside is None and text[pos:].strip():
        outside = text[pos:]
    if outside is not None:
        problems.append(f"text outside the blocks: {_snippet(outside)}")
    return blocks, problems


def strip_code_fences(code: str) -> str:
    """Unwrap the first Markdown code fence (```lang ... ```) if there is one; dedent and strip."""
    lines = code.split("\n")
    opening = next((i for i, line in enumerate(lines) if line.lstrip().startswith("```")), None)
    if opening is not None:
        closing = next(
            (j for j in range(opening + 1, len(lines)) if lines[j].strip().startswith("```")), len(lines)
        )
        lines = lines[opening + 1 : closing]
    return textwrap.dedent("\n".join(lines)).strip()


def parse_response(text: str) -> ParsedResponse:
    """Extract plan and program from a policy response and apply the paper's format gate (see module doc)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_response expects a str, got {type(text).__name__}")
    blocks, found_problems = _split_blocks(text)
    problems = list(dict.fromkeys(found_problems))
    contents = {kind: [body for k, body in blocks if k == kind] for kind in _KINDS}
    for kind in _KINDS:
        found = contents[kind]
        if not found:
            problems.append(f"no <{kind}> block")
        elif len(found) > 1:
            problems.append(f"{len(found)} <{kind}> blocks (exactly one expected)")
        if any(not body.strip() for body in found):
            problems.append(f"empty <{kind}> block")
    plan = next((body.strip() for body in contents["plan"] if body.strip()), "")
    raw_code = next((body for body in contents["answer"] if body.strip()), "")
    return ParsedResponse(
        plan=plan, code=strip_code_fences(raw_code), format_ok=not problems, problems=problems
    )
