"""Helpers shared by the evaluation tests: small toy-world settings, a scripted program writer and a deterministic
stand-in detector."""

from __future__ import annotations

from valor_lib.params import apply_profile, load_raw
from valor_lib.toyworld.config import ToyWorldParams

EVAL_ITEMS = 8
OMNI3D_ROWS = 12


def small_world_params(eval_items: int = EVAL_ITEMS, omni3d_rows: int = OMNI3D_ROWS) -> ToyWorldParams:
    """params.yaml's toy world shrunk: a few evaluation items per benchmark, one image in every other split.
    (Not validated: settings of the toy world's other parts, e.g. its detector, are not needed to generate it.)"""
    values = dict(apply_profile(load_raw(), "toy")["toy_world"])
    values.update({name: 1 for name, value in values.items()
                   if type(value) is int and name.endswith(("_images", "_queries", "_items"))})
    values.update(eval_items=eval_items, omni3d_rows=omni3d_rows, workers=1)
    try:
        return ToyWorldParams.model_validate(values)
    except ValueError:  # params.yaml mid-edit by another stage's owner: its generator fields are still there
        return ToyWorldParams.model_construct(**values)


class CountingWriter:
    """Writes, for every question, a program that counts detections of the noun after "How many"
    (other questions: answers "yes"). Deterministic; counts its calls."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple[list[str], int | None]] = []
        self.fail_on = fail_on

    def write(self, questions, n=1, seed=None):
        self.calls.append((list(questions), seed))
        out = []
        for q in questions:
            if self.fail_on and self.fail_on in q:
                code = "x = 1 / 0\nfinal_answer = x"
            elif q.lower().startswith("how many"):
                noun = q.split()[2]
                code = f"boxes = gd_detect(image, {noun!r})\nfinal_answer = len(boxes)"
            else:
                code = "final_answer = 'yes'"
            out.append([f"<plan>Answer it.</plan>\n<answer>\n{code}\n</answer>"])
        return out


def fake_detect(image, text):
    """A deterministic stand-in detector in the real tool's output format: as many detections as the
    prompt's length modulo 4, inside the image."""
    h = image.size[1]
    return [{"bbox": [i * 10.0, 5.0, i * 10.0 + 8.0, min(h, 20.0)], "label": text, "score": 0.5}
            for i in range(len(text) % 4)]
