"""``toy:judge``: the toy world's GQA answer judge, an offline stand-in for the LLM judge.

It reads only the judge prompt (question, reference answer, candidate answer lines), maps both answers to a
canonical form with the toy vocabulary's synonyms (``couch`` -> sofa, ``violet`` -> purple), number words
(``three`` -> 3) and yes/no variants, and replies in the real judge's format.
"""

from __future__ import annotations

from valor_lib.clients import ChatRequest, register_toy_brain
from valor_lib.evaluation.judge import PROMPT_LINES
from valor_lib.evaluation.metrics import normalize_text, parse_number, parse_yes_no
from valor_lib.toyworld.vocab import COLOR_SYNONYMS, canonical_noun

_COLOR_OF = {syn: color for color, syns in COLOR_SYNONYMS.items() for syn in syns}


def _field(text: str, label: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(label):
            return line[len(label):].strip()
    return None


def canonical_answer(answer: str) -> str:
    """A canonical form of a short answer: word by word synonyms, numbers as digits, yes/no."""
    polar = parse_yes_no(answer)
    text = normalize_text(answer)
    if polar is not None and text in ("yes", "no", "true", "false"):
        return polar
    number = parse_number(text)
    if number is not None and len(text.split()) == 1:
        return f"{number:g}"
    whole = canonical_noun(text)
    if whole is not None:
        return whole
    words = [_COLOR_OF.get(w, canonical_noun(w) or w) for w in text.split()]
    return " ".join(words)


class ToyJudge:
    """Says 1 when the two answers have the same canonical form."""

    name = "toy-judge-v1"

    def __call__(self, request: ChatRequest) -> str:
        text = request.messages[-1].text
        question_line, reference_line, candidate_line = PROMPT_LINES
        reference, candidate = _field(text, reference_line), _field(text, candidate_line)
        if _field(text, question_line) is None or reference is None or candidate is None:
            return "I cannot find the question and the two answers to compare."
        same = bool(candidate.strip()) and canonical_answer(candidate) == canonical_answer(reference)
        return f"<verdict>{int(same)}</verdict>"


register_toy_brain("judge", lambda **options: ToyJudge(**options), replace=True)
