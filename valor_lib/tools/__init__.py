"""The program API: ``gd_detect``, ``depth`` and ``vqa``, their backends and the text the policy sees.

    from valor_lib.tools import Toolbox, tool_api_text
    toolbox = Toolbox.from_params(stage.common)          # common.backends.detector / depth / vqa
    execute(code, tools=toolbox.tools(), image=path)     # programs call the tools in this process
    print(tool_api_text())                               # signatures + docstrings for the prompt

Heavy modules (torch, transformers) load on first use of :class:`Toolbox`, so importing this package (e.g. for
``toy:vqa``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from valor_lib.tools.api import TOOL_DOCS, TOOL_NAMES, ToolDoc, tool_api_text
from valor_lib.tools.errors import ToolBackendError, ToolError, ToolInputError

_LAZY = {
    "Toolbox": "valor_lib.tools.toolbox",
    "CachedDetector": "valor_lib.tools.detector",
    "ClientVQA": "valor_lib.tools.vqa",
    "GroundPlaneDepth": "valor_lib.tools.depth",
    "DepthAnythingDepth": "valor_lib.tools.depth",
    "MogeDepth": "valor_lib.tools.depth",
    "make_depth": "valor_lib.tools.backends",
    "make_vqa": "valor_lib.tools.backends",
    "resolve_model_path": "valor_lib.tools.backends",
}

__all__ = ["TOOL_DOCS", "TOOL_NAMES", "ToolBackendError", "ToolDoc", "ToolError", "ToolInputError",
           "tool_api_text", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'valor_lib.tools' has no attribute {name!r}")
