"""Provenance for every ``metrics.json``: code version, packages, device, seed, profile, params."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from valor_lib.paths import repo_root

TRACKED_PACKAGES = (
    "valor-lib", "torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "numpy",
    "openai", "google-genai", "vllm", "verl",
)


def git_state() -> dict[str, Any]:
    """Current commit and whether the work tree has uncommitted changes (None outside git)."""
    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results (missing ones are left out)."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_info() -> dict[str, Any]:
    """CPU count and, when torch sees one, the CUDA device."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["cuda"] = False
    return info


def provenance(params: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to tell where a result came from."""
    return {
        **git_state(),
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": params.get("profile"),
        "seed": params.get("seed"),
        "packages": package_versions(),
        "device": device_info(),
        "params": params,
    }


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write JSON to ``path`` through a temporary file, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        json.dump(payload, tmp, indent=2, sort_keys=False, default=str)
        tmp.write("\n")
        tmp_name = tmp.name
    os.replace(tmp_name, path)
    return path
