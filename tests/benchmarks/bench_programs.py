"""Syntax-check throughput: 500 VALOR-style programs through ``execute_many`` (dummy tools, warm sandbox
workers) against the authors' scheme, one fresh interpreter (a ``spawn`` process) per program, run in the same
session. The baseline starts ``python -c`` directly rather than through ``multiprocessing``, whose spawned
children would re-import pytest here and make the baseline look slower than it is.
Prints programs/s for both and the ratio; never asserts on time. It does check that both agree on which
programs pass. Run: ``.venv/bin/pytest tests/benchmarks/bench_programs.py -m benchmark -s``.

The baseline runs the programs sequentially with full builtins and no limits (as the authors do), plus a
join timeout so that it cannot hang; the mix has no infinite loops (those cost each side its full timeout).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import pytest

from valor_lib.programs import execute_many

N_PROGRAMS = 500
NOUNS = ["cup", "chair", "table", "lamp", "book", "bottle", "plant", "laptop", "sofa", "mug", "car", "dog"]
COLOURS = ["red", "blue", "green", "white", "black"]

TEMPLATES = [
    'boxes = gd_detect(image, "{a}")\nfinal_answer = len(boxes)\n',
    'boxes = gd_detect(image, "{a}")\ncount = 0\nfor box in boxes:\n'
    '    colour = vqa(image, box["bbox"], "What colour is the {a}?")\n'
    '    if colour.strip().lower() in ("{c}", "yes"):\n        count += 1\nfinal_answer = count\n',
    'first = gd_detect(image, "{a}")\nsecond = gd_detect(image, "{b}")\nif not first or not second:\n'
    '    final_answer = "no"\n    return\nnear = depth(image, first[0]["bbox"])\nfar = depth(image, second[0]["bbox"])\n'
    'final_answer = "yes" if near <= far else "no"\n',
    'import numpy as np\nobjects = gd_detect(image, "{a}, {b}")\nheights = {{}}\nfor obj in objects:\n'
    '    x1, y1, x2, y2 = obj["bbox"]\n    heights[obj["label"]] = (y2 - y1) * depth(image, obj["bbox"])\n'
    'ratio = heights.get("{a}", 0.0) / max(heights.get("{b}", 1.0), 1e-6)\nfinal_answer = float(np.round(ratio, 3))\n',
    'left = gd_detect(image, "{a}")\nright = gd_detect(image, "{b}")\n\n'
    'def centre_x(box):\n    return (box["bbox"][0] + box["bbox"][2]) / 2\n\n'
    'final_answer = "yes" if left and right and centre_x(left[0]) <= centre_x(right[0]) else "no"\n',
    'boxes = gd_detect(image, "{a}")\nbbox = boxes[0]["bbox"] if boxes else None\n'
    'answer = vqa(image, bbox, "Which material is the {a} made of?")\noptions = ["wood", "metal", "plastic"]\n'
    "final_answer = answer if answer in options else options[0]\n",
    'import numpy as np\nnames = ["{a}", "{b}", "{c2}"]\ndetections = gd_detect(image, ", ".join(names))\n'
    'depths = np.array([depth(image, d["bbox"]) for d in detections])\n'
    'final_answer = detections[int(np.argmin(depths))]["label"] if len(detections) else "none"\n',
    'import math\nboxes = gd_detect(image, "{a}")\n'
    'areas = [(b["bbox"][2] - b["bbox"][0]) * (b["bbox"][3] - b["bbox"][1]) for b in boxes]\n'
    'mean_area = sum(areas) / len(areas) if areas else 0\nprint("mean area", mean_area)\n'
    "final_answer = round(math.sqrt(mean_area) / image.width, 4)\n",
]
FAILING = [
    'boxes = gd_detect(image, "{a}"\nfinal_answer = len(boxes)\n',  # syntax
    'boxes = gd_detect(image, "{a}")\nfinal_answer = boxes[3]["bbox"]\n',  # runtime: index
    'boxes = gd_detect(image, "{a}")\nfinal_answer = depth(image, boxes[0])\n',  # runtime: bbox is a dict
    'boxes = gd_detect(image, "{a}")\ncount = len(boxes)\n',  # no answer
]


def make_programs(n: int, seed: int = 0) -> list[str]:
    """``n`` programs: mostly the templates above with varied nouns, one in twenty a failing one."""
    rng = random.Random(seed)
    programs = []
    for i in range(n):
        template = rng.choice(FAILING) if i % 20 == 7 else rng.choice(TEMPLATES)
        a, b, c2 = rng.sample(NOUNS, 3)
        programs.append(template.format(a=a, b=b, c2=c2, c=rng.choice(COLOURS)))
    return programs


# The baseline child: a fresh interpreter that imports numpy, defines the authors' stubs and runs the program
# (read from stdin) as a function body with full builtins; prints 1 when final_answer ends up set.
BASELINE_CHILD = """
import math, sys
import numpy as np

def gd_detect(image, prompt):
    return [{"bbox": [0, 0, 10, 10], "label": n.strip(), "score": 1.0} for n in prompt.split(",") if n.strip()]

def depth(image, bbox):
    if len(bbox) != 4:
        raise ValueError("bbox must have 4 numbers")
    return 0.5

def vqa(image, bbox, question):
    return "yes"

class Image:
    width, height, size = 640, 480, (640, 480)

body = "".join("        " + line + "\\n" for line in sys.stdin.read().splitlines())
source = "def program(image, sink):\\n    final_answer = None\\n    try:\\n" + body
source += "        pass\\n    finally:\\n        sink.append(final_answer)\\n"
namespace = {"np": np, "numpy": np, "math": math, "gd_detect": gd_detect, "depth": depth, "vqa": vqa}
sink = []
stdout, sys.stdout = sys.stdout, open("/dev/null", "w")
try:
    exec(source, namespace)
    namespace["program"](Image(), sink)
    passed = sink[0] is not None
except Exception:
    passed = False
stdout.write("1" if passed else "0")
"""


def run_baseline(programs: list[str], timeout_s: float = 10.0) -> list[bool]:
    """One fresh interpreter per program (what a ``spawn`` process costs), one after the other."""
    passed = []
    for code in programs:
        try:
            done = subprocess.run(
                [sys.executable, "-c", BASELINE_CHILD],
                input=code,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            passed.append(done.stdout == "1")
        except subprocess.TimeoutExpired:
            passed.append(False)
    return passed


@pytest.mark.benchmark
def test_execute_many_against_spawn_per_program_baseline():
    programs = make_programs(N_PROGRAMS)
    workers = os.cpu_count() or 1

    started = time.perf_counter()
    execute_many(programs[:workers])  # start the workers
    cold_s = time.perf_counter() - started

    started = time.perf_counter()
    ours = execute_many(programs, timeout_s=5.0)
    ours_s = time.perf_counter() - started

    started = time.perf_counter()
    baseline = run_baseline(programs)
    baseline_s = time.perf_counter() - started

    assert [r.ok for r in ours] == baseline, "the sandbox and the baseline disagree on which programs pass"
    failures: dict[str, int] = {}
    for result in ours:
        failures[str(result.error_type)] = failures.get(str(result.error_type), 0) + 1
    ours_rate, baseline_rate = N_PROGRAMS / ours_s, N_PROGRAMS / baseline_s
    print()
    print(f"programs: {N_PROGRAMS}, cpu cores: {workers}, outcomes: {failures}")
    print(
        f"execute_many (warm workers): {ours_s:7.2f} s  {ours_rate:8.1f} programs/s  (worker start-up {cold_s:.2f} s)"
    )
    print(f"baseline (fresh process per program): {baseline_s:7.2f} s  {baseline_rate:8.1f} programs/s")
    print(f"ratio: {ours_rate / baseline_rate:.1f}x")
