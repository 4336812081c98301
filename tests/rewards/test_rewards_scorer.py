"""The reward heads end to end: the toy verifier on hand-written programs, scripted Gemini-protocol servers for
unparsable verdicts and failures, the failure policies, de-duplication, and adversarial programs."""

from __future__ import annotations

import time

import pytest
from reward_cases import BAD_FORMAT, DEVIATING, GOOD, NO_SPATIAL, PIXEL_SIZE, QUERY, TOOL_API

from valor_lib.rewards import HEADS, WEIGHTS, RewardScorer, combine, compute_reward, head_means
from valor_lib.rewards.prompts import format_verdict, read_prompt
from valor_lib.testing import FaultPlan


def test_weights_are_the_papers():
    assert WEIGHTS == {"logic": 0.3, "syntax": 0.1, "attribute": 0.2, "spatial": 0.2, "adherence": 0.2}
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_combine_is_format_times_weighted_sum():
    ok = dict.fromkeys(HEADS, "ok")
    heads = {"format": 1.0, "syntax": 1.0, "logic": 0.0, "attribute": 1.0, "spatial": 1.0, "adherence": 0.0}
    assert combine(heads, ok, "drop") == pytest.approx(0.5)
    assert combine({**heads, "format": 0.0}, ok, "drop") == 0.0
    failed = {**ok, "logic": "failed"}
    assert combine({**heads, "logic": None}, failed, "drop") is None
    assert combine({**heads, "logic": None}, failed, "zero") == pytest.approx(0.5)


@pytest.mark.parametrize(("response", "expected"), [
    (GOOD, {"format": 1, "syntax": 1, "logic": 1, "attribute": 1, "spatial": 1, "adherence": 1}),
    (NO_SPATIAL, {"format": 1, "syntax": 1, "logic": 0, "attribute": 1, "spatial": 0, "adherence": 1}),
    (PIXEL_SIZE, {"format": 1, "syntax": 1, "logic": 0, "attribute": 0, "spatial": 1, "adherence": 1}),
    (DEVIATING, {"format": 1, "syntax": 1, "logic": 1, "attribute": 1, "spatial": 1, "adherence": 0}),
], ids=["good", "missing-spatial", "2d-size", "code-deviates"])
def test_each_head_on_hand_written_programs(toy_scorer, response, expected):
    result = toy_scorer.score(QUERY, response)
    assert result.heads == {h: float(v) for h, v in expected.items()}
    assert result.total == pytest.approx(sum(WEIGHTS[h] * expected[h] for h in WEIGHTS))
    assert all(call.texts and call.texts[-1].endswith(("VERDICT: PASS", "VERDICT: FAIL"))
               for call in result.verifier.values())


def test_bad_format_gates_everything_and_skips_the_verifier(toy_scorer):
    result = toy_scorer.score(QUERY, BAD_FORMAT)
    assert result.total == 0.0 and result.heads["format"] == 0.0
    assert {h for h, s in result.status.items() if s == "skipped"} == set(HEADS) - {"format"}
    assert toy_scorer.last_stats.verifier_requests == 0 and result.verifier == {}


def test_compute_reward_with_a_spec_string():
    result = compute_reward(QUERY, GOOD, verifier="toy:verifier", tool_api=TOOL_API,
                            brain_options={"error_rate": 0.0})
    assert result.total == pytest.approx(1.0)
    with pytest.raises(ValueError, match="exactly the keys"):
        RewardScorer("toy:verifier", tool_api=TOOL_API, weights={"logic": 1.0})


def test_a_batch_is_deduplicated(toy_scorer):
    queries = [QUERY] * 6
    responses = [GOOD, GOOD, GOOD, PIXEL_SIZE, DEVIATING, BAD_FORMAT]
    results = toy_scorer.score_batch(queries, responses, progress=False)
    stats = toy_scorer.last_stats
    # plans: GOOD_PLAN and PIXEL_PLAN (3 plan heads each); adherence pairs: 3; programs: GOOD and pixel code
    assert stats.verifier_jobs == 3 + 3 + 3 and stats.programs == 2 and stats.format_failures == 1
    assert [r.total for r in results[:3]] == [1.0, 1.0, 1.0]
    assert head_means(results)["format"] == pytest.approx(5 / 6)


def _scripted(replies_by_head):
    """A server brain answering each head from its own list of replies (the last one repeats)."""
    seen: dict[str, int] = {}

    def brain(request):
        head = read_prompt(request.messages[-1].text).head
        replies = replies_by_head.get(head, [format_verdict(True, "Looks right.")])
        n = seen.get(head, 0)
        seen[head] = n + 1
        return replies[min(n, len(replies) - 1)]

    brain.name = "scripted"
    return brain


def test_unparsable_verdict_is_asked_again(gemini_client):
    client, server = gemini_client(_scripted({"logic": ["I think it is fine.", format_verdict(False, "No.")]}))
    scorer = RewardScorer(client, tool_api=TOOL_API)
    result = scorer.score(QUERY, GOOD)
    call = result.verifier["logic"]
    assert call.verdict is False and call.attempts == 2 and call.texts[0] == "I think it is fine."
    assert result.heads["logic"] == 0.0 and result.status["logic"] == "ok"
    assert scorer.last_stats.verifier_requests == 5
    assert sum("the LOGIC" in r.request.messages[-1].text for r in server.answered()) == 2


@pytest.mark.parametrize("policy", ["drop", "zero"])
def test_a_verdict_that_never_parses_fails_the_head(gemini_client, policy):
    client, _ = gemini_client(_scripted({"spatial": ["VERDICT: PASS\nVERDICT: FAIL"]}))
    scorer = RewardScorer(client, tool_api=TOOL_API, failure_policy=policy, verdict_attempts=3)
    result = scorer.score(QUERY, GOOD)
    assert result.heads["spatial"] is None and result.failed_heads == ["spatial"]
    assert result.verifier["spatial"].attempts == 3 and "unparsable" in result.verifier["spatial"].error
    if policy == "drop":
        assert result.total is None and result.dropped
    else:
        assert result.total == pytest.approx(0.8)


def test_a_call_that_keeps_failing_is_recorded_not_zeroed(gemini_client):
    client, _ = gemini_client(_scripted({}), faults=FaultPlan(rate=1.0, kinds=("500",), max_per_request=99))
    scorer = RewardScorer(client, tool_api=TOOL_API)
    result = scorer.score(QUERY, GOOD)
    assert set(result.failed_heads) == {"logic", "attribute", "spatial", "adherence"}
    assert all(result.heads[h] is None for h in result.failed_heads)
    assert result.total is None and "server" in result.verifier["logic"].error
    assert result.heads["syntax"] == 1.0


def test_transient_faults_are_retried_by_the_client(gemini_client):
    client, _ = gemini_client(_scripted({}), faults=FaultPlan(rate=0.5, kinds=("429", "503"), max_per_request=1))
    result = RewardScorer(client, tool_api=TOOL_API).score(QUERY, GOOD)
    assert result.total == pytest.approx(1.0) and not result.failed_heads


ADVERSARIAL = {
    "writes-a-file": "open('/tmp/valor_reward_probe', 'w').write('x')\nfinal_answer = 1",
    "loops-forever": "while True:\n    pass\nfinal_answer = 1",
    "no-answer": "x = gd_detect(image, 'chair')",
    "raises": "final_answer = 1 / 0",
}


def test_adversarial_programs_get_syntax_zero_without_stalling_the_batch(toy_scorer):
    toy_scorer.syntax_timeout_s = 1.0
    responses = [f"<plan>\n1. Detect the chair.\n2. Answer.\n</plan>\n<answer>\n{code}\n</answer>"
                 for code in ADVERSARIAL.values()] + [GOOD] * 3
    started = time.monotonic()
    results = toy_scorer.score_batch([QUERY] * len(responses), responses, progress=False)
    elapsed = time.monotonic() - started
    assert [r.heads["syntax"] for r in results] == [0.0] * len(ADVERSARIAL) + [1.0] * 3
    errors = dict(zip(ADVERSARIAL, (r.syntax_error for r in results), strict=False))
    assert errors == {"writes-a-file": "forbidden", "loops-forever": "timeout", "no-answer": "no_answer",
                      "raises": "runtime"}
    assert elapsed < 1.0 + 3.0  # the endless loop costs its timeout, not more


def test_bad_inputs_are_rejected(toy_scorer):
    with pytest.raises(ValueError, match="queries for"):
        toy_scorer.score_batch([QUERY], [GOOD, GOOD])
    with pytest.raises(TypeError, match="strings"):
        toy_scorer.score_batch([QUERY], [None])
    with pytest.raises(ValueError, match="failure_policy"):
        RewardScorer("toy:verifier", failure_policy="ignore")
