"""Programs calling parent-side tools over IPC: call convention, errors, timeouts, concurrency, bad arguments."""

import math
import threading
import time

import numpy as np
import pytest

from valor_lib.programs import SandboxLimits, execute, execute_many


class DegenerateBoxError(ValueError):
    """What a real depth tool might raise for a zero-area box."""


class Scene:
    """A caller-side image object of any kind; the sandbox only needs its size."""

    def __init__(self, name: str, width: int = 64, height: int = 48):
        self.name, self.width, self.height = name, width, height


class FakeTools:
    """Parent-side tools that record how they are called (real tools are models held by the parent)."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.calls: list[tuple] = []
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()

    def _enter(self, *record):
        with self._guard:
            self.calls.append(record)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay_s)
        with self._guard:
            self.active -= 1

    def gd_detect(self, image, prompt):
        self._enter("gd_detect", image, prompt)
        return [
            {"bbox": np.array([1.0, 2.0, 30.0, 40.0]), "label": p.strip(), "score": np.float32(0.9)}
            for p in prompt.split(",")
        ]

    def depth(self, image, bbox):
        self._enter("depth", image, bbox)
        if len(bbox) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in bbox):
            raise ValueError(f"bbox must be 4 finite numbers, got {bbox!r}")
        if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
            raise DegenerateBoxError("bbox has zero area")
        return np.float64(2.5)

    def vqa(self, image, bbox, question):
        self._enter("vqa", image, bbox, question)
        return "red"

    def mapping(self):
        return {"gd_detect": self.gd_detect, "depth": self.depth, "vqa": self.vqa}


PROGRAM = """
cups = gd_detect(image, "cup, plate")
d = depth(image, cups[0]["bbox"])
final_answer = [len(cups), d, vqa(image, None, "colour?"), cups[1]["score"]]
"""


def test_tools_run_in_the_parent_with_the_callers_image():
    tools = FakeTools()
    image = Scene("kitchen", 320, 240)  # whatever the caller passes reaches the tools unchanged
    result = execute(PROGRAM, tools=tools.mapping(), image=image, timeout_s=5)
    assert result.ok, result
    assert result.answer[:3] == [2, 2.5, "red"] and abs(result.answer[3] - 0.9) < 1e-6
    assert [c[0] for c in tools.calls] == ["gd_detect", "depth", "vqa"]
    assert all(c[1] is image for c in tools.calls)
    assert tools.calls[0][2] == "cup, plate" and tools.calls[1][2] == [1.0, 2.0, 30.0, 40.0]
    assert [c["name"] for c in result.tool_calls] == ["gd_detect", "depth", "vqa"]
    assert result.tool_calls[0]["args"] == "image, 'cup, plate'" and all(c["ok"] for c in result.tool_calls)


def test_tool_exceptions_become_runtime_errors_with_type_and_message():
    tools = FakeTools().mapping()
    failed = execute("final_answer = depth(image, [5, 5, 5, 9])", tools=tools)
    assert failed.error_type == "runtime"
    assert "DegenerateBoxError: bbox has zero area" in failed.error and "(line 1)" in failed.error
    assert failed.tool_calls[0]["ok"] is False and "DegenerateBoxError" in failed.tool_calls[0]["error"]
    caught = execute(
        "try:\n    final_answer = depth(image, [5, 5, 5, 9])\nexcept ValueError as e:\n    final_answer = str(e)",
        tools=tools,
    )
    assert caught.ok and caught.answer == "bbox has zero area (in depth)"


def test_tool_results_must_be_plain_data():
    result = execute("final_answer = bad(image)", tools={"bad": lambda image: object()})
    assert result.error_type == "runtime" and "unsupported data" in result.error
    huge = execute("final_answer = big(image)", tools={"big": lambda image: ["x" * 1000] * 2000})
    assert huge.error_type == "runtime" and "characters" in huge.error


def test_only_the_given_tools_exist():
    result = execute("final_answer = vqa(image, None, 'q?')", tools={"depth": FakeTools().depth})
    assert result.error_type == "runtime" and "NameError" in result.error


def test_time_inside_tools_does_not_count_against_the_program():
    tools = FakeTools(delay_s=0.4)
    code = "final_answer = sum(depth(image, [0, 0, 5, 5]) for _ in range(4))"
    result = execute(code, tools=tools.mapping(), timeout_s=1.0)
    assert result.ok and result.answer == 10.0 and result.duration_s > 1.6


def test_a_hung_tool_times_out_and_the_executor_recovers():
    def stuck(image):
        time.sleep(1.5)  # holds the shared tool lock meanwhile, so the next program waits for it
        return 1

    limits = SandboxLimits(tool_timeout_s=0.5)
    result = execute("final_answer = stuck(image)", tools={"stuck": stuck}, limits=limits)
    assert result.error_type == "timeout" and "stuck" in result.error and result.duration_s < 1.5
    assert execute("final_answer = len(gd_detect(image, 'cup'))", tools=FakeTools().mapping()).answer == 1


def test_many_workers_share_tools_without_deadlock_and_calls_are_serialized():
    tools = FakeTools(delay_s=0.002)
    mapping = {**tools.mapping(), "which": lambda image: image.name}
    images = [Scene(f"image-{i}") for i in range(24)]
    code = PROGRAM + "final_answer.append(which(image))"
    results = execute_many([code] * 24, tools=mapping, images=images, workers=4, timeout_s=10)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert [r.answer[-1] for r in results] == [image.name for image in images]
    assert len(tools.calls) == 24 * 3 and tools.max_active == 1


@pytest.mark.parametrize(
    ("code", "message", "reaches_tool"),
    [
        ("gd_detect(image, 'cat, ' * 10**6)", "characters", False),
        ("depth(image, [[[[[[[[[[1]]]]]]]]]] * 4)", "nested deeper", False),
        ("depth(image, [float('nan')] * 4)", "finite", True),
        ("depth(image, [1, 2, 3])", "4 finite numbers", True),
        ("class Box:\n    pass\ndepth(image, Box())", "plain data", False),
        ("depth(image, {(1, 2): 3})", "keys must be str", False),
        ("depth('image.png', [0, 0, 1, 1])", "input image", False),
        ("depth([0, 0, 1, 1])", "input image", False),
    ],
)
def test_absurd_tool_arguments_are_stopped_or_rejected(code, message, reaches_tool):
    tools = FakeTools()
    result = execute(code + "\nfinal_answer = 1", tools=tools.mapping())
    assert result.error_type == "runtime" and message in result.error, result
    assert bool(tools.calls) is reaches_tool
    assert execute("final_answer = depth(image, [0, 0, 2, 2])", tools=tools.mapping()).answer == 2.5


def test_tool_call_limit():
    limits = SandboxLimits(max_tool_calls=5)
    result = execute(
        "for _ in range(10):\n    depth(image, [0, 0, 1, 1])", tools=FakeTools().mapping(), limits=limits
    )
    assert result.error_type == "runtime" and "tool calls" in result.error
