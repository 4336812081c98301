"""Baselines through a local server speaking the OpenAI protocol: direct-answer VLMs (plain and grounded) and
an "LLM with tools" writing programs with the policy's prompt."""

import numpy as np
import pytest
from eval_helpers import fake_detect

from valor_lib.clients import ChatClient, RetryPolicy
from valor_lib.evaluation.baselines import DirectAnswerSolver, extract_answer, extract_boxes
from valor_lib.evaluation.benchmarks import load
from valor_lib.evaluation.runner import evaluate
from valor_lib.evaluation.solvers import ProgramSolver
from valor_lib.evaluation.systems import writer_identity
from valor_lib.policy.generate import ProgramWriter
from valor_lib.policy.template_programmer import TemplateProgrammer
from valor_lib.testing import FaultPlan, ModelServer
from valor_lib.toyworld.queries import parse_query


@pytest.mark.parametrize("text, answer", [
    ("The chair is on the left.\nAnswer: yes", "yes"),
    ("Answer: 3\nWait, let me recount.\nFinal answer: **4**.", "4"),
    ("<think>Answer: no</think>It is the table.\nAnswer: table", "table"),
    ("So the result is \\boxed{2.5}", "2.5"),
    ("Yes.", "Yes"),
    ("A long explanation\nthat never states the answer.", None),
    ("Answer:", None),
    ("", None),
    (None, None),
])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_extract_boxes():
    text = 'ok <boxes>[{"label": "chair", "box": [10, 5, 30, 25]}, {"label": "x", "box": [1, 2]},' \
           ' {"label": "lamp", "box": [300, 0, 250, 40]}]</boxes> Answer: 1'
    boxes, problem = extract_boxes(text, (256, 192))
    assert boxes == [{"label": "chair", "box": [10.0, 5.0, 30.0, 25.0]}, {"label": "lamp", "box": [250.0, 0.0, 256.0, 40.0]}]
    assert problem == "1 malformed or empty boxes dropped"
    assert extract_boxes("Answer: 2", (10, 10)) == ([], "no <boxes> block")
    assert extract_boxes("<boxes>{nope</boxes>", (10, 10))[1].startswith("<boxes> is not JSON")


def scripted_vlm(request):
    """Answers toy yes/no questions with "yes" and counting questions with 2; sees one image per request."""
    message = request.messages[-1]
    assert len(message.images) == 1
    question = next(line for line in message.text.splitlines() if line.startswith("Question: "))[10:]
    spec = parse_query(question)
    answer = "2" if spec and spec.family == "count" else "yes"
    boxes = '<boxes>[{"label": "thing", "box": [1, 1, 20, 20]}]</boxes>\n' if "<boxes>" in message.text else ""
    return f"{boxes}Looking at the image.\nAnswer: {answer}"


@pytest.fixture
def openai_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-FAKEKEY-evaluation")


@pytest.mark.parametrize("grounded", [False, True])
def test_direct_vlm_through_the_openai_protocol(toy_source, tmp_path, openai_env, grounded):
    items = load("vsr", toy_source)
    with ModelServer(scripted_vlm) as server:
        client = ChatClient("openai:gpt-5-mini", base_url=server.openai_base_url, api="chat",
                            cache_path=tmp_path / "responses.sqlite")
        run = evaluate(DirectAnswerSolver(client, grounded=grounded), items, "vsr", cache_root=tmp_path / "p",
                       progress=False)
        requests = len(server.received)
    assert requests == len(items)
    for item, record in zip(items, run.records, strict=True):
        assert record["prediction"] == "yes" and record["error_type"] is None and record["format_ok"]
        assert record["score_strict"] == float(item.answer == "yes")
        assert (record["boxes"] == [{"label": "thing", "box": [1.0, 1.0, 20.0, 20.0]}]) is grounded
    assert run.summary["accuracy_strict"] == pytest.approx(100 * sum(i.answer == "yes" for i in items) / len(items))


def test_direct_vlm_failures_are_recorded(toy_source, tmp_path, openai_env):
    items = load("countbenchqa", toy_source)
    with ModelServer(scripted_vlm, faults=FaultPlan(rate=0.5, kinds=("blocked",), seed=3)) as server:
        client = ChatClient("openai:gpt-5-mini", base_url=server.openai_base_url, api="chat",
                            cache_path=tmp_path / "responses.sqlite",
                            retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02))
        run = evaluate(DirectAnswerSolver(client), items, "countbenchqa", cache_root=tmp_path / "p", progress=False)
    kinds = {r["error_type"] for r in run.records}
    assert kinds == {None, "request"}
    assert all(r["score_strict"] == 0 and r["error"] for r in run.records if r["error_type"] == "request")
    assert all(r["prediction"] == "2" for r in run.records if r["error_type"] is None)


def llm_programmer(request):
    """An "LLM with tools" behind the OpenAI protocol: reads the policy prompt and answers with a correct
    template program for the question."""
    assert request.messages[0].role == "system" and "gd_detect" in request.messages[0].text
    question = request.messages[-1].text.removeprefix("Question: ")
    return TemplateProgrammer(flaw_rate=0.0).sample(question, np.random.default_rng(0)).text


def test_llm_with_tools_is_a_program_writer_over_an_api(toy_source, tmp_path, openai_env):
    items = load("countbenchqa", toy_source)
    with ModelServer(llm_programmer) as server:
        writer = ProgramWriter("openai:gpt-5-mini", {"temperature": 0.7}, base_url=server.openai_base_url,
                               api="chat", cache_path=tmp_path / "responses.sqlite")
        solver = ProgramSolver(writer, {"gd_detect": fake_detect}, identity=writer_identity(writer, "openai:gpt-5-mini"))
        run = evaluate(solver, items, "countbenchqa", cache_root=tmp_path / "p", progress=False)
    assert all(r["format_ok"] and r["error_type"] is None for r in run.records)
    assert all(r["tool_calls"][0]["name"] == "gd_detect" for r in run.records)
    assert run.summary["provenance"]["solver"]["policy"]["model"] == "gpt-5-mini"
