"""One evaluation item (:class:`EvalItem`) and its lazily loaded image (:class:`ImageRef`).

Every loader yields ``EvalItem``s with the same fields whatever the benchmark: a stable ``id`` (built from the
row's position in its source file, so it does not change with ``limit``), the question as the policy sees it
(rewritten the way the paper does, see :mod:`.rewrites`), the ground truth in canonical form, the answer type
and the untouched source text in ``original_question``.
"""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from valor_lib.paths import repo_root

BENCHMARKS: tuple[str, ...] = (
    "omni3d-bench", "tallyqa", "gqa", "robospatial", "vsr", "blink", "countbenchqa", "realworldqa",
)
ANSWER_TYPES: tuple[str, ...] = ("int", "float", "yes/no", "choice", "str")
DOWNLOAD_TIMEOUT_S = 60.0


class ImageLoadError(RuntimeError):
    """An item's image is missing, unreadable or not allowed to be downloaded; the message says which."""


@dataclass(frozen=True)
class ImageRef:
    """Where an item's image comes from: a file, encoded bytes, an in-memory PIL image, a ``fetch`` callable
    (returning bytes, a path or a PIL image; how dataset rows hand out images lazily), or a URL.

    A URL is used only when ``path`` (where a downloaded copy is kept) does not exist yet and ``download``
    is true; otherwise a missing file is an :class:`ImageLoadError`.
    """

    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    pil: Image.Image | None = field(default=None, repr=False, compare=False)
    fetch: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    url: str | None = None
    download: bool = False
    name: str = ""

    def describe(self) -> str:
        """A short, JSON-friendly description (file path, URL or name) for result records."""
        if self.path is not None:
            root = repo_root()
            return str(self.path.relative_to(root)) if self.path.is_relative_to(root) else str(self.path)
        return self.url or self.name or ("<bytes>" if self.data is not None else "<in-memory image>")

    def load(self) -> Image.Image:
        """The image as a fully decoded RGB PIL image (raises :class:`ImageLoadError`)."""
        if self.pil is not None:
            return self.pil.convert("RGB")
        if self.data is not None:
            return _decode(io.BytesIO(self.data), self.describe())
        if self.fetch is not None:
            return self._load_fetched()
        if self.path is None:
            raise ImageLoadError("the item has no image")
        if not self.path.is_file():
            if self.url and self.download:
                _download(self.url, self.path)
            elif self.url:
                raise ImageLoadError(f"image file {self.path} is missing and downloading is disabled "
                                     f"(would fetch {self.url})")
            else:
                raise ImageLoadError(f"image file {self.path} is missing")
        return _decode(self.path, str(self.path))


    def _load_fetched(self) -> Image.Image:
        try:
            value = self.fetch()
        except Exception as err:  # a broken dataset row must not stop the run
            raise ImageLoadError(f"cannot read {self.describe()}: {type(err).__name__}: {err}") from None
        if isinstance(value, Image.Image):
            return value.convert("RGB")
        if isinstance(value, bytes | bytearray):
            return _decode(io.BytesIO(value), self.describe())
        if isinstance(value, str | Path) and Path(value).is_file():
            return _decode(Path(value), str(value))
        raise ImageLoadError(f"{self.describe()}: no image data ({type(value).__name__})")


def _decode(source: Any, what: str) -> Image.Image:
    try:
        with Image.open(source) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"corrupt or unreadable image {what}: {type(err).__name__}: {err}") from None


def _download(url: str, target: Path) -> None:
    """Fetch an http(s) URL into ``target`` (atomically); other schemes are refused."""
    if not url.startswith(("http://", "https://")):
        raise ImageLoadError(f"cannot download {url!r}: only http(s) links are fetched")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            partial.write_bytes(response.read())
        partial.replace(target)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ImageLoadError(f"download of {url} failed: {err}") from None


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question with its ground truth.

    ``answer`` is canonical: int for ``int``, float for ``float``, ``"yes"``/``"no"`` for ``yes/no``, the option
    text for ``choice`` (``options`` lists them in order) and the stripped text for ``str``. ``meta`` keeps the
    source's own fields needed to reproduce the authors' scoring (e.g. Omni3D-Bench's original answer type).
    """

    id: str
    benchmark: str
    question: str
    answer: Any
    answer_type: str
    image: ImageRef
    original_question: str
    subset: str | None = None
    options: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; expected one of {BENCHMARKS}")
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"item {self.id}: unknown answer type {self.answer_type!r}; expected {ANSWER_TYPES}")

    def describe(self) -> dict[str, Any]:
        """The item's fields for a result record (image as its description)."""
        return {"id": self.id, "benchmark": self.benchmark, "subset": self.subset, "question": self.question,
                "original_question": self.original_question, "answer": self.answer,
                "answer_type": self.answer_type, "options": list(self.options), "image": self.image.describe()}
