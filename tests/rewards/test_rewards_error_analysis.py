"""The error-analysis pipeline: policy outputs, oracle annotations on toy scenes, verdicts of several verifiers."""

import numpy as np
import pytest

from valor_lib import params
from valor_lib.rewards.agreement import agreement_table
from valor_lib.rewards.config import RewardModelParams, VerifierErrorAnalysisParams
from valor_lib.rewards.error_analysis import (
    oracle_annotations,
    outputs_to_label,
    rollout_outputs,
    verifier_verdicts,
)


def _rollouts(rl_records):
    """Two responses per query from the template programmer (correct or flawed) and one without tags."""
    from valor_lib.policy.template_programmer import TemplateProgrammer

    rng, programmer = np.random.default_rng(0), TemplateProgrammer(flaw_rate=0.5)
    texts = lambda q: [programmer.sample(q, rng).text, programmer.sample(q, rng).text, "no tags at all"]  # noqa: E731
    return [{"output_id": f"{r['id']}#{j}", "query": r["question"], "image": r["image"], "response": t}
            for r in rl_records for j, t in enumerate(texts(r["question"]))]


@pytest.fixture
def rl_records(small_world, small_world_sizes, tmp_path):
    from valor_lib.evaluation.benchmarks import Source
    from valor_lib.querygen import omni3d_rl_queries

    source = Source(root=small_world / "benchmarks", omni3d_eval_rows=small_world_sizes["eval_items"])
    return omni3d_rl_queries(source, 12, tmp_path / "images")


def _section(name, model):
    values = params.resolve(name, profile="toy")
    return model.model_validate({k: v for k, v in values.items() if k in model.model_fields})


def test_params_sections_validate():
    analysis = _section("verifier_error_analysis", VerifierErrorAnalysisParams)
    assert analysis.verifiers[0].name == "rules-only" and analysis.labels == "oracle"
    reward = _section("reward_model", RewardModelParams)
    scorer = reward.scorer.build("toy:verifier", **reward.verifier_options)
    assert scorer.failure_policy == "drop" and scorer.client.limiter.max_concurrency >= 64
    scorer.close()
    full = params.resolve("verifier_error_analysis", profile="full")
    assert full["labels"] == "file" and full["verifiers"][0]["spec"] == "gemini:gemini-2.5-flash"


def test_outputs_annotations_and_verdicts(rl_records):
    outputs = rollout_outputs(_rollouts(rl_records), seed=0)
    assert len(outputs) == 24 and all(o["output_id"].startswith("omni3d-bench/") for o in outputs)
    annotations, evidence = oracle_annotations(outputs, 6)
    assert len(annotations) == len(evidence) == 6 and annotations["format"].eq(1).all()
    assert set(evidence[0].correct) >= {"original", "mirror", "depth-reversed"}
    unlabelled = outputs_to_label(outputs, 4)
    assert unlabelled["logic"].isna().all() and unlabelled["syntax"].notna().all()
    analysis = _section("verifier_error_analysis", VerifierErrorAnalysisParams)
    verdicts = verifier_verdicts(annotations, analysis.verifiers[:2], analysis.scorer, progress=False)
    table = agreement_table(annotations, verdicts)
    assert list(table.index) == ["rules-only", "toy 10% errors"] and table["failed"].eq(0).all()
