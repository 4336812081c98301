"""Hand-written responses to one toy query: a correct plan and program, and variants that each carry one flaw
the paper attributes to pre-trained LLMs (Fig. 3a, A.6.2). Used by notebook 02 and the tests.

The query: "Is the leftmost chair taller than the red lamp in 3D?" (a spatial relation, a colour and a
real-world size). Flaws: the plan drops "leftmost" (spatial); it compares pixel heights where 3D heights are
asked (attribute); the program skips the depth scaling the plan asks for (adherence); the response ignores
the ``<plan>``/``<answer>`` format (format).
"""

from __future__ import annotations

QUERY = "Is the leftmost chair taller than the red lamp in 3D?"
GOOD_PLAN = """1. Detect every chair with gd_detect and keep the leftmost one (smallest bounding box centre x).
2. Detect the red lamp with gd_detect and keep the most confident bounding box.
3. Compute the 3D height of the leftmost chair and the red lamp as pixel height times depth.
4. Answer yes if the 3D height of the leftmost chair is larger than that of the red lamp, otherwise no."""
GOOD_CODE = """chairs = gd_detect(image, "chair")
lamps = gd_detect(image, "red lamp")
if not chairs or not lamps:
    final_answer = "no"
    return
a = min(chairs, key=lambda d: d["bbox"][0] + d["bbox"][2])["bbox"]
b = max(lamps, key=lambda d: d["score"])["bbox"]
h_a = (a[3] - a[1]) * depth(image, a)
h_b = (b[3] - b[1]) * depth(image, b)
final_answer = "yes" if h_a > h_b else "no"
"""

# the plan drops "leftmost" (spatial); the code follows the flawed plan
NO_SPATIAL_PLAN = GOOD_PLAN.replace("Detect every chair with gd_detect and keep the leftmost one (smallest "
                                    "bounding box centre x).", "Detect the chair with gd_detect and keep the most "
                                    "confident bounding box.").replace("leftmost chair", "chair")
NO_SPATIAL_CODE = GOOD_CODE.replace('min(chairs, key=lambda d: d["bbox"][0] + d["bbox"][2])',
                                    'max(chairs, key=lambda d: d["score"])')
# 2D pixel height where the query asks for 3D (attribute)
PIXEL_PLAN = GOOD_PLAN.replace("Compute the 3D height of the leftmost chair and the red lamp as pixel height "
                               "times depth.", "Measure the pixel height of the leftmost chair and the red lamp."
                               ).replace("3D height", "pixel height")
PIXEL_CODE = GOOD_CODE.replace(" * depth(image, a)", "").replace(" * depth(image, b)", "")
# the plan is right, the code skips the depth scaling (adherence)
DEVIATING_CODE = PIXEL_CODE


def respond(plan: str, code: str) -> str:
    return f"<plan>\n{plan}\n</plan>\n<answer>\n{code}\n</answer>"


GOOD = respond(GOOD_PLAN, GOOD_CODE)
NO_SPATIAL = respond(NO_SPATIAL_PLAN, NO_SPATIAL_CODE)
PIXEL_SIZE = respond(PIXEL_PLAN, PIXEL_CODE)
DEVIATING = respond(GOOD_PLAN, DEVIATING_CODE)
BAD_FORMAT = f"Here is my plan: {GOOD_PLAN}\n```python\n{GOOD_CODE}\n```"


EXAMPLES: dict[str, str] = {
    "correct": GOOD,
    "drops a spatial relation": NO_SPATIAL,
    "2D size where 3D is asked": PIXEL_SIZE,
    "code deviates from the plan": DEVIATING,
    "bad format": BAD_FORMAT,
}
