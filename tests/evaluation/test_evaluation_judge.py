"""The GQA judge: prompt and verdict format, the toy synonym judge, and judging inside the runner."""

import pytest
from eval_helpers import fake_detect

from valor_lib.clients import ChatClient, ChatRequest, register_toy_brain, unregister_toy_brain, user
from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.judge import AnswerJudge, judge_prompt, parse_verdict
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.evaluation.toy_judge import ToyJudge, canonical_answer


@pytest.mark.parametrize("text, verdict", [
    ("<verdict>1</verdict>", True), ("<verdict> 0 </verdict>", False), ("Reasoning...\n<VERDICT>1</VERDICT>", True),
    ("<verdict>1</verdict><verdict>1</verdict>", True), ("<verdict>1</verdict><verdict>0</verdict>", None),
    ("1", None), ("<verdict>yes</verdict>", None), ("", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize("a, b, same", [
    ("couch", "sofa", True), ("Sofa.", "sofa", True), ("the couches", "sofas", True), ("violet", "purple", True),
    ("dark crate", "black box", True), ("three", "3", True), ("True", "yes", True), ("chair", "table", False),
    ("red", "orange", False), ("2", "3", False),
])
def test_toy_judge_canonical_forms(a, b, same):
    assert (canonical_answer(a) == canonical_answer(b)) is same


def _ask(brain, question, reference, candidate):
    return brain(ChatRequest((user(judge_prompt(question, reference, candidate)),)))


def test_toy_judge_reads_only_the_prompt_and_answers_in_format():
    brain = ToyJudge()
    assert _ask(brain, "What is on the left?", "sofa", "a couch") == "<verdict>1</verdict>"
    assert _ask(brain, "What color is the box?", "purple", "red") == "<verdict>0</verdict>"
    assert _ask(brain, "What color is the box?", "purple", "") == "<verdict>0</verdict>"
    assert parse_verdict(brain(ChatRequest((user("no structure here"),)))) is None


def test_judge_through_the_toy_client():
    judge = AnswerJudge(ChatClient("toy:judge", role="judge"))
    verdicts = judge.judge([("Q?", "sofa", "couch"), ("Q?", "sofa", "chair")])
    assert [v.equivalent for v in verdicts] == [True, False] and all(v.error is None for v in verdicts)


class SynonymWriter:
    """Answers GQA colour questions with a synonym or the plain colour, others with "yes"."""

    def write(self, questions, n=1, seed=None):
        out = []
        for q in questions:
            answer = "violet" if q.startswith("What color") else "yes"
            out.append([f"<plan>p</plan><answer>final_answer = {answer!r}</answer>"])
        return out


@pytest.fixture
def broken_judge_role():
    register_toy_brain("judge-broken", lambda **_: type("B", (), {"name": "broken", "__call__":
                                                                   lambda self, r: "I think they match."})())
    yield "toy:judge-broken"
    unregister_toy_brain("judge-broken")


def test_runner_judges_gqa_and_records_judge_failures(toy_source, tmp_path, broken_judge_role):
    items = load("gqa", toy_source)
    solver = ProgramSolver(SynonymWriter(), {"gd_detect": fake_detect}, identity={"writer": "synonyms"})
    judge = AnswerJudge(ChatClient("toy:judge", role="judge"))
    run = evaluate(solver, items, "gqa", judge=judge, cache_root=tmp_path, progress=False)
    for item, record in zip(items, run.records, strict=True):
        exact = record["prediction"] == item.answer
        if exact:  # exact matches need no judge
            assert record["judge"] is None and record["score_strict"] == record["score_paper"] == 1
        else:
            assert record["judge"]["verdict"] == (item.answer == "purple")
            assert record["score_strict"] == record["score_paper"] == float(item.answer == "purple")
    assert run.summary["judge"]["failed"] == 0 and run.summary["judge"]["asked"] > 0
    broken = evaluate(solver, items, "gqa", judge=AnswerJudge(ChatClient(broken_judge_role, role="judge")),
                      cache_root=tmp_path, progress=False)
    assert broken.key != run.key
    failed = [r for r in broken.records if r["judge"]]
    assert failed and all(r["judge"]["verdict"] is None and "verdict" in r["judge"]["error"] for r in failed)
    assert all(r["score_strict"] == 0 for r in failed)
    assert broken.summary["judge"]["failed"] == len(failed)
