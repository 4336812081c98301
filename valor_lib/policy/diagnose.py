"""What a toy policy writes, named by the template programmer's variants: correct, one of its flaws, or other.

A response is compared, whitespace-insensitively, with the programs the template programmer writes for the same
question (the correct one and one per applicable flaw, :mod:`valor_lib.policy.template_programmer`). It is read
from the question text and the response only (no scene, no answer), so the same breakdown serves rollouts and
held-out predictions:

    kind = response_kind(question, response)      # "correct", "logic_slip", ..., "other"
    table = kind_shares({"base": base_records, "GRPO": grpo_records})

Kinds: a variant's name when plan and program both match it; ``other`` when neither matches a variant (a wrong
noun, a garbled step, a program that breaks); ``unknown question`` when the question is not a toy-world query.
The flaws are the reasoning mistakes the verifier reward penalises; ``other`` is mostly failed copying.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from valor_lib.policy.template_programmer import applicable_flaws, write_program
from valor_lib.toyworld.queries import parse_query

CORRECT, OTHER, UNKNOWN = "correct", "other", "unknown question"


def _normal(text: str) -> str:
    return " ".join(text.split())


def response_kind(question: str, response: str | None) -> str:
    """The template variant ``response`` is (see the module docstring)."""
    spec = parse_query(question)
    if spec is None:
        return UNKNOWN
    written = _normal(response or "")
    for flaw in (None, *applicable_flaws(spec)):
        if _normal(write_program(question, flaw).text) == written:
            return flaw or CORRECT
    return OTHER


def kind_counts(records: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many records (with ``question`` and ``response``) are of each kind."""
    return Counter(response_kind(r["question"], r.get("response")) for r in records)


def kind_shares(groups: Mapping[str, Iterable[Mapping[str, Any]]]) -> pd.DataFrame:
    """Share (percent) of each kind per group of records: one row per group, kinds as columns (most common
    first, ``other`` and ``unknown question`` last)."""
    counts = {name: kind_counts(records) for name, records in groups.items()}
    total: Counter[str] = sum(counts.values(), Counter())
    last = [k for k in (OTHER, UNKNOWN) if k in total]
    columns = [k for k, _ in total.most_common() if k not in last] + last
    rows = {name: {k: round(100 * c[k] / max(1, sum(c.values())), 1) for k in columns} for name, c in counts.items()}
    return pd.DataFrame(rows).T.reindex(columns=columns)
