"""``toy:querygen``: the toy world's query-generation VLM.

It receives the real query-generation request (prompt text and image) and looks at the pixels the way the toy
world can: the toy detector (a tiny GroundingDINO, through ``valor_lib.tools``) finds objects of every
category, the toy colour VQA names each one's colour, and the ground-plane depth tool says how far away it
is. From what it perceived it fills the toy query templates (``QuerySpec`` + ``query_text``): references are
made unique among the objects it saw (adding a colour or leftmost/rightmost/closest/farthest), known sizes
come from typical sizes of the category (world knowledge, like a real VLM's), and it keeps only questions it
believes are well posed for what it saw. It never reads scenes: detector misses and hallucinations (posters,
rugs) make its queries as imperfect as a real model's. Fewer than two objects: the image is not suitable.
Replies are the JSON the prompt asks for; randomness comes from the image, the sample index and the seed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from valor_lib.clients import ChatRequest, register_toy_brain
from valor_lib.detection.inference import box_iou
from valor_lib.querygen.prompts import requested_count
from valor_lib.toyworld.queries import QueryError, Ref, answer_query, propose_spec, query_text
from valor_lib.toyworld.scene import Scene, SceneObject, Style
from valor_lib.toyworld.vocab import CATEGORIES, COLORS

# how often each template family is tried: quantitative and 3D questions first, as the prompt asks
FAMILY_WEIGHTS: dict[str, float] = {
    "size_compare": 2.0, "size_choice": 1.0, "size_ratio": 2.0, "size_ref": 2.0, "stack_compare": 1.0,
    "stack_height": 1.0, "fit_under": 1.0, "depth": 2.0, "depth_choice": 1.0, "superlative_choice": 1.0,
    "count_rel": 2.0, "rel2d": 2.0, "count": 1.0, "color": 1.0, "color_yesno": 1.0, "exist": 0.5,
}
COLOUR_QUESTION = "What color is this object?"
_PERCEIVED_STYLE = Style("plain", [[0, 0, 0]], 1.0, [0, 0, 0], 1.0, [1.0, 1.0, 1.0], False, 0.0)


def typical_size(category: str) -> list[float]:
    """Width, height, depth (m) halfway through a category's size ranges."""
    c = CATEGORIES[category]
    return [round(sum(r) / 2, 2) for r in (c.width, c.height, c.depth)]


def perception_options(common: Any) -> dict[str, Any]:
    """``brain_options`` that make ``toy:querygen`` perceive through the pipeline's own tool backends and
    ``gd_detect`` thresholds (``common``: the validated common params)."""
    b = common.backends
    return {"detector": b.detector, "depth": b.depth, "vqa": b.vqa, "thresholds": tuple(common.gd_thresholds)}


class ToyQueryGenerator:
    """Perceives objects through the toy tools and writes template queries about them."""

    def __init__(self, detector: str = "groundingdino-hf:data/toy/models/detector-base",
                 depth: str = "toy:ground-plane", vqa: str = "toy:vqa", thresholds: tuple[float, float] = (0.35, 0.25),
                 min_objects: int = 2, max_objects: int = 10, overlap_iou: float = 0.6, seed: int = 0):
        from valor_lib.detection.inference import Thresholds

        self.specs = {"detector": detector, "depth": depth, "vqa": vqa}
        self.thresholds = Thresholds(*thresholds)
        self.min_objects, self.max_objects, self.overlap_iou, self.seed = min_objects, max_objects, overlap_iou, seed
        self.name = (f"toy-querygen-v1({detector},{depth},{vqa},thresholds={tuple(thresholds)},"
                     f"min={min_objects},max={max_objects},seed={seed})")
        self._toolbox: Any = None

    @property
    def toolbox(self) -> Any:
        if self._toolbox is None:
            from valor_lib.tools import Toolbox

            self._toolbox = Toolbox.from_specs(**self.specs, device="cpu")
        return self._toolbox

    # ----- perception -----------------------------------------------------------------------------------
    def perceive(self, image: Any) -> list[SceneObject]:
        """The objects the toy tools find: one per detection left after removing overlapping duplicates."""
        import torch

        detections = [d for d in self.toolbox.gd_detect_many([image], [", ".join(CATEGORIES)], self.thresholds)[0]
                      if d["label"] in CATEGORIES]
        detections.sort(key=lambda d: -d["score"])
        kept: list[int] = []
        if detections:
            boxes = torch.tensor([d["bbox"] for d in detections], dtype=torch.float32)
            overlap = box_iou(boxes, boxes)
            kept = [i for i in range(len(detections)) if all(overlap[i, j] <= self.overlap_iou for j in kept)]
        chosen = [detections[i] for i in kept][: self.max_objects]
        colours = self._colours(image, [d["bbox"] for d in chosen])
        width, height = image.size
        objects = []
        for n, (det, colour) in enumerate(zip(chosen, colours, strict=True)):
            x1, y1, x2, y2 = det["bbox"]
            objects.append(SceneObject(
                id=n, category=det["label"], color=colour if colour in COLORS else "unknown",
                size=typical_size(det["label"]), x=0.0, z=float(self.toolbox.depth(image, det["bbox"])),
                bbox=[float(v) for v in det["bbox"]], visible=1.0,
                truncated=x1 <= 1 or y1 <= 1 or x2 >= width - 1 or y2 >= height - 1))
        return objects

    def _colours(self, image: Any, boxes: list[list[float]]) -> list[str]:
        """The VQA model's answer to the colour question for every box, asked all at once."""
        from valor_lib.tools.images import check_box
        from valor_lib.tools.vqa import clean_answer, vqa_request

        vqa, loaded = self.toolbox.vqa_backend, self.toolbox.load(image)
        requests = [vqa_request(loaded, check_box(b, *loaded.size), COLOUR_QUESTION, vqa.pad, vqa.params)
                    for b in boxes]
        return [clean_answer(r.output) if r.ok else "unknown" for r in vqa.client.map(requests, progress=False)]

    # ----- writing --------------------------------------------------------------------------------------
    def write(self, objects: list[SceneObject], count: int, rng: np.random.Generator) -> list[str]:
        """Up to ``count`` distinct well-posed template queries about the perceived objects."""
        scene = Scene("perceived", "target", 0, _PERCEIVED_STYLE, objects, [])
        families = list(FAMILY_WEIGHTS)
        p = np.array([FAMILY_WEIGHTS[f] for f in families])
        queries: list[str] = []
        for _ in range(60 * count):
            if len(queries) == count:
                break
            spec = propose_spec(families[int(rng.choice(len(families), p=p / p.sum()))], scene, rng)
            if spec is None or any(r.color == "unknown" for r in spec.refs) or spec.color == "unknown":
                continue
            try:
                answer_query(spec, scene)  # only what it believes it could answer from what it saw
            except QueryError:
                continue
            text = query_text(spec)
            if text not in queries:
                queries.append(text)
        return queries

    def __call__(self, request: ChatRequest) -> str:
        message = request.messages[-1]
        count = requested_count(message.text)
        if count is None or not message.images:
            return "Please send an image and ask me to write questions about it."
        image = message.images[0].to_pil().convert("RGB")
        digest = hashlib.sha256(f"{self.seed}|{request.sample_index or 0}|{message.images[0].sha256}".encode())
        rng = np.random.default_rng(int.from_bytes(digest.digest()[:8], "little"))
        objects = self.perceive(image)
        names = [Ref(o.category, o.color if o.color != "unknown" else None).text() for o in objects]
        queries = self.write(objects, count, rng) if len(objects) >= self.min_objects else []
        if len(queries) < count:
            reason = (f"I can make out only {len(objects)} object(s) clearly enough to ask about."
                      if len(objects) < self.min_objects else
                      f"The {len(objects)} objects I see do not support {count} distinct questions.")
            return json.dumps({"suitable": False, "reason": reason, "objects": names, "queries": []})
        reason = f"I can see {len(objects)} objects: {', '.join(names)}."
        return json.dumps({"suitable": True, "reason": reason, "objects": names, "queries": queries})


register_toy_brain("querygen", ToyQueryGenerator)
