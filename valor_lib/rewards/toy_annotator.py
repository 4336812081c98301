"""Toy stand-in for the hand annotations of the verifier error analysis (paper §3.1: 100 outputs labelled by
hand): labels from what each program actually computes, checked against the scene's ground truth.

Ground truth is allowed here because these labels stand in for human annotators; no verifier sees them.

Evidence per output (plan and program of a response to a toy query about a toy scene):

1. **Oracle runs.** The program is executed in the sandbox with oracle tools built from the scene
   (``gd_detect`` returns the true boxes of the named objects with made-up confidences, ``depth`` the true depth
   of the object under a box, ``vqa`` answers colour questions truthfully) on the scene and on variants of it,
   each with its own true answer (:func:`scene_variants`): mirror image, upside-down image, depth-reversed
   (near and far swapped), height-vs-depth / width-vs-depth (depths chosen so pixel sizes rank opposite to real
   sizes), taller / wider (sizes scaled per object), recoloured, and decoys (the rivals of a superlative
   referent, "the other chairs" of "the leftmost chair", made bigger and nearer). Boxes are re-projected
   through the camera, so every variant is a consistent world. Only the variants a query's labels use are run
   (:func:`probed_variants`); one whose question is ill-posed is left out. Floats count within 10 %.
2. **Tool log.** What the program asked the tools on the original scene: the object names and colours it
   detected, whether it called ``depth``, the questions it asked ``vqa``.
3. **The plan as read.** The requirement checks a reader applies to a plan (the toy verifier's rules).

Labels:

- **adherence** = 1 when the program's behaviour matches what the plan says: it detects the categories the
  plan names with the plan's colours, calls ``depth`` exactly when the plan uses depth and ``vqa`` exactly when
  the plan asks visual questions, and, when the plan reads as correct, answers correctly on every variant (a
  faithful implementation of a correct plan is correct).
- When adherence is 1, the plan heads are judged on the behaviour. **logic** = correct on every variant used
  for the query (the mirror and the depth-reversed scene always, plus the probes below).
  The other two use probes: on a probe's variants the program's answer must change exactly when the true
  answer changes, and be right or wrong exactly as on the original (so a consistently inverted comparison
  counts against logic only). **spatial** = every relation passes its axis' probe (left/right: mirror;
  above/below: upside-down; depth relations: depth-reversed and height-vs-depth; superlatives also the two
  decoy variants, whose detector confidences differ). **attribute** = each
  real-world size passes its probe (height: taller, depth-reversed, height-vs-depth; width: wider,
  depth-reversed, width-vs-depth; sizes stated in the query rule out the resized variants) and each colour is
  actually looked at (named in a detection prompt or asked about with ``vqa``) and passes the recoloured probe.
  A query with a depth relation and a real-world size is probed by both on the depth variants, so a size
  mistake there can cost the spatial label too (the annotator cannot tell where a wrong pick came from).
- When adherence is 0 the program says nothing about the plan, so the plan heads come from reading the plan.
- **format** and **syntax** are the interpreters' (as in the reward).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valor_lib.programs import execute_many, parse_response
from valor_lib.rewards.heads import HEADS
from valor_lib.rewards.toy_requirements import (
    RELATION_AXES,
    Requirements,
    categories_in,
    colors_in,
    requirements,
)
from valor_lib.rewards.toy_verifier import judge_attribute, judge_logic, judge_spatial
from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.queries import QueryError, QuerySpec, answer_query, parse_query, resolve
from valor_lib.toyworld.scene import Scene, SceneObject
from valor_lib.toyworld.vocab import COLORS

SUPERLATIVES = ("leftmost", "rightmost", "closest", "farthest")

FLOAT_TOLERANCE = 0.10
VARIANTS = ("original", "mirror", "upside-down", "depth-reversed", "height-vs-depth", "width-vs-depth", "taller",
            "wider", "recoloured", "decoys", "decoys-2")
# which variants probe a relation on each axis, and each kind of object property
AXIS_VARIANTS = {"x": ("mirror",), "y": ("upside-down",), "depth": ("depth-reversed", "height-vs-depth")}
DECOY_VARIANTS = ("decoys", "decoys-2")  # also probe superlatives (leftmost, closest, ...)
SIZE_VARIANTS = {"height": ("taller", "depth-reversed", "height-vs-depth"),
                 "width": ("wider", "depth-reversed", "width-vs-depth")}
RESIZING = ("taller", "wider")  # variants that change real sizes (meaningless when the query states a size)
_FACTORS = (1.6, 0.6, 1.35, 0.7, 1.2, 0.8, 1.5, 0.65)


@dataclass(frozen=True)
class SceneImage:
    """What a program sees as ``image`` during an oracle run: the image size, and (parent side) the scene."""

    width: int
    height: int
    scene: Scene
    salt: str = ""  # varies detection scores and order between variants, as a real detector's would


# ---------------------------------------------------------------- scene variants


def _projected(obj: SceneObject, camera: Camera, x: float, z: float, size: list[float] | None = None) -> SceneObject:
    """The object moved to lateral ``x`` and depth ``z`` (and resized), its box re-projected (front face, as
    the renderer draws it)."""
    w, h, d = size or obj.size
    x1, y2 = camera.project(x - w / 2, 0.0, z)
    x2, y1 = camera.project(x + w / 2, h, z)
    return dataclasses.replace(obj, size=[w, h, d], x=x, z=z, bbox=[x1, y1, x2, y2])


def _resized(obj: SceneObject, camera: Camera, axis: int, shift: int) -> SceneObject:
    size = list(obj.size)
    size[axis] *= _FACTORS[(obj.id + shift) % len(_FACTORS)]
    return _projected(obj, camera, obj.x, obj.z, size)


def _size_ordered(objects: list[SceneObject], camera: Camera, axis: int, near: float) -> list[SceneObject]:
    """Objects moved back in proportion to the square of their size along ``axis``: the bigger an object,
    the smaller it looks, so pixel sizes rank opposite to real sizes."""
    smallest = min(o.size[axis] for o in objects)
    return [_projected(o, camera, o.x, near * (o.size[axis] / smallest) ** 2) for o in objects]


def _decoys(scene: Scene, camera: Camera, spec: QuerySpec | None) -> list[SceneObject]:
    """The objects a superlative reference could be confused with ("the other chairs" of "the leftmost
    chair") made bigger and moved a third closer, so that picking one of them changes the answer."""
    referents, rivals = set(), set()
    for ref in spec.refs if spec is not None else ():
        if ref.superlative is None:
            continue
        try:
            referents.add(resolve(ref, scene).id)
        except QueryError:
            continue
        rivals |= {o.id for o in scene.objects if o.category == ref.category and (ref.color in (None, o.color))}
    moved = rivals - referents
    return [_projected(o, camera, o.x, o.z * 0.67, [o.size[0] * 1.7, o.size[1] * 1.7, o.size[2]])
            if o.id in moved else o for o in scene.objects]


def scene_variants(scene: Scene, camera: Camera, spec: QuerySpec | None = None) -> dict[str, Scene]:
    """The scene and its variants: mirror image, upside-down image, depth-reversed (near and far swapped),
    height-vs-depth and width-vs-depth (depths chosen so pixel sizes rank opposite to real sizes), taller and
    wider (each object's height or width scaled by its own factor), recoloured (each colour replaced by the
    next one) and, twice (the detector's scores differ), decoys (see :func:`_decoys`); boxes follow through
    the camera."""
    near, far = min(o.z for o in scene.objects), max(o.z for o in scene.objects)
    colours = list(COLORS)

    def variant(objects: list[SceneObject]) -> Scene:
        return dataclasses.replace(scene, objects=objects)

    decoys = _decoys(scene, camera, spec)
    return {
        "decoys": variant(decoys),
        "decoys-2": variant(decoys),
        "original": scene,
        "mirror": variant([_projected(o, camera, -o.x, o.z) for o in scene.objects]),
        "upside-down": variant([dataclasses.replace(o, bbox=[o.bbox[0], camera.height - o.bbox[3], o.bbox[2],
                                                             camera.height - o.bbox[1]]) for o in scene.objects]),
        "depth-reversed": variant([_projected(o, camera, o.x, near + far - o.z) for o in scene.objects]),
        "height-vs-depth": variant(_size_ordered(scene.objects, camera, 1, near)),
        "width-vs-depth": variant(_size_ordered(scene.objects, camera, 0, near)),
        "taller": variant([_resized(o, camera, 1, 0) for o in scene.objects]),
        "wider": variant([_resized(o, camera, 0, 3) for o in scene.objects]),
        "recoloured": variant([dataclasses.replace(o, color=colours[(colours.index(o.color) + 1) % len(colours)])
                               for o in scene.objects]),
    }


# ---------------------------------------------------------------- oracle tools


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _score(salt: str, obj: SceneObject) -> float:
    """A confidence in [0.5, 1) that depends on the object and the variant, not on anything it shows."""
    digest = hashlib.sha256(f"{salt}|{obj.id}".encode()).digest()
    return round(0.5 + 0.5 * int.from_bytes(digest[:4], "little") / 2**32, 4)


def _object_at(scene: Scene, bbox: Sequence[float]) -> SceneObject:
    if len(bbox) != 4:
        raise ValueError("bbox must have 4 numbers")
    return max(scene.objects, key=lambda o: _iou(o.bbox, bbox))


class OracleTools:
    """``gd_detect``, ``depth`` and ``vqa`` answering truthfully from the scene of a :class:`SceneImage`; every
    call is logged per image object (the tools run in this process)."""

    def __init__(self) -> None:
        self.calls: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
        self._lock = threading.Lock()

    def _log(self, image: SceneImage, name: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self.calls.setdefault(id(image), []).append((name, args))

    def gd_detect(self, image: SceneImage, prompt: str) -> list[dict[str, Any]]:
        self._log(image, "gd_detect", (prompt,))
        found = []
        for phrase in (p.strip() for p in str(prompt).split(",")):
            cats, colours = categories_in(phrase, prose=False), colors_in(phrase)
            if cats:
                found += [{"bbox": [round(v, 2) for v in o.bbox], "label": phrase, "score": _score(image.salt, o)}
                          for o in image.scene.objects
                          if o.category == cats[-1] and (not colours or o.color == colours[-1])]
        return sorted(found, key=lambda d: d["score"])

    def depth(self, image: SceneImage, bbox: Sequence[float]) -> float:
        self._log(image, "depth", (bbox,))
        return float(_object_at(image.scene, bbox).z)

    def vqa(self, image: SceneImage, bbox: Sequence[float] | None, question: str) -> str:
        self._log(image, "vqa", (bbox, question))
        text = str(question).lower()
        if bbox is None:
            return "unknown"
        colour = _object_at(image.scene, bbox).color
        if re.search(r"\bwhat colou?r\b|\bwhich colou?r\b", text):
            return colour
        asked = colors_in(text)
        return ("yes" if colour in asked else "no") if asked else "unknown"

    def tools(self) -> dict[str, Callable[..., Any]]:
        return {"gd_detect": self.gd_detect, "depth": self.depth, "vqa": self.vqa}


# ---------------------------------------------------------------- labelling


def answers_match(predicted: Any, truth: Any) -> bool:
    """Whether two answers agree (strings case-insensitively, numbers within 10 %; None matches nothing)."""
    if predicted is None or truth is None:
        return False
    try:
        expected = float(truth)
    except (TypeError, ValueError):
        return str(predicted).strip().lower().rstrip(".") == str(truth).strip().lower()
    if isinstance(predicted, bool):
        return False
    try:
        value = float(predicted)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(value):
        return False
    return abs(value - expected) <= FLOAT_TOLERANCE * max(abs(expected), 1e-9)


@dataclass
class OracleLabels:
    """One output's labels (0/1 per head) and the evidence behind them."""

    labels: dict[str, int]
    correct: dict[str, bool]  # variant -> answered correctly (well-posed variants only)
    covaries: dict[str, bool]  # variant -> the answer changed exactly when the truth changed
    detected: list[str]  # gd_detect prompts on the original scene
    depth_calls: int
    vqa_questions: list[str]
    plan_reading: dict[str, bool]


def probed_variants(req: Requirements) -> set[str]:
    """The variants a query's labels use: the mirror and the depth-reversed scene always (they keep sizes
    and colours, so logic is checked beyond one scene), plus the probes of its relations and properties."""
    wanted = {"original", "mirror", "depth-reversed"}
    for relation in req.relations:
        wanted.update(AXIS_VARIANTS[RELATION_AXES[relation]])
        if relation in SUPERLATIVES:
            wanted.update(DECOY_VARIANTS)
    for dimension in req.sizes:
        wanted.update(SIZE_VARIANTS[dimension])
    if req.colors or req.asks_color:
        wanted.add("recoloured")
    return wanted


def _truths(query: str, variants: dict[str, Scene]) -> dict[str, str] | None:
    spec = parse_query(query)
    if spec is None:
        return None
    truths = {}
    for name, scene in variants.items():
        if spec.value is not None and name in RESIZING:
            continue
        try:
            truths[name] = answer_query(spec, scene)[0]
        except QueryError:
            if name == "original":
                return None
    return truths


def _same(a: Any, b: Any) -> bool:
    return (a is None and b is None) or answers_match(a, b)


def _label(req: Requirements, plan: str, syntax_ok: bool, runs: dict[str, tuple[Any, str]],
           log: list[tuple[str, tuple[Any, ...]]]) -> OracleLabels:
    correct = {name: answers_match(run.answer, truth) for name, (run, truth) in runs.items()}
    base_answer, base_truth = runs["original"][0].answer, runs["original"][1]
    covaries = {name: _same(run.answer, base_answer) == _same(truth, base_truth)
                for name, (run, truth) in runs.items() if name != "original"}
    detected = [str(args[0]) for name, args in log if name == "gd_detect"]
    asked = [str(args[-1]) for name, args in log if name == "vqa"]
    depth_calls = sum(name == "depth" for name, _ in log)
    reading = {"logic": judge_logic(req, plan)[0], "spatial": judge_spatial(req, plan)[0],
               "attribute": judge_attribute(req, plan)[0]}
    text = plan.lower()
    looked_at = " ".join(detected + asked).lower()
    behaviour_matches = (
        set(categories_in(text)) == {c for d in detected for c in categories_in(d, prose=False)}
        and set(colors_in(text)) <= set(colors_in(looked_at))
        and ("depth" in text) == (depth_calls > 0)
        and ("vqa" in text) == bool(asked)
        and (not reading["logic"] or all(correct.values()))
    )
    labels = {"format": 1, "syntax": int(syntax_ok), "adherence": int(behaviour_matches)}
    if behaviour_matches:
        answered = base_answer is not None

        def probe(names: tuple[str, ...]) -> bool:
            """Across these variants the answer changes exactly when the truth does, and is right or wrong
            alike (a consistently inverted answer is a logic error, not a missed relation or property)."""
            return answered and all(covaries[n] and correct[n] == correct["original"] for n in names if n in covaries)

        colours_seen = all(c in colors_in(looked_at) for c in req.colors) and (not req.asks_color or bool(asked))
        labels["logic"] = int(answered and all(correct.values()))
        labels["spatial"] = int(all(probe(AXIS_VARIANTS[RELATION_AXES[r]] + (DECOY_VARIANTS if r in SUPERLATIVES
                                                                            else ())) for r in req.relations))
        labels["attribute"] = int(all(probe(SIZE_VARIANTS[d]) for d in req.sizes) and (
            not (req.colors or req.asks_color) or (colours_seen and probe(("recoloured",)))))
    else:
        labels.update({head: int(ok) for head, ok in reading.items()})
    return OracleLabels({h: labels[h] for h in HEADS}, correct, covaries, detected, depth_calls, asked, reading)


def oracle_labels(items: Sequence[tuple[str, str, Scene]], camera: Camera, *, timeout_s: float = 5.0,
                  workers: int | None = None) -> list[OracleLabels | None]:
    """Labels for (query, response, scene) triples; None where the output cannot be labelled (its format
    fails, or the query is not a well-posed toy query for the scene)."""
    jobs, plans = [], []
    for index, (query, response, scene) in enumerate(items):
        parsed = parse_response(response)
        variants = scene_variants(scene, camera, parse_query(query)) if scene.objects else {}
        wanted = probed_variants(requirements(query))
        variants = {name: v for name, v in variants.items() if name in wanted}
        truths = _truths(query, variants) if parsed.format_ok and variants else None
        plans.append((parsed, truths))
        if truths is not None:
            jobs += [(index, name, SceneImage(camera.width, camera.height, variants[name], name), truth)
                     for name, truth in truths.items()]
    oracle = OracleTools()
    runs = execute_many([plans[i][0].code for i, *_ in jobs], oracle.tools(), timeout_s,
                        [image for _, _, image, _ in jobs], workers=workers)
    syntax = iter(execute_many([p.code for p, t in plans if t is not None], None, timeout_s, workers=workers))
    by_item: dict[int, dict[str, Any]] = {}
    logs: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
    for (index, name, image, truth), run in zip(jobs, runs, strict=True):
        by_item.setdefault(index, {})[name] = (run, truth)
        if name == "original":
            logs[index] = oracle.calls.get(id(image), [])
    out: list[OracleLabels | None] = []
    for index, (query, _, _) in enumerate(items):
        parsed, truths = plans[index]
        out.append(None if truths is None else
                   _label(requirements(query), parsed.plan, next(syntax).ok, by_item[index], logs[index]))
    return out


def toy_scene_of(image: str | Path) -> Scene | None:
    """The toy scene an image was rendered from (its file name is the scene id), or None for other images."""
    from valor_lib.toyworld import store

    scene_id = Path(image).stem
    try:
        return store.load_scenes(store.split_of(scene_id)).get(scene_id)
    except FileNotFoundError:
        return None


def toy_camera() -> Camera:
    """The toy world's camera (from its manifest)."""
    from valor_lib.toyworld import store

    return Camera(**store.manifest()["camera"])
