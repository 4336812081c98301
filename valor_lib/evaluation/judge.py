"""The GQA answer judge: an LLM decides whether a predicted answer means the same as the ground truth.

The paper scores GQA's open answers with GPT-5-mini as a judge of semantic equivalence (synonyms allowed,
binary output). The prompt here is ours; the reply must hold exactly one ``<verdict>0</verdict>`` or
``<verdict>1</verdict>``. A reply without one, or a call that fails after the client's retries, gives
``equivalent=None`` with the reason in ``error``: it is counted as a judge failure, never silently as 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from valor_lib.clients import ChatClient, ChatRequest, SamplingParams, user

_VERDICT = re.compile(r"<verdict>\s*([01])\s*</verdict>", re.IGNORECASE)
PROMPT_LINES = ("Question: ", "Reference answer: ", "Candidate answer: ")

JUDGE_PROMPT = """You grade short answers to questions about images.

{question_line}{question}
{reference_line}{reference}
{candidate_line}{candidate}

Does the candidate answer mean the same as the reference answer, for this question? Count synonyms, singular and \
plural forms, spelling variants, digits versus number words and extra wording around the same answer as the same. \
Count a different object, colour, number, place or attribute as different, and so is an answer that hedges between \
several options.
Reply with <verdict>1</verdict> when they mean the same and <verdict>0</verdict> when they do not, and nothing else."""


@dataclass(frozen=True)
class Verdict:
    """The judge's decision: ``equivalent`` is None when the judge failed (``error`` says why)."""

    equivalent: bool | None
    reply: str | None = None
    error: str | None = None


def judge_prompt(question: str, reference: Any, candidate: Any) -> str:
    """The judge's prompt for one (question, ground truth, prediction)."""
    q_line, r_line, c_line = PROMPT_LINES
    return JUDGE_PROMPT.format(question_line=q_line, reference_line=r_line, candidate_line=c_line,
                               question=" ".join(str(question).split()), reference=_one_line(reference),
                               candidate=_one_line(candidate))


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def parse_verdict(text: str) -> bool | None:
    """True/False from a reply with exactly one verdict value (repeated equal verdicts allowed), else None."""
    values = set(_VERDICT.findall(text or ""))
    return (values.pop() == "1") if len(values) == 1 else None


class AnswerJudge:
    """Batched judging through a chat client (role ``judge``: ``toy:judge`` or e.g. ``openai:gpt-5-mini``)."""

    def __init__(self, client: ChatClient, sampling: SamplingParams | None = None):
        self.client = client
        self.sampling = sampling or SamplingParams()

    @property
    def identity(self) -> str:
        return str(self.client.spec)

    def judge(self, triples: Sequence[tuple[str, Any, Any]], *, progress: bool = False) -> list[Verdict]:
        """Verdicts for (question, ground truth, prediction) triples, in order."""
        if not triples:
            return []
        requests = [ChatRequest((user(judge_prompt(*t)),), self.sampling) for t in triples]
        verdicts = []
        for result in self.client.map(requests, desc="judge", progress=progress):
            if not result.ok:
                verdicts.append(Verdict(None, None, f"judge call failed: {result.error_type}: {result.error}"))
                continue
            decision = parse_verdict(result.output)
            error = None if decision is not None else "judge reply has no single <verdict>0|1</verdict>"
            verdicts.append(Verdict(decision, result.output, error))
        return verdicts
