"""Shared constants of the reward tests (the hand-written responses live in ``valor_lib.rewards.examples``)."""

from valor_lib.rewards.examples import (  # noqa: F401
    BAD_FORMAT,
    DEVIATING,
    DEVIATING_CODE,
    GOOD,
    GOOD_CODE,
    GOOD_PLAN,
    NO_SPATIAL,
    NO_SPATIAL_PLAN,
    PIXEL_PLAN,
    PIXEL_SIZE,
    QUERY,
)

TOOL_API = "gd_detect(image, prompt) -> detections; depth(image, bbox) -> metres; vqa(image, bbox, question) -> str"
