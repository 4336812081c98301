"""The three toy models pretrained side by side, each into its own folder."""

from __future__ import annotations

import json

import pytest

from valor_lib.toyworld.config import ToyDetectorParams, ToyPolicyParams, ToyVlmVerifierParams, ToyWorldParams
from valor_lib.toyworld.models import (
    TOY_MODELS,
    detector_seed,
    model_params,
    pretrain_toy_model,
    pretrain_toy_models,
    pretraining_questions,
)


def test_pretraining_questions_are_read_in_order(tmp_path):
    rows = [{"question": "How many chairs?"}, {"question": "Is the ball left of the box?"}]
    (tmp_path / "pretrain_queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    assert pretraining_questions(tmp_path) == ["How many chairs?", "Is the ball left of the box?"]


def test_an_unknown_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown toy model 'detector'"):
        pretrain_toy_model("detector", ToyWorldParams.model_construct(), tmp_path, seed=0)


def test_each_model_reads_its_own_section_of_the_world_params():
    world = ToyWorldParams.model_construct(detector=ToyDetectorParams(threads=1), policy=ToyPolicyParams(threads=2),
                                           vlm_verifier=ToyVlmVerifierParams(threads=3))
    assert [model_params(world, name).threads for name in TOY_MODELS] == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown toy model 'policy'"):
        model_params(world, "policy")


def test_the_detector_draws_with_its_own_seed_where_set(tmp_path, monkeypatch, small_world_sizes):
    import valor_lib.detection.toy as toy

    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))  # no committed asset: pretrained here
    seen = []
    monkeypatch.setattr(toy, "pretrain_toy_detector", lambda params, out, seed, progress: seen.append(seed))
    world = ToyWorldParams(**small_world_sizes, detector=ToyDetectorParams())
    assert detector_seed(world, 7) == 7
    pretrain_toy_model("detector-base", world, tmp_path, seed=7, progress=False)
    drawn = ToyWorldParams(**small_world_sizes, detector=ToyDetectorParams(seed=2))
    assert detector_seed(drawn, 7) == 2
    pretrain_toy_model("detector-base", drawn, tmp_path, seed=7, progress=False)
    assert seen == [7, 2]


def test_a_multi_threaded_model_trains_after_the_others_alone(tmp_path, monkeypatch, small_world_sizes):
    import valor_lib.toyworld.models as models

    batches = []

    def run_jobs(fn, jobs, workers):
        batches.append((sorted(jobs), workers))
        return {name: f"{name} report" for name in jobs}

    monkeypatch.setattr(models, "run_jobs", run_jobs)
    params = ToyWorldParams(**small_world_sizes, pretrain_workers=2, policy=ToyPolicyParams(threads=2))
    reports = pretrain_toy_models(params, tmp_path, seed=0, progress=False)
    assert list(reports) == list(TOY_MODELS) and reports["policy-base"] == "policy-base report"
    assert batches == [(["detector-base", "vlm-verifier"], 2), (["policy-base"], 1)]


@pytest.mark.slow
def test_the_models_train_side_by_side_into_loadable_folders(small_world, small_world_sizes):
    from valor_lib.detection.inference import GroundingDinoDetector
    from valor_lib.grounding.toy_classifier import CropClassifier
    from valor_lib.policy.generate import ProgramWriter

    params = ToyWorldParams(**small_world_sizes, pretrain_workers=2,
                            detector=ToyDetectorParams(holdout_images=1, epochs=1, batch_size=2, d_model=32,
                                                       num_queries=5, threads=1),
                            vlm_verifier=ToyVlmVerifierParams(crops_per_object=1, epochs=1, batch_size=32, threads=1),
                            policy=ToyPolicyParams(vocab_size=300, hidden_size=32, intermediate_size=64, layers=1,
                                                   heads=2, kv_heads=1, head_dim=16, epochs=1, batch_size=16,
                                                   threads=1))
    reports = pretrain_toy_models(params, small_world, seed=0, progress=False)
    assert set(reports) == set(TOY_MODELS)
    assert reports["detector-base"].steps >= 1 and reports["detector-base"].history
    assert reports["policy-base"]["programs"] == small_world_sizes["pretrain_queries"]
    assert reports["vlm-verifier"]["train_crops"] > 0
    GroundingDinoDetector.from_pretrained(small_world / "models" / "detector-base", device="cpu")
    CropClassifier.load(small_world / "models" / "vlm-verifier")
    writer = ProgramWriter(f"hf:{small_world / 'models' / 'policy-base'}", {"max_tokens": 8})
    assert len(writer.write(["How many chairs are there?"], seed=0)[0]) == 1
    writer.close()
