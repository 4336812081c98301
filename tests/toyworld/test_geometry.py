import numpy as np
import pytest

from valor_lib.toyworld.camera import Camera
from valor_lib.toyworld.render import object_box, render, render_pruned
from valor_lib.toyworld.scene import Layout, sample_scene

CAM = Camera()


def test_camera_floor_depth_inverts_floor_row():
    for z in (2.7, 4.0, 9.5):
        assert CAM.floor_depth(CAM.floor_row(z)) == pytest.approx(z)
    assert CAM.floor_depth(CAM.cy - 1) == float("inf")
    with pytest.raises(ValueError):
        CAM.project(0, 0, 0)


def test_same_seed_same_scene_and_pixels():
    a, b = sample_scene("a", 11, CAM), sample_scene("a", 11, CAM)
    ra, rb = render(a, CAM), render(b, CAM)
    assert a.to_dict() == b.to_dict()
    assert np.array_equal(np.asarray(ra.image), np.asarray(rb.image))
    c = sample_scene("a", 12, CAM)
    assert not np.array_equal(np.asarray(render(c, CAM).image), np.asarray(ra.image))


@pytest.mark.parametrize("seed", range(12))
def test_boxes_and_depths_agree_with_the_camera_model(seed):
    scene = sample_scene(f"g{seed}", seed, CAM, layout=Layout(2, 5, p_truncated=0.0))
    rendered = render_pruned(scene, CAM, 0.3)
    for obj in scene.objects:
        if obj.truncated or obj.visible < 0.999:
            continue
        ys, xs = np.nonzero(rendered.ids == obj.id)
        x1, y1, x2, y2 = obj.bbox
        assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
        assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1
        # metric depth from the box's bottom row matches the object's depth (one-pixel tolerance)
        assert CAM.floor_depth(y2) == pytest.approx(obj.z, rel=0.05)
        # metric height from pixel height and depth
        assert (y2 - y1) * obj.z / CAM.focal == pytest.approx(obj.height, rel=0.05)
        assert object_box(obj, CAM)[3] == pytest.approx(y2, abs=1e-2)


def test_occlusion_and_pruning():
    seen_partial = False
    for seed in range(40):
        scene = sample_scene(f"o{seed}", seed, CAM)
        render_pruned(scene, CAM, 0.3)
        assert all(o.visible >= 0.3 for o in scene.objects)
        assert [o.id for o in scene.objects] == list(range(len(scene.objects)))
        seen_partial |= any(0.3 <= o.visible < 0.95 for o in scene.objects)
    assert seen_partial, "some objects should be partly hidden"


def test_source_domain_has_no_distractors_and_target_does():
    assert all(not sample_scene(f"s{i}", i, CAM, "source").distractors for i in range(20))
    kinds = {d.kind for i in range(30) for d in sample_scene(f"t{i}", i, CAM, "target").distractors}
    assert kinds == {"poster", "rug", "shadow"}
    with pytest.raises(ValueError):
        sample_scene("x", 0, CAM, "moon")
