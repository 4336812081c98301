"""Chat and vision-language model clients: one interface for OpenAI, Gemini, OpenAI-compatible servers,
local transformers and vLLM models, and the toy world's offline brains.

    from valor_lib.clients import ChatClient, ChatRequest, SamplingParams, user, accounting_summary

    client = ChatClient("openai:gpt-5-mini", role="vlm_verifier")
    req = ChatRequest((user("Is this a chair? Answer yes or no.", crop_image),),
                      SamplingParams(reasoning_effort="medium"))
    res = client.complete(req)                     # ChatResult; res.ok, res.text (raises on failure), res.error
    results = client.map(requests, desc="verify")  # concurrent, cached, retried; in request order

README.md (next to this file) summarises backends, parameters per provider, caching, failures, toy brains
and accounting; ``client.py``, ``types.py``, ``toy.py`` and ``usage.py`` hold the details.
"""

from valor_lib.clients.cache import CACHE_MODES, ResponseCache
from valor_lib.clients.client import ChatClient, default_cache_path
from valor_lib.clients.errors import (
    ERROR_TYPES,
    RETRYABLE_TYPES,
    CallError,
    ClientConfigError,
    ClientError,
    MissingCredentialsError,
    RequestFailedError,
)
from valor_lib.clients.retry import RetryPolicy
from valor_lib.clients.toy import TOY_BRAIN_MODULES, register_toy_brain, unregister_toy_brain
from valor_lib.clients.types import (
    ChatRequest,
    ChatResult,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
    assistant,
    system,
    user,
)
from valor_lib.clients.usage import PRICES_USD_PER_MTOK, accounting_summary, price_for

__all__ = [
    "CACHE_MODES",
    "ERROR_TYPES",
    "PRICES_USD_PER_MTOK",
    "RETRYABLE_TYPES",
    "TOY_BRAIN_MODULES",
    "CallError",
    "ChatClient",
    "ChatRequest",
    "ChatResult",
    "ClientConfigError",
    "ClientError",
    "ImagePart",
    "Message",
    "MissingCredentialsError",
    "RequestFailedError",
    "ResponseCache",
    "RetryPolicy",
    "SamplingParams",
    "TextPart",
    "accounting_summary",
    "assistant",
    "default_cache_path",
    "price_for",
    "register_toy_brain",
    "system",
    "unregister_toy_brain",
    "user",
]
