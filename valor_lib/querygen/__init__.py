"""Query generation (paper A.4.1) and the RL query set.

    gen = QueryGenerator(ChatClient("toy:querygen", role="querygen"), candidates=5, seed=0)
    records = gen.run(list_images("data/toy/images/pool", "*.png", seed=0), out_path, target=60)
    rl = generated_queries(records, 60) + omni3d_rl_queries(source, 60, image_dir)

Modules: :mod:`.prompts` (the prompt and reply validation), :mod:`.generate` (the resumable engine),
:mod:`.rl_set` (mixing in Omni3D-Bench, the query-kind chart), :mod:`.toy_querygen` (``toy:querygen``).
"""

from valor_lib.querygen.generate import ImageItem, QueryGenerator, choose_index, list_images
from valor_lib.querygen.prompts import InvalidReply, QueryGenReply, build_request, parse_reply, prompt_text
from valor_lib.querygen.rl_set import (
    QUERY_KINDS,
    generated_queries,
    omni3d_rl_queries,
    query_kind,
    write_rl_set,
)

__all__ = [
    "QUERY_KINDS",
    "ImageItem",
    "InvalidReply",
    "QueryGenReply",
    "QueryGenerator",
    "build_request",
    "choose_index",
    "generated_queries",
    "list_images",
    "omni3d_rl_queries",
    "parse_reply",
    "prompt_text",
    "query_kind",
    "write_rl_set",
]
