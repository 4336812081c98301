"""Helpers for the policy tests: toy scenes built to order and tools that run on them."""

from __future__ import annotations

from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.queries import matches
from valor_lib.toyworld.render import render
from valor_lib.toyworld.scene import Scene, SceneObject, sample_scene
from valor_lib.toyworld.vocab import CATEGORIES, COLORS

CAMERA = Camera()


def build_scene(objects: list[tuple[str, str, float, float, float]], seed: int = 0) -> tuple[Scene, object]:
    """A rendered scene holding exactly ``objects`` (category, colour, height scale 0-1, x, depth), no
    distractors; sizes are interpolated inside each category's range."""
    scene = sample_scene(f"built-{seed}", seed, CAMERA, "target")
    scene.distractors = []
    placed = []
    for i, (cat, color, scale, x, z) in enumerate(objects):
        c = CATEGORIES[cat]
        size = [c.width[0] + scale * (c.width[1] - c.width[0]), c.height[0] + scale * (c.height[1] - c.height[0]),
                c.depth[0] + scale * (c.depth[1] - c.depth[0])]
        placed.append(SceneObject(i, cat, color, size, x, z))
    scene.objects = placed
    return scene, render(scene, CAMERA).image


class SceneDetector:
    """A test double for the detector: the boxes of the scene's objects named in the prompt (category and
    optional colour), so a program's logic can be checked apart from detection quality."""

    def __init__(self, scene: Scene):
        self.scene = scene

    def detect(self, image, prompt: str) -> list[dict]:
        out = []
        for name in (p.strip().lower() for p in prompt.split(",") if p.strip()):
            words = name.split()
            color = words[0] if len(words) > 1 and words[0] in COLORS else None
            category = words[-1]
            for obj in matches(self.scene, category, color):
                out.append({"bbox": list(obj.bbox), "label": name, "score": round(0.9 - 0.01 * obj.id, 3)})
        return out


def scene_tools(scene: Scene) -> dict:
    """``gd_detect`` (scene boxes), ``depth`` (toy ground plane) and ``vqa`` (toy colour VQA) for ``execute``."""
    from valor_lib.tools.backends import make_depth, make_vqa
    from valor_lib.tools.toolbox import Toolbox

    return Toolbox(SceneDetector(scene), make_depth("toy:ground-plane"), make_vqa("toy:vqa")).tools()


def tiny_toy_policy(questions: list[str], examples: int, flaw_rate: float, seed: int = 0) -> tuple[object, object, list]:
    """A tokenizer trained on template programs for ``questions``, an untrained one-layer toy Qwen3 and the
    (prompt ids, response ids) pairs of those programs."""
    import numpy as np

    from valor_lib.policy import toy_model
    from valor_lib.policy.template_programmer import TemplateProgrammer

    programmer = TemplateProgrammer(flaw_rate)
    rng = np.random.default_rng(0)
    pairs = [(q, programmer.sample(q, rng).text) for q in questions]
    tokenizer = toy_model.train_tokenizer([f"Question: {q}\n{r}" for q, r in pairs], vocab_size=400)
    model = toy_model.build_model(tokenizer, toy_model.ToyArchitecture(hidden_size=32, intermediate_size=64,
                                                                       layers=1, heads=2, kv_heads=1), seed=seed)
    seqs = [(toy_model.prompt_ids(tokenizer, q, examples), toy_model.response_ids(tokenizer, r)) for q, r in pairs]
    return tokenizer, model, seqs
