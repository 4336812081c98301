"""Content fingerprints for the prediction cache: model weights behind a spec, evaluation items.

A local model folder (or file) is hashed by content, so a retrained model under the same path gets a new key and
an identical copy elsewhere reuses the old one; hashes are memoised per (path, size, mtime) within a process.
Hub ids and API model names have no local weights: their spec string is their identity. A toy backend's
behaviour is its code: its identity adds the content hash of the module that implements it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from valor_lib.evaluation.records import EvalItem, ImageLoadError
from valor_lib.paths import repo_root
from valor_lib.specs import parse_spec

_CHUNK = 1 << 20
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt", ".npz")
# toy backends that are not chat brains (those are in valor_lib.clients.toy.TOY_BRAIN_MODULES) -> their module
TOY_BACKEND_MODULES = {"ground-plane": "valor_lib.tools.depth"}


def digest_json(value: Any) -> str:
    """SHA-256 of the canonical JSON of a value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (memoised while its size and mtime stay the same)."""
    st = path.stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def weights_digest(path: Path) -> str:
    """Content hash of a model file, or of the weight/config files in a folder (names included)."""
    if path.is_file():
        return file_digest(path)
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no model files under {path}")
    return digest_json([[str(f.relative_to(path)), file_digest(f)] for f in files])


def module_digest(module: str) -> str | None:
    """Content hash of an importable module's source file (None when there is no such module or file)."""
    found = importlib.util.find_spec(module)
    return file_digest(Path(found.origin)) if found and found.origin and Path(found.origin).is_file() else None


def toy_code_digest(name: str) -> str | None:
    """Content hash of the module implementing ``toy:<name>`` (None for a name no module implements)."""
    from valor_lib.clients.toy import TOY_BRAIN_MODULES

    module = TOY_BRAIN_MODULES.get(name) or TOY_BACKEND_MODULES.get(name)
    return module_digest(module) if module else None


def spec_fingerprint(spec: str) -> dict[str, Any]:
    """A backend's identity: ``{"kind", "weights"}`` (content hash) for local weights, wherever they are
    stored; ``{"spec", "code"}`` for toy backends (``code``: :func:`toy_code_digest`); ``{"spec"}`` for hub ids
    and API models."""
    parsed = parse_spec(spec)
    if parsed.kind == "toy":
        code = toy_code_digest(parsed.arg)
        return {"spec": spec, "code": code} if code else {"spec": spec}
    local = Path(parsed.arg) if Path(parsed.arg).is_absolute() else repo_root() / parsed.arg
    if local.exists():
        return {"kind": parsed.kind, "weights": weights_digest(local)}
    return {"spec": spec}


def image_digest(item: EvalItem) -> str:
    """Hash of an item's image bytes; missing or unreadable images hash their description."""
    ref = item.image
    try:
        if ref.path is not None and ref.path.is_file():
            return file_digest(ref.path)
        if ref.data is not None:
            return hashlib.sha256(ref.data).hexdigest()
        if ref.fetch is not None:
            value = ref.fetch()
            if isinstance(value, bytes | bytearray):
                return hashlib.sha256(value).hexdigest()
            if isinstance(value, str | Path) and Path(value).is_file():
                return file_digest(Path(value))
        if ref.pil is not None:
            return hashlib.sha256(ref.pil.tobytes()).hexdigest()
    except (OSError, ImageLoadError) as err:
        return f"unreadable:{ref.describe()}:{type(err).__name__}"
    return f"missing:{ref.describe()}"


def items_fingerprint(items: list[EvalItem], digests: dict[str, str] | None = None) -> str:
    """Hash of the items' ids, questions, answers, options and image contents (``digests`` by id), in order."""
    digests = digests or {}
    return digest_json([[i.id, i.question, i.answer, i.answer_type, list(i.options),
                         digests.get(i.id) or image_digest(i)] for i in items])
