"""The four verifier prompts (logic, attribute, spatial, adherence), their verdict format and its parser.

Each prompt is one user message: a shared preamble, the head's task (first line ``Task: judge ...``), the
inputs the head may see, each inside its own tag (``<question>``, ``<tools>``, ``<plan>``, ``<program>``),
and the reply format. What each head sees follows the paper: logic gets question, tool API and plan (never
the code); attribute and spatial get question and plan; adherence gets plan and code.

Reply format (strict): a short justification, then a last line ``VERDICT: PASS`` or ``VERDICT: FAIL``.
:func:`parse_verdict` accepts exactly that (case and surrounding Markdown emphasis aside) and returns None
for anything else, including replies that state both verdicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from valor_lib.clients import ChatRequest, SamplingParams, user
from valor_lib.rewards.heads import VERIFIER_HEADS

PREAMBLE = (
    "You are reviewing the work of an assistant that answers questions about a photograph by first writing a "
    "numbered plan and then a Python program. The assistant never sees the photograph: its program calls vision "
    "tools (an open-vocabulary object detector, a depth estimator and a visual question answering model) and "
    "computes the answer from what they return. Your review is one pass/fail check, described below."
)

TASKS: dict[str, str] = {
    "logic": (
        "Task: judge the LOGIC of the plan.\n"
        "Decide whether the plan is a sound, step-by-step way to answer this exact question with the tools "
        "listed. A sound plan finds every object the question refers to before using it; uses a result only "
        "after an earlier step has produced it, so that each step follows from the previous ones; measures "
        "each quantity with a suitable tool (image positions from boxes, distance from the camera with depth, "
        "real-world size by combining pixel size with depth, appearance with visual questions); and ends by "
        "producing an answer of the kind the question asks for (a number, yes or no, one of the offered "
        "options, a word). Ignore wording, style and efficiency. Judge the plan only."
    ),
    "attribute": (
        "Task: judge the OBJECT ATTRIBUTES in the plan.\n"
        "First work out every property of an object that the answer depends on: colour, material, state, "
        "real-world height, width, length or size, and the like. Then check that the plan names each of these "
        "properties for the right object and says how to obtain it correctly. A size in the real world (in "
        "3D, in metres, taller, wider, bigger) must combine the object's extent in pixels with its depth; a "
        "size read off the image in pixels alone is wrong. Height is vertical extent, not distance from the "
        "camera; width is horizontal extent. Appearance such as colour must actually be checked, for example "
        "with a visual question or by naming the colour in the detection prompt. If the answer depends on no "
        "object property, the plan passes."
    ),
    "spatial": (
        "Task: judge the SPATIAL RELATIONS in the plan.\n"
        "First list every spatial relation or position word in the question: left of, right of, above, below, "
        "in front of, behind, closer, farther, leftmost, rightmost, closest, nearest, farthest, on top of, "
        "under, next to, between, and similar. Then check that the plan handles each one explicitly and "
        "correctly: left/right and leftmost/rightmost compare horizontal positions in the image; above/below "
        "compare vertical positions; in front of/behind, closer/farther and closest/farthest compare depth. "
        "A relation that the plan drops or weakens (for example treating 'the leftmost sofa' as any sofa) "
        "fails the check. If the question contains no spatial relation, the plan passes."
    ),
    "adherence": (
        "Task: judge whether the PROGRAM FOLLOWS THE PLAN.\n"
        "Compare the program with the plan step by step. The program passes only if it carries out every step "
        "of the plan on the same objects, with the same tools, measurements and comparisons, in a compatible "
        "order, and adds nothing that changes the result. Do not judge whether the plan itself is right, only "
        "whether the code does what the plan says. Variable names and how intermediate results are stored do "
        "not matter."
    ),
}

# Which inputs each head sees, in prompt order.
INPUTS: dict[str, tuple[str, ...]] = {
    "logic": ("question", "tools", "plan"),
    "attribute": ("question", "plan"),
    "spatial": ("question", "plan"),
    "adherence": ("plan", "program"),
}

REPLY_FORMAT = (
    "Reply with a short justification (at most three sentences). Then end with a last line that is exactly "
    "`VERDICT: PASS` or `VERDICT: FAIL`, and nothing after it."
)

_TAGS = ("question", "tools", "plan", "program")
_VERDICT_LINE = re.compile(r"^[\s>*_`#-]*verdict[\s*_`]*[:=][\s*_`]*(pass|fail)[\s*_`.!]*$", re.IGNORECASE)
_TITLES = {TASKS[h].splitlines()[0]: h for h in VERIFIER_HEADS}

assert set(TASKS) == set(INPUTS) == set(VERIFIER_HEADS)


def render_prompt(head: str, *, question: str = "", plan: str = "", program: str = "", tools: str = "") -> str:
    """The prompt text of ``head`` with its inputs filled in (inputs the head does not see are ignored)."""
    if head not in TASKS:
        raise ValueError(f"unknown verifier head {head!r}; expected one of {VERIFIER_HEADS}")
    values = {"question": question, "plan": plan, "program": program, "tools": tools}
    for name in INPUTS[head]:
        if not values[name].strip():
            raise ValueError(f"the {head} prompt needs a non-empty {name}")
    blocks = [f"<{name}>\n{values[name].strip()}\n</{name}>" for name in INPUTS[head]]
    return "\n\n".join([PREAMBLE, TASKS[head], *blocks, REPLY_FORMAT])


def build_request(head: str, *, question: str = "", plan: str = "", program: str = "", tools: str = "",
                  sampling: SamplingParams | None = None, sample_index: int = 0) -> ChatRequest:
    """The chat request of one verifier head (``sample_index`` tells repeated attempts apart)."""
    text = render_prompt(head, question=question, plan=plan, program=program, tools=tools)
    return ChatRequest((user(text),), sampling or SamplingParams(), sample_index)


def parse_verdict(text: str | None) -> bool | None:
    """True for PASS, False for FAIL, None when the reply does not follow the verdict format."""
    if not text:
        return None
    verdicts = {m.group(1).lower() for line in text.splitlines() if (m := _VERDICT_LINE.match(line))}
    if len(verdicts) != 1:
        return None
    return verdicts.pop() == "pass"


def format_verdict(passed: bool, reason: str) -> str:
    """A reply in the format the prompts ask for (used by toy verifiers and scripted test servers)."""
    return f"{reason.strip()}\nVERDICT: {'PASS' if passed else 'FAIL'}"


@dataclass(frozen=True)
class PromptReading:
    """What a reader of a verifier prompt finds in it: the head asked about and the tagged inputs."""

    head: str
    question: str | None
    plan: str | None
    program: str | None
    tools: str | None


def read_prompt(text: str) -> PromptReading | None:
    """Recover the head and the inputs from a verifier prompt's text (None if it is not one)."""
    head = next((h for title, h in _TITLES.items() if title in text), None)
    if head is None:
        return None
    found: dict[str, str | None] = {}
    for tag in _TAGS:
        m = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.DOTALL)
        found[tag] = m.group(1) if m else None
    return PromptReading(head, found["question"], found["plan"], found["program"], found["tools"])


def default_tool_api() -> str:
    """The tool documentation the policy is prompted with (``valor_lib.tools``), shown to the logic head."""
    from valor_lib.tools.api import tool_api_text

    return tool_api_text()
