"""What a chat call is made of: messages with text and images, sampling parameters, the request, the result.

Everything here is immutable. A request's cache key covers the messages (images by content hash), the
sampling parameters, and (when sampling) the sample index; see :meth:`ChatRequest.key_payload`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from PIL import Image

from valor_lib.clients.errors import RequestFailedError

ROLES = ("system", "user", "assistant")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
_PNG_MODES = {"RGB", "RGBA", "L", "LA", "P", "1"}


class ImagePart:
    """An image in a message, from a PIL image, a file path (``pathlib.Path``) or encoded bytes.

    The content hash is taken at construction (pixels for PIL images, file bytes otherwise), so do not
    mutate a PIL image after wrapping it. PIL images are sent as PNG; files and bytes are sent as they are.
    """

    __slots__ = ("_data", "_mime", "_pil", "sha256")

    def __init__(self, source: Image.Image | os.PathLike | bytes | ImagePart):
        self._pil: Image.Image | None = None
        self._data: bytes | None = None
        self._mime: str | None = None
        if isinstance(source, ImagePart):
            self._pil, self._data, self._mime, self.sha256 = source._pil, source._data, source._mime, source.sha256
            return
        if isinstance(source, Image.Image):
            self._pil = source
            digest = hashlib.sha256(f"{source.mode}|{source.width}x{source.height}|".encode())
            if source.mode == "P" and source.getpalette():
                digest.update(bytes(source.getpalette()))
            digest.update(source.tobytes())
            self.sha256 = digest.hexdigest()
            return
        if isinstance(source, str):
            raise TypeError("a str in message content is text; pass an image file as pathlib.Path(...)")
        if isinstance(source, os.PathLike):
            with open(source, "rb") as fh:
                data = fh.read()
        elif isinstance(source, bytes | bytearray):
            data = bytes(source)
        else:
            raise TypeError(f"cannot use {type(source).__name__} as an image (PIL image, Path or bytes)")
        self._data, self._mime = data, _sniff_mime(data)
        self.sha256 = hashlib.sha256(data).hexdigest()

    def encoded(self) -> tuple[bytes, str]:
        """The bytes sent to a provider and their MIME type (PIL images become PNG, once)."""
        if self._data is None:
            img = self._pil if self._pil.mode in _PNG_MODES else self._pil.convert("RGB")
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            self._data, self._mime = buf.getvalue(), "image/png"
        return self._data, self._mime

    def data_url(self) -> str:
        """``data:<mime>;base64,...`` as OpenAI-style APIs take it."""
        data, mime = self.encoded()
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def to_pil(self) -> Image.Image:
        """The image as PIL (decoded from bytes when it was given encoded)."""
        if self._pil is None:
            self._pil = Image.open(io.BytesIO(self._data))
            self._pil.load()
        return self._pil

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImagePart) and other.sha256 == self.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)

    def __repr__(self) -> str:
        return f"ImagePart(sha256={self.sha256[:12]}...)"


def _sniff_mime(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
    except Exception as err:
        raise ValueError(f"image bytes are not a readable image: {err}") from None
    mime = Image.MIME.get(fmt or "")
    if not mime:
        raise ValueError(f"image format {fmt!r} has no known MIME type")
    return mime


@dataclass(frozen=True)
class TextPart:
    """Text in a message."""

    text: str


Part: TypeAlias = TextPart | ImagePart
ContentItem: TypeAlias = str | TextPart | ImagePart | Image.Image | os.PathLike | bytes


def _to_part(item: ContentItem) -> Part:
    if isinstance(item, TextPart | ImagePart):
        return item
    if isinstance(item, str):
        return TextPart(item)
    return ImagePart(item)


@dataclass(frozen=True, init=False)
class Message:
    """One chat turn: a role and its content parts (text and images, in order).

    ``content`` may be a string, or a sequence mixing strings (text), PIL images, ``pathlib.Path`` image
    files, encoded image bytes, :class:`TextPart` and :class:`ImagePart`.
    """

    role: str
    content: tuple[Part, ...]

    def __init__(self, role: str, content: ContentItem | Sequence[ContentItem]):
        if role not in ROLES:
            raise ValueError(f"message role must be one of {ROLES}, got {role!r}")
        items = [content] if isinstance(content, str | bytes | os.PathLike | Image.Image | Part) else content
        parts = tuple(_to_part(item) for item in items)
        if not parts:
            raise ValueError(f"{role} message has no content")
        if role != "user" and any(isinstance(p, ImagePart) for p in parts):
            raise ValueError(f"only user messages may carry images, not {role} messages")
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "content", parts)

    @property
    def text(self) -> str:
        """The text parts joined by newlines."""
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        return [p for p in self.content if isinstance(p, ImagePart)]

    def key_payload(self) -> dict[str, Any]:
        parts = [{"text": p.text} if isinstance(p, TextPart) else {"image": p.sha256} for p in self.content]
        return {"role": self.role, "content": parts}


def system(text: str) -> Message:
    return Message("system", text)


def user(*content: ContentItem) -> Message:
    """A user message from text and images in order, e.g. ``user("Describe:", pil_image)``."""
    return Message("user", content)


def assistant(text: str) -> Message:
    return Message("assistant", text)


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings; ``None`` leaves the provider's default. ``valor_lib/clients/README.md`` lists which
    backend ignores what (e.g. top_k on OpenAI, stop and seed on the Responses API)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    seed: int | None = None
    reasoning_effort: str | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            raise TypeError("stop must be a list of strings, not one string")
        object.__setattr__(self, "stop", tuple(self.stop))
        checks = [
            (self.temperature is None or self.temperature >= 0, "temperature must be >= 0"),
            (self.top_p is None or 0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.top_k is None or self.top_k >= 1, "top_k must be >= 1"),
            (self.max_tokens is None or self.max_tokens >= 1, "max_tokens must be >= 1"),
            (self.reasoning_effort is None or self.reasoning_effort in REASONING_EFFORTS,
             f"reasoning_effort must be one of {REASONING_EFFORTS}"),
            (all(isinstance(s, str) and s for s in self.stop), "stop strings must be non-empty strings"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message} (got {self})")

    @property
    def is_sampling(self) -> bool:
        """True unless greedy (temperature 0): unset temperature means the provider's default, which samples."""
        return self.temperature is None or self.temperature > 0

    def as_dict(self) -> dict[str, Any]:
        """The parameters that are set (stable across added fields, so cache keys stay valid)."""
        return {k: (list(v) if k == "stop" else v) for k, v in dataclasses.asdict(self).items() if v not in (None, ())}


@dataclass(frozen=True)
class ChatRequest:
    """Messages plus sampling parameters, and which sample of them this is.

    ``sample_index`` tells apart repeated samples of one prompt (a GRPO group): it enters the cache key when
    sampling, and offsets ``seed`` for providers that take one. ``None`` means 0 for single calls; ``map``
    numbers repeated identical sampling requests 0, 1, 2, ... in order.
    """

    messages: tuple[Message, ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    sample_index: int | None = None

    def __post_init__(self) -> None:
        msgs = tuple(m if isinstance(m, Message) else _message_from_mapping(m) for m in self.messages)
        if not msgs:
            raise ValueError("a chat request needs at least one message")
        if msgs[-1].role == "system":
            raise ValueError("the last message must be a user (or assistant) message, not system")
        if self.sample_index is not None and self.sample_index < 0:
            raise ValueError("sample_index must be >= 0")
        object.__setattr__(self, "messages", msgs)

    @classmethod
    def from_prompt(
        cls,
        prompt: str,
        images: Iterable[Image.Image | os.PathLike | bytes | ImagePart] = (),
        *,
        system: str | None = None,
        sample_index: int | None = None,
        **params: Any,
    ) -> ChatRequest:
        """One user turn (text, then images), an optional system message, and ``SamplingParams(**params)``."""
        msgs = ([Message("system", system)] if system else []) + [Message("user", [prompt, *images])]
        return cls(tuple(msgs), SamplingParams(**params), sample_index)

    def with_sample_index(self, index: int) -> ChatRequest:
        return dataclasses.replace(self, sample_index=index)

    @property
    def effective_seed(self) -> int | None:
        """``seed`` offset by the sample index when sampling, so the samples of a group differ."""
        if self.params.seed is None or not self.params.is_sampling:
            return self.params.seed
        return self.params.seed + (self.sample_index or 0)

    def key_payload(self, with_sample_index: bool = True) -> dict[str, Any]:
        """The canonical description hashed into the cache key (images as content hashes)."""
        payload: dict[str, Any] = {"messages": [m.key_payload() for m in self.messages],
                                   "params": self.params.as_dict()}
        if with_sample_index and self.params.is_sampling:
            payload["sample_index"] = self.sample_index or 0
        return payload


def _message_from_mapping(m: Mapping[str, Any]) -> Message:
    if not isinstance(m, Mapping) or set(m) != {"role", "content"}:
        raise TypeError(f"a message must be a Message or a {{'role', 'content'}} mapping, got {m!r}")
    return Message(m["role"], m["content"])


@dataclass(frozen=True)
class ChatResult:
    """The outcome of one request: an answer (``ok``) or a recorded failure.

    Reading ``.text`` of a failure raises :class:`RequestFailedError`; ``.output`` is ``None`` then.
    """

    key: str
    ok: bool
    output: str | None = None
    error_type: str | None = None
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None

    @property
    def text(self) -> str:
        if not self.ok:
            raise RequestFailedError(self.error_type or "other", self.error or "")
        return self.output

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the result (for result files)."""
        return dataclasses.asdict(self)
