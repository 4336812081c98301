"""The tool API as the policy LLM sees it: signatures and docstrings, one source for prompts and docs.

``tool_api_text()`` renders them as Python stubs for the prompt builder. The wording is ours; what it says
follows the paper's guidelines (appearance words allowed in detector prompts, spatial words not; detections
unordered; vqa for appearance only, with ``None`` as a whole-image fallback; depth is metric).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolDoc:
    """One tool: its name, signature line and docstring."""

    name: str
    signature: str
    doc: str

    def stub(self) -> str:
        body = "\n".join(f"    {line}" if line else "" for line in self.doc.strip("\n").split("\n"))
        return f"def {self.name}{self.signature}:\n    \"\"\"\n{body}\n    \"\"\""


GD_DETECT = ToolDoc("gd_detect", "(image, prompt: str) -> list[dict]", """
Find every instance of the named objects in the image.

prompt: object names separated by commas, e.g. "sofa, coffee table, lamp". A name may carry an
    appearance word ("black coffee table", "wooden chair") but never a position or relation: "chair on
    the left" or "cup behind the laptop" will not work. Detect the objects, then compare their boxes.

Returns a list of detections {"bbox": [x1, y1, x2, y2], "label": str, "score": float}. Boxes are in
pixels (x to the right, y downward, (0, 0) the top-left corner); "label" is the name from the prompt
that the box matched, in lower case. The list is in no particular order (not the prompt's, not left to
right) and is empty when nothing is found, so check its length before indexing it.
""")

DEPTH = ToolDoc("depth", "(image, bbox: list[float]) -> float", """
Metric depth, in metres, of the object in bbox: its distance from the camera along the viewing direction,
measured at the centre of the box.

bbox: [x1, y1, x2, y2] in pixels, e.g. a detection's "bbox".

A larger value means farther from the camera. Depth is not height: how tall an object is comes from its
box. An object's real (3D) size is roughly its size in pixels times its depth.
""")

VQA = ToolDoc("vqa", "(image, bbox: list[float] | None, question: str) -> str", """
Ask a short question about how an object looks, e.g. "What color is this object?" or "Is it made of
wood?". The question is answered from a crop around bbox, so ask about one object's appearance only;
never ask where things are, how many there are or how they relate (use gd_detect and depth for that).

bbox: [x1, y1, x2, y2] in pixels, or None to ask about the whole image, a fallback for when detection
    found nothing to crop.

Returns a short lower-case answer, e.g. "red" or "yes".
""")

TOOL_DOCS: dict[str, ToolDoc] = {doc.name: doc for doc in (GD_DETECT, DEPTH, VQA)}
TOOL_NAMES: tuple[str, ...] = tuple(TOOL_DOCS)


def tool_api_text() -> str:
    """Python stubs (signature + docstring) of every tool, for the policy's prompt."""
    return "\n\n".join(doc.stub() for doc in TOOL_DOCS.values())
