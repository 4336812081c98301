"""Noun phrases <-> GroundingDINO captions, and where each phrase's tokens sit in the tokenized caption.

A program asks for ``"red chair, table"``; GroundingDINO reads the caption ``"red chair . table ."`` in which
[CLS], [SEP], "." and "?" separate phrases. The model scores every text token, so a phrase's tokens (its span)
are what both the label filter at inference and the label maps in training refer to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Token ids GroundingDINO treats as phrase boundaries ([CLS], [SEP], ".", "?"), plus [PAD].
DELIMITER_IDS = frozenset({101, 102, 1012, 1029})
PAD_ID = 0
_SEPARATORS = re.compile(r"[.?;\n]")


def normalize_phrase(text: str) -> str:
    """Lower case, caption delimiters removed, whitespace collapsed: ``" Red  Chair."`` -> ``"red chair"``."""
    return " ".join(_SEPARATORS.sub(" ", text).lower().split())


def split_prompt(prompt: str) -> list[str]:
    """The distinct noun phrases of a comma-separated detector prompt, normalised, in order."""
    if not isinstance(prompt, str):
        raise TypeError(f"a detector prompt must be a string, got {type(prompt).__name__}")
    phrases = [normalize_phrase(part) for part in prompt.split(",")]
    return list(dict.fromkeys(p for p in phrases if p))


def caption_from_phrases(phrases: Sequence[str]) -> str:
    """GroundingDINO's caption format: ``["red chair", "table"]`` -> ``"red chair . table ."``."""
    if not phrases:
        raise ValueError("a caption needs at least one phrase")
    return " . ".join(phrases) + " ."


def phrase_spans(input_ids: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` token positions of each phrase in a tokenized caption, in caption order."""
    spans: list[tuple[int, int]] = []
    start = None
    for pos, token in enumerate(input_ids):
        token = int(token)
        if token in DELIMITER_IDS or token == PAD_ID:
            if start is not None:
                spans.append((start, pos))
                start = None
        elif start is None:
            start = pos
    if start is not None:
        spans.append((start, len(input_ids)))
    return spans


def chunk_phrases(phrases: Sequence[str], token_counts: Sequence[int], max_tokens: int) -> list[list[str]]:
    """Split phrases into groups whose captions fit ``max_tokens`` ([CLS], [SEP] and one "." per phrase
    included), keeping order. A phrase too long on its own is an error."""
    groups: list[list[str]] = []
    current: list[str] = []
    used = 2
    for phrase, count in zip(phrases, token_counts, strict=True):
        need = count + 1
        if need + 2 > max_tokens:
            raise ValueError(f"phrase {phrase!r} has {count} tokens, more than a caption of {max_tokens} can hold")
        if current and used + need > max_tokens:
            groups.append(current)
            current, used = [], 2
        current.append(phrase)
        used += need
    if current:
        groups.append(current)
    return groups
