"""Question rewrites the paper applies before a benchmark question reaches the policy, done cleanly.

- multiple choice (BLINK, RealWorldQA): the options are appended as ``"<question> Options: {a, b}."`` and the
  ground-truth letter becomes the option text (the authors' code produced ``"...??"`` and dropped the space
  after each comma; we keep the question's own punctuation and write ``", "``);
- VSR statements become questions: ``"The dog is on the surfboard."`` -> ``"Is the dog on the surfboard?"``
  (the authors' ``f"Is {caption}?"`` gave ``"Is The dog is on the surfboard.?"``).
"""

from __future__ import annotations

import re

_LETTERS = "ABCDEFGHIJ"
_ARTICLES = ("the", "a", "an")
# the first copula splits a VSR caption into subject and predicate
_COPULA = re.compile(r"\s(is|are)\s", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])\s*(?:[.):]|\s-)\s*(.+?)\s*$")
_INSTRUCTION_LINE = re.compile(r"^\s*please answer\b", re.IGNORECASE)
_OPTIONS_SET = re.compile(r"\boptions?\s*:?\s*\{(?P<opts>[^{}]*)\}", re.IGNORECASE)
_CHOOSE_FROM = re.compile(r"\bchoose from\s*:?\s*(?P<opts>[^.?!\n]+)", re.IGNORECASE)
_LETTER_ANSWER = re.compile(r"^\s*\(?\s*([A-Ja-j])\s*\)?\s*[.:]?\s*$")


class RewriteError(ValueError):
    """A question or answer does not have the shape its benchmark's rewrite expects."""


def _lower_article(subject: str) -> str:
    first, _, rest = subject.partition(" ")
    return f"{first.lower()} {rest}".strip() if first.lower() in _ARTICLES else subject


def vsr_question(caption: str) -> str:
    """Turn a VSR statement into a yes/no question (captions without "is"/"are" get "Is it true that ...?")."""
    text = " ".join(caption.split()).rstrip(" .!")
    if not text:
        raise RewriteError("empty VSR caption")
    match = _COPULA.search(text)
    if match is None:
        return f"Is it true that {_lower_article(text)}?"
    subject, predicate = text[: match.start()], text[match.end():]
    return f"{match.group(1).capitalize()} {_lower_article(subject)} {predicate}?"


def with_options(question: str, options: list[str] | tuple[str, ...]) -> str:
    """``"<question> Options: {a, b}."``, keeping the question's own final punctuation."""
    if not options:
        raise RewriteError("no options to append")
    return f"{question.strip()} Options: {{{', '.join(o.strip() for o in options)}}}."


def letter_index(answer: str) -> int:
    """Index of an option letter written as ``"A"``, ``"(B)"``, ``"c."`` (raises :class:`RewriteError`)."""
    match = _LETTER_ANSWER.match(str(answer))
    if match is None:
        raise RewriteError(f"not an option letter: {answer!r}")
    return _LETTERS.index(match.group(1).upper())


def option_for_letter(answer: str, options: list[str] | tuple[str, ...]) -> str:
    """The option text an answer letter points to."""
    index = letter_index(answer)
    if index >= len(options):
        raise RewriteError(f"answer {answer!r} points past the {len(options)} options")
    return options[index]


def listed_options(question: str) -> tuple[str, ...]:
    """Options written inline in a question ("Options: {a, b}" or "Choose from a, b, c"), else ()."""
    match = _OPTIONS_SET.search(question) or _CHOOSE_FROM.search(question)
    if match is None:
        return ()
    parts = re.split(r",|\bor\b", match["opts"])
    return tuple(p.strip() for p in parts if p.strip())


def split_lettered(question: str) -> tuple[str, tuple[str, ...]] | None:
    """Split a RealWorldQA block ("question / A. x / B. y / Please answer ...") into (question, options).

    Returns None when the block has fewer than two lettered option lines. A leading ``Query:`` is dropped and
    everything from a line starting with "Please answer" on is ignored.
    """
    lines = question.splitlines()
    core: list[str] = []
    options: list[str] = []
    for line in lines:
        if _INSTRUCTION_LINE.match(line):
            break
        match = _OPTION_LINE.match(line)
        if match and core and match.group(1) == _LETTERS[len(options)]:
            options.append(match.group(2).rstrip("."))
        elif not options:
            core.append(line.strip())
    if len(options) < 2:
        return None
    text = " ".join(s for s in core if s)
    text = re.sub(r"^\s*query:\s*", "", text, flags=re.IGNORECASE).strip()
    return text, tuple(options)
