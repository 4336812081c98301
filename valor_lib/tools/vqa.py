"""The VQA tool: a vision-language model answers a short appearance question about a crop (or the image).

Any client of :mod:`valor_lib.clients` that takes images works (GPT-5-mini in the paper, ``toy:vqa`` offline).
The crop is the box padded by 25 % of its width and height on each side; the answer comes back lower-cased
with one trailing "." or "," removed (the authors' conventions).
"""

from __future__ import annotations

from typing import Any

from valor_lib.clients import ChatRequest, SamplingParams, user
from valor_lib.tools.errors import ToolBackendError, ToolInputError
from valor_lib.tools.images import Box, LoadedImage, padded_crop

CROP_PAD = 0.25
MAX_QUESTION_CHARS = 500
CROP_INSTRUCTION = (
    "The image is a close crop around one object. Answer the question about that object, the one in the "
    "middle of the crop, in one word or a short phrase. Give numbers as digits, without units. If the "
    "question lists options, answer with one of them."
)
IMAGE_INSTRUCTION = (
    "Answer the question about this image in one word or a short phrase. Give numbers as digits, without "
    "units. If the question lists options, answer with one of them."
)


def clean_answer(text: str) -> str:
    """Lower case, surrounding whitespace removed, one trailing "." or "," dropped."""
    answer = text.strip().lower()
    if answer[-1:] in (".", ","):
        answer = answer[:-1].rstrip()
    return answer


def check_question(question: Any) -> str:
    """The question, if it is a non-empty string of reasonable length."""
    if not isinstance(question, str):
        raise ToolInputError(f"vqa question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise ToolInputError("vqa question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise ToolInputError(f"vqa question is longer than {MAX_QUESTION_CHARS} characters")
    return question.strip()


def vqa_request(image: LoadedImage, box: Box | None, question: str, pad: float = CROP_PAD,
                params: SamplingParams | None = None) -> ChatRequest:
    """The chat request the VQA model receives: instruction + question, then the crop (or whole image)."""
    picture = image.image if box is None else padded_crop(image.image, box, pad)
    instruction = IMAGE_INSTRUCTION if box is None else CROP_INSTRUCTION
    return ChatRequest((user(f"{instruction}\nQuestion: {question}", picture),), params or SamplingParams())


class ClientVQA:
    """VQA through a chat client (``ChatClient`` from a spec such as ``openai:gpt-5-mini`` or ``toy:vqa``)."""

    def __init__(self, client: Any, pad: float = CROP_PAD, params: SamplingParams | None = None):
        self.client = client
        self.pad = pad
        self.params = params or SamplingParams()
        self.name = f"vqa:{client.spec}" if hasattr(client, "spec") else "vqa"

    def answer(self, image: LoadedImage, box: Box | None, question: str) -> str:
        result = self.client.complete(vqa_request(image, box, question, self.pad, self.params))
        if not result.ok:
            raise ToolBackendError(f"the VQA model failed ({result.error_type}): {result.error}")
        return clean_answer(result.output or "")
