"""The verifier error analysis (paper §3.1): policy outputs to annotate, their labels, and every verifier's
verdicts on them.

Outputs are the base-policy rollouts scored by the reward_model stage; only responses that pass the format gate
are annotated (the verifiers never see the others). Labels come from a hand-labelled CSV (:mod:`.annotations`) or, in the toy
world, from program semantics checked against the scenes (:mod:`.toy_annotator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from valor_lib.programs import execute_many, parse_response
from valor_lib.rewards.agreement import verdict_frame
from valor_lib.rewards.annotations import annotation_frame, response_text
from valor_lib.rewards.config import ScorerParams, VerifierEntry
from valor_lib.rewards.toy_annotator import OracleLabels, oracle_labels, toy_camera, toy_scene_of


def rollout_outputs(rollouts: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Policy rollouts (records with ``output_id, query, image, response``) that pass the format gate, in a
    seeded random order: ``output_id, query, image, plan, code``."""
    outputs = []
    for record in rollouts:
        parsed = parse_response(record["response"])
        if parsed.format_ok:
            outputs.append({"output_id": record["output_id"], "query": record["query"], "image": record["image"],
                            "plan": parsed.plan, "code": parsed.code})
    order = np.random.default_rng(seed).permutation(len(outputs))
    return [outputs[i] for i in order]


def oracle_annotations(outputs: Sequence[dict[str, Any]], count: int) -> tuple[pd.DataFrame, list[OracleLabels]]:
    """The first ``count`` outputs the toy annotator can label (a toy scene and a well-posed query), labelled
    (in chunks, so only about ``count`` outputs are run)."""
    camera = toy_camera()
    usable = [(o, scene) for o in outputs if (scene := toy_scene_of(o["image"])) is not None]
    chosen: list[tuple[dict[str, Any], OracleLabels]] = []
    start = 0
    while len(chosen) < count and start < len(usable):
        chunk = usable[start:start + max(count - len(chosen), 8) * 5 // 4]
        start += len(chunk)
        labels = oracle_labels([(o["query"], response_text(o["plan"], o["code"]), scene) for o, scene in chunk],
                               camera)
        chosen += [(o, lab) for (o, _), lab in zip(chunk, labels, strict=True) if lab is not None]
    chosen = chosen[:count]
    frame = annotation_frame([{**o, **lab.labels} for o, lab in chosen])
    return frame, [lab for _, lab in chosen]


def outputs_to_label(outputs: Sequence[dict[str, Any]], count: int, timeout_s: float = 5.0) -> pd.DataFrame:
    """The first ``count`` outputs as an annotation table with the interpreter heads filled in."""
    chosen = list(outputs[:count])
    runs = execute_many([o["code"] for o in chosen], None, timeout_s)
    return annotation_frame([{**o, "format": 1, "syntax": int(run.ok)} for o, run in zip(chosen, runs, strict=True)])


def verifier_verdicts(annotations: pd.DataFrame, verifiers: Sequence[VerifierEntry], scorer: ScorerParams,
                      progress: bool = True) -> dict[str, pd.DataFrame]:
    """Each verifier's verdicts on the annotated outputs (one batch per verifier)."""
    queries = annotations["query"].tolist()
    responses = [response_text(plan, code) for plan, code in zip(annotations["plan"], annotations["code"], strict=True)]
    verdicts = {}
    for entry in verifiers:
        model = scorer.build(entry.spec, **entry.client_options)
        try:
            results = model.score_batch(queries, responses, progress=progress)
        finally:
            model.close()
        verdicts[entry.name] = verdict_frame(annotations["output_id"].tolist(), results)
    return verdicts
