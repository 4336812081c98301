"""The program-generation prompt: one chat layout for training, evaluation and SFT, whatever the backend.

Layout: a system message with the task, the tool API (``valor_lib.tools``), the output format, the rules and
``examples`` worked examples; a user message ``Question: <question>``. Training (GRPO, SFT, the toy base
model's pretraining) and evaluation all call :func:`build_messages`, so the policy is always asked the same
way (the authors used a system message in RL and a user message in evaluation; we do not). Thinking is off
everywhere: the chat backends render Qwen3 templates with ``enable_thinking=False`` and the trainers pass the
same switch.

The number of worked examples is a parameter: the paper shows four; a tiny toy model may be given fewer to
keep sequences short. A trained policy remembers the count it was trained with (:func:`save_prompt_config`),
so evaluation asks it the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valor_lib.clients import Message, system, user

PROMPT_CONFIG_FILE = "valor_prompt.json"
PAPER_EXAMPLES = 4
TEMPLATE_KWARGS = {"enable_thinking": False}  # chat-template switches of every trainer (thinking off)

TASK = """\
You answer questions about an image by writing a plan and a Python program. You never see the image: your \
program looks at it through three vision tools and computes the answer from what they return."""

FORMAT = """\
Reply in exactly this form and write nothing outside the two blocks:
<plan>
1. First step.
2. Next step.
</plan>
<answer>
Python code that carries out the plan and sets final_answer
</answer>"""

RULES = """\
Rules for the plan:
- Number the steps. Name every object by the noun phrase the question uses (for example "the red chair").
- Keep each spatial word of the question (left of, right of, above, below, in front of, behind, closer, \
farther, leftmost, rightmost, closest, farthest) in the step that handles it.
- Left/right and above/below are positions in the image: compare bounding box centres (x grows to the right, \
y grows downward). In front of/behind, closer/farther and closest/farthest are about distance from the \
camera: compare depth.
- Sizes in the real world need depth: the 3D height (or width) of an object is its pixel height (or width) \
times its depth. Depth is distance, not height. A size given in meters scales by a ratio of 3D sizes.
- Check colour and other appearance with vqa, asking yes/no questions about an object's bounding box.
- End with a step that gives the answer in the form asked: yes or no, one of the options as written, a \
number (never rounded), or a single word.

Rules for the program:
- The image is the variable image; math and numpy (as np) are available. Import nothing else.
- A gd_detect prompt holds object names and appearance words, never positions or relations.
- The code runs as the body of a function, so return ends it early. It must set final_answer.
- Carry out the plan exactly, step by step, with the same objects and tools."""


@dataclass(frozen=True)
class Example:
    """A worked example: a question and the response a good policy writes for it."""

    question: str
    plan: tuple[str, ...]
    code: str

    @property
    def response(self) -> str:
        steps = "\n".join(f"{i}. {s}" for i, s in enumerate(self.plan, 1))
        return f"<plan>\n{steps}\n</plan>\n<answer>\n{self.code.strip()}\n</answer>"


# Toy-world questions, so each example can be checked on toy scenes with the toy tools (tests/policy).
EXAMPLES: tuple[Example, ...] = (
    Example(
        "If the black sofa is 0.85 meters tall, how tall is the lamp in meters?",
        ("Detect the black sofa with gd_detect and keep the most confident bounding box.",
         "Detect the lamp with gd_detect and keep the most confident bounding box.",
         "Compute the 3D height of the black sofa and the lamp as pixel height times depth.",
         "Answer with the scaled height: the lamp measures 0.85 m times the 3D height of the lamp divided by "
         "the 3D height of the black sofa."),
        """
sofas = gd_detect(image, "black sofa")
lamps = gd_detect(image, "lamp")
if not sofas or not lamps:
    final_answer = 0.0
    return
sofa = max(sofas, key=lambda d: d["score"])["bbox"]
lamp = max(lamps, key=lambda d: d["score"])["bbox"]
sofa_3d = (sofa[3] - sofa[1]) * depth(image, sofa)
lamp_3d = (lamp[3] - lamp[1]) * depth(image, lamp)
final_answer = 0.85 * lamp_3d / sofa_3d
"""),
    Example(
        "Is the leftmost chair in front of the table?",
        ("Detect every chair with gd_detect and keep the leftmost one (smallest bounding box centre x).",
         "Detect the table with gd_detect and keep the most confident bounding box.",
         "Estimate the depth of the leftmost chair and of the table with depth.",
         "Answer yes if the leftmost chair is in front of the table (smaller depth, closer to the camera), "
         "otherwise no."),
        """
chairs = gd_detect(image, "chair")
tables = gd_detect(image, "table")
if not chairs or not tables:
    final_answer = "no"
    return
chair = min(chairs, key=lambda d: d["bbox"][0] + d["bbox"][2])["bbox"]
table = max(tables, key=lambda d: d["score"])["bbox"]
final_answer = "yes" if depth(image, chair) < depth(image, table) else "no"
"""),
    Example(
        "How many yellow boxes are there in the image?",
        ("Detect every box with gd_detect.",
         'Ask vqa the yes/no question "Is the box yellow?" about each bounding box.',
         "Answer with the number of bounding boxes where vqa says yes."),
        """
boxes = [d["bbox"] for d in gd_detect(image, "box")]
final_answer = sum(vqa(image, b, "Is the box yellow?") == "yes" for b in boxes)
"""),
    Example(
        "How many times wider is the sofa than the closest chair in 3D?",
        ("Detect the sofa with gd_detect and keep the most confident bounding box.",
         "Detect every chair with gd_detect and keep the closest one (smallest depth).",
         "Compute the 3D width of the sofa and the closest chair as pixel width times depth.",
         "Answer with the 3D width of the sofa divided by the 3D width of the closest chair."),
        """
sofas = gd_detect(image, "sofa")
chairs = gd_detect(image, "chair")
if not sofas or not chairs:
    final_answer = 1.0
    return
sofa = max(sofas, key=lambda d: d["score"])["bbox"]
chair = min(chairs, key=lambda d: depth(image, d["bbox"]))["bbox"]
sofa_3d = (sofa[2] - sofa[0]) * depth(image, sofa)
chair_3d = (chair[2] - chair[0]) * depth(image, chair)
final_answer = sofa_3d / chair_3d
"""),
)


def tool_api() -> str:
    """The tool API as the policy sees it (signatures and docstrings from ``valor_lib.tools``)."""
    from valor_lib.tools.api import tool_api_text

    return tool_api_text()


def _check_examples(examples: int) -> int:
    if isinstance(examples, bool) or not isinstance(examples, int) or not 0 <= examples <= len(EXAMPLES):
        raise ValueError(f"examples must be an int in [0, {len(EXAMPLES)}], got {examples!r}")
    return examples


def system_prompt(examples: int = PAPER_EXAMPLES) -> str:
    """The system message: task, tools, format, rules and the first ``examples`` worked examples."""
    parts = [TASK, "Tools (Python stubs):\n\n" + tool_api(), FORMAT, RULES]
    shown = EXAMPLES[:_check_examples(examples)]
    if shown:
        worked = "\n\n".join(f"Question: {e.question}\n{e.response}" for e in shown)
        parts.append("Worked examples:\n\n" + worked)
    return "\n\n".join(parts)


def question_message(question: str) -> str:
    """The user message text for one question."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    return f"Question: {question.strip()}"


def build_messages(question: str, examples: int = PAPER_EXAMPLES) -> list[Message]:
    """The chat messages asking the policy to answer ``question`` (contract; same for training and evaluation)."""
    return [system(system_prompt(examples)), user(question_message(question))]


def as_dicts(messages: list[Message]) -> list[dict[str, str]]:
    """Messages as ``{"role", "content"}`` dicts (the trainers' conversational format)."""
    return [{"role": m.role, "content": m.text} for m in messages]


def save_prompt_config(model_dir: str | Path, examples: int) -> Path:
    """Record in a model folder how its policy is prompted (read back by :func:`prompt_config`)."""
    path = Path(model_dir) / PROMPT_CONFIG_FILE
    path.write_text(json.dumps({"examples": _check_examples(examples)}) + "\n")
    return path


def prompt_config(model_dir: str | Path | None) -> dict[str, Any]:
    """How the policy in ``model_dir`` was trained to be prompted; the paper's layout for anything else."""
    path = Path(model_dir) / PROMPT_CONFIG_FILE if model_dir else None
    if path is not None and path.is_file():
        config = json.loads(path.read_text())
        _check_examples(config.get("examples"))
        return config
    return {"examples": PAPER_EXAMPLES}
