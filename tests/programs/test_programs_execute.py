"""execute / execute_many with dummy tools: program conventions, answers, errors, ordering, input checks."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from valor_lib.programs import ERROR_TYPES, ExecResult, close, execute, execute_many, parse_response
from valor_lib.programs.namespace import restricted_modules

TYPICAL = """
import math
import numpy as np
cups = gd_detect(image, "cup, table")
depths = [depth(image, c["bbox"]) for c in cups]
colour = vqa(image, cups[0]["bbox"], "What colour is the cup?")
print("found", len(cups))
final_answer = {"n": len(cups), "closest": min(depths), "colour": colour, "r": math.sqrt(4) + np.mean([1, 3])}
"""


def test_typical_program_with_dummy_tools():
    result = execute(TYPICAL)
    assert result.ok and result.error_type is None and result.error == ""
    assert result.answer == {"n": 2, "closest": 0.5, "colour": "yes", "r": 4.0}
    assert result.stdout == "found 2\n"
    assert [call["name"] for call in result.tool_calls] == ["gd_detect", "depth", "depth", "vqa"]
    assert result.tool_calls[0]["args"] == "image, 'cup, table'" and result.tool_calls[0]["ok"] is True
    assert all(call["duration_s"] >= 0 for call in result.tool_calls)
    assert 0 < result.duration_s < 5


def test_dummy_tool_outputs_match_the_real_signatures():
    result = execute(
        "final_answer = [gd_detect(image, 'red cup, chair'), depth(image, (1, 2, 3, 4.5)), vqa(image, None, 'q?')]"
    )
    boxes, dist, text = result.answer
    assert boxes == [
        {"bbox": [0, 0, 10, 10], "label": "red cup", "score": 1.0},
        {"bbox": [0, 0, 10, 10], "label": "chair", "score": 1.0},
    ]
    assert dist == 0.5 and isinstance(text, str) and text


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("depth(image, [0, 0, 10])", "4 numbers"),
        ("depth(image, boxes := gd_detect(image, 'cup'))", "4 numbers"),
        ("depth(image, gd_detect(image, 'cup')[0])", "bbox must be 4 numbers"),
        ("depth(image, ['a', 0, 1, 2])", "must be numbers"),
        ("depth(image, [float('inf'), 0, 1, 2])", "finite"),
        ("gd_detect(image, ['cup'])", "prompt must be a string"),
        ("gd_detect(image, '  ')", "empty"),
        ("vqa(image, None, 42)", "question must be a string"),
        ("vqa(image, 'whole image', 'q?')", "bbox must be 4 numbers"),
        ("gd_detect('photo.jpg', 'cup')", "input image"),
        ("gd_detect(image)", "missing 1 required positional argument"),
    ],
)
def test_dummy_tools_reject_bad_arguments_like_the_real_ones(code, message):
    result = execute(code + "\nfinal_answer = 1")
    assert result.error_type == "runtime" and message in result.error, result
    assert result.tool_calls and result.tool_calls[-1]["ok"] is False


def test_program_runs_as_a_function_body():
    early = execute(
        "final_answer = 'early'\nif not gd_detect(image, 'cup'):\n    final_answer = 'none'\nreturn\nfinal_answer = 'late'"
    )
    assert early.answer == "early"
    assert execute("return\nfinal_answer = 1").error_type == "no_answer"
    assert execute("x = 1").error_type == "no_answer"
    assert execute("final_answer = None").error_type == "no_answer"
    assert execute("").error_type == "no_answer"
    # a value returned instead of assigned does not count
    assert execute("return 5").error_type == "no_answer"
    nested = execute("def set_it():\n    nonlocal final_answer\n    final_answer = 3\nset_it()")
    assert nested.ok and nested.answer == 3


def test_answers_are_converted_to_plain_python_values():
    result = execute(
        "final_answer = {'f': np.float32(0.5), 'i': np.int64(7), 'b': np.bool_(False), "
        "'a': np.arange(3), 't': (1, 'x'), 'nan': float('nan')}"
    )
    answer = result.answer
    assert result.ok and answer["f"] == 0.5 and type(answer["i"]) is int and answer["b"] is False
    assert answer["a"] == [0, 1, 2] and answer["t"] == [1, "x"] and answer["nan"] != answer["nan"]
    assert execute("final_answer = False").answer is False  # a falsy answer is still an answer
    assert execute("final_answer = 0").ok


def test_image_handle_exposes_size_only():
    assert execute("final_answer = [image.width, image.height, list(image.size)]").answer == [
        640,
        480,
        [640, 480],
    ]
    pil = Image.new("RGB", (320, 200))
    assert execute("final_answer = image.size", image=pil).answer == [320, 200]
    array = np.zeros((100, 50, 3), dtype=np.uint8)
    assert execute("final_answer = image.size", image=array).answer == [50, 100]
    assert execute("image.width = 5").error_type == "runtime"
    assert execute("final_answer = repr(image)").answer == "<image 640x480>"


def test_image_path_is_sized_without_opening_it_in_the_sandbox(tmp_path):
    path = tmp_path / "scene.png"
    Image.new("RGB", (33, 44)).save(path)
    assert execute("final_answer = image.size", image=str(path)).answer == [33, 44]


@pytest.mark.parametrize(
    ("code", "error_type", "message"),
    [
        ("final_answer = (", "syntax", "SyntaxError"),
        ("if True:\nfinal_answer = 1", "syntax", "IndentationError"),
        ("x = 1\nyield x", "syntax", "'yield'"),
        ("final_answer = 1 / 0", "runtime", "ZeroDivisionError: division by zero (line 1)"),
        ("x = 1\nfinal_answer = undefined_name", "runtime", "NameError"),
        ("final_answer = {1, 2}", "runtime", "plain data"),
        ("raise ValueError('nope')", "runtime", "ValueError: nope (line 1)"),
        ("import collections", "forbidden", "import of 'collections'"),
        ("final_answer = 'x' * 100_000", "output_limit", "characters"),
    ],
)
def test_error_classification(code, error_type, message):
    result = execute(code)
    assert not result.ok and result.answer is None
    assert result.error_type == error_type and message in result.error, result
    assert result.error_type in ERROR_TYPES


def test_allowed_imports_and_common_numpy_work():
    code = """
import numpy.linalg
from numpy import random
from math import hypot
a = np.array([[1.0, 2.0], [3.0, 4.0]])
stats = [np.mean(a), np.median(a), np.percentile(a, 90), np.std(a), np.average(a, weights=a), np.var(a)]
geo = [np.linalg.norm(a[0]), np.linalg.det(a), float(np.linalg.inv(a)[0, 0]), np.cross([1, 0, 0], [0, 1, 0])[2]]
misc = [np.argsort([3, 1, 2]).tolist(), np.unique([1, 1, 2]).tolist(), np.clip(5, 0, 1), np.round(2.567, 2)]
more = [np.arctan2(1, 1), np.degrees(np.pi), np.hypot(3, 4), hypot(3, 4), np.isnan(np.nan), np.polyfit([0, 1], [0, 2], 1)[0]]
rng = random.default_rng(0).normal()
errs = np.float64(1.0) / 0
final_answer = [float(v) for v in stats + geo + misc[2:] + more] + misc[:2] + [str(a), repr(errs), float(rng)]
"""
    result = execute(code)
    assert result.ok, result


def test_stdout_is_captured_and_print_to_files_is_refused():
    result = execute("print('a', 1, sep='-', end='!')\nprint()\nfinal_answer = 1")
    assert result.ok and result.stdout == "a-1!\n"
    assert execute("print('x', file=None)\nfinal_answer = 1").ok
    assert execute("print('x', file=1)").error_type == "runtime"


def test_execute_many_keeps_order_and_uses_per_program_images():
    codes = [f"final_answer = [{i}, image.width]" for i in range(40)]
    codes[7] = "while True:\n    pass"
    images = [Image.new("RGB", (i + 1, 5)) for i in range(40)]
    results = execute_many(codes, images=images, timeout_s=1.0, workers=3)
    assert len(results) == 40 and all(isinstance(r, ExecResult) for r in results)
    assert results[7].error_type == "timeout"
    assert all(results[i].answer == [i, i + 1] for i in range(40) if i != 7)
    assert execute_many([]) == []


def test_programs_are_isolated_from_each_other():
    results = execute_many(
        [
            "math.pi = 3\nnp.mean = None\nfinal_answer = math.pi",
            "final_answer = [math.pi, float(np.mean([2, 4]))]",
        ]
        * 3,
        workers=1,
    )
    assert [r.answer for r in results] == [3, [np.pi, 3.0]] * 3


def test_random_numbers_are_reproducible():
    results = execute_many(["final_answer = float(np.random.rand())"] * 4, workers=2)
    assert len({r.answer for r in results}) == 1


def test_parse_then_execute():
    response = "<plan>count cups</plan>\n<answer>\n```python\nfinal_answer = len(gd_detect(image, 'cup'))\n```\n</answer>"
    parsed = parse_response(response)
    assert parsed.format_ok and execute(parsed.code).answer == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: execute(b"final_answer = 1"), TypeError),
        (lambda: execute("x", timeout_s=0), ValueError),
        (lambda: execute("x", timeout_s=float("nan")), ValueError),
        (lambda: execute("x", tools=["gd_detect"]), TypeError),
        (lambda: execute("x", tools={"gd_detect": 3}), TypeError),
        (lambda: execute("x", tools={"__import__": print}), ValueError),
        (lambda: execute("x", tools={"image": print}), ValueError),
        (lambda: execute_many(["x", "y"], images=[None]), ValueError),
        (lambda: execute_many(["x"], workers=0), ValueError),
        (lambda: execute("x", image=object()), TypeError),
    ],
)
def test_bad_calls_raise_clear_errors(call, error):
    with pytest.raises(error):
        call()


def test_close_then_reuse():
    assert execute("final_answer = 1").ok
    close()
    assert execute("final_answer = 2").answer == 2


def test_importing_the_package_is_cheap():
    probe = "import sys, valor_lib.programs; print(sorted(m for m in ('numpy', 'torch', 'PIL') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_no_numpy_function_is_mistaken_for_an_escape():
    """Every function of the restricted numpy namespace can be called (its own errors are fine)."""
    modules = restricted_modules()
    names = [
        f"{prefix}{name}"
        for prefix, module in (
            ("", modules["numpy"]),
            *((f"{s}.", modules[f"numpy.{s}"]) for s in ("linalg", "random", "fft")),
        )
        for name, value in vars(module).items()
        if callable(value) and not name.startswith("_")
    ]
    template = "a = np.array([[1.0, 2.0], [3.0, 4.5]])\ntry:\n    r = np.{}(a)\nexcept Exception as e:\n    r = e\nfinal_answer = str(r)[:80]"
    results = execute_many([template.format(name) for name in names], timeout_s=10)
    assert len(names) > 400
    wrong = {name: r.error for name, r in zip(names, results, strict=True) if not r.ok}
    assert wrong == {}


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process visible in /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                table[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes())
            except (OSError, IndexError, ValueError):
                continue
    return table


def _worker_pids(busy: bool = False) -> list[int]:
    """This process's sandbox workers (only those running a program, with ``busy``)."""
    table = _processes()
    workers = [pid for pid, (ppid, cmd) in table.items() if ppid == os.getpid() and b"programs.worker" in cmd]
    if busy:
        workers = [pid for pid in workers if any(ppid == pid for ppid, _ in table.values())]
    return workers


def test_workers_killed_from_outside_are_replaced():
    assert execute("final_answer = 1").ok
    for pid in _worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert execute_many(["final_answer = 2"] * 4, workers=2)[3].answer == 2


def test_a_worker_dying_mid_program_fails_only_that_program():
    assert execute_many(["final_answer = 0"] * 2, workers=2)[0].ok  # two warm workers

    def kill_one():
        os.kill(_worker_pids(busy=True)[0], signal.SIGKILL)

    timer = threading.Timer(0.5, kill_one)
    timer.start()
    results = execute_many(["while True:\n    pass"] * 2 + ["final_answer = 3"] * 4, timeout_s=2.0, workers=2)
    timer.join()
    kinds = sorted(r.error_type for r in results[:2])
    assert kinds == ["runtime", "timeout"] and "died" in min(results[:2], key=lambda r: r.error_type).error
    assert [r.answer for r in results[2:]] == [3] * 4


def test_concurrent_callers_share_the_pool():
    outcomes: dict[int, list] = {}

    def call(k: int) -> None:
        outcomes[k] = [
            r.answer for r in execute_many([f"final_answer = {k} * 10 + {i}" for i in range(20)], workers=2)
        ]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == {k: [k * 10 + i for i in range(20)] for k in range(3)}
