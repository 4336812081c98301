"""Shared test setup: offline hubs, a repo root, small temporary toy worlds."""

from __future__ import annotations

import os

# Nothing in the tests may reach a model or dataset hub.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
